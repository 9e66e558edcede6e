import { createHash } from 'node:crypto';
import { appendFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { SqsStreamFailures } from '../../lambdas/core/stream-failures/failed-users';
import { createTables, DEFAULT_TABLES, LOCAL_CREDENTIALS, LOCAL_REGION, localClient, startDynalite } from '../../scripts/local/embedded-dynamodb';
import type { EmbeddedDynamo } from '../../scripts/local/embedded-dynamodb';
import { readFailureMessages } from '../../scripts/local/stream/failure-destination';
import type { StreamFailureMessage } from '../../scripts/local/stream/failure-destination';
import { LocalStreamFailures } from '../../scripts/local/stream/local-stream-failures';
import { startLocalStream } from '../../scripts/local/stream/local-stream';
import type { LocalStream } from '../../scripts/local/stream/local-stream';
import { AwsJsonError, startFakeAwsJson } from '../support/fake-aws-json';
import type { FakeAwsJson } from '../support/fake-aws-json';

const PAYMENTS = DEFAULT_TABLES.paymentsTable;
const USER_ATTR = 'userId';

// --- locally: the capture proxy, the local stream and its failure file ---

describe('LocalStreamFailures: the failure file read back against the local stream', () => {
  let dynamo: EmbeddedDynamo;
  let folder: string;
  let stream: LocalStream | undefined;
  beforeAll(async () => {
    dynamo = await startDynalite();
    await createTables(localClient(dynamo.endpoint));
    folder = await mkdtemp(join(tmpdir(), 'stream-failures-'));
  });
  afterEach(async () => {
    await stream?.stop();
    stream = undefined;
  });
  afterAll(async () => {
    await dynamo.close();
    await rm(folder, { recursive: true, force: true });
  });

  /** A stream whose handler throws for every batch holding a record of a poisoned user (either image). */
  async function streamFailingFor(poisoned: readonly string[], failureFile: string): Promise<LocalStream> {
    const usersOf = (r: DynamoDBRecord) => [r.dynamodb?.NewImage?.userId?.S, r.dynamodb?.OldImage?.userId?.S];
    const handler = async (event: DynamoDBStreamEvent): Promise<void> => {
      if (event.Records.some((r) => usersOf(r).some((u) => u !== undefined && poisoned.includes(u)))) throw new Error('poisoned record');
    };
    // The deployed mapping settings, with retries cut short so the batch is discarded at once.
    return startLocalStream({
      upstreamEndpoint: dynamo.endpoint,
      paymentsTable: PAYMENTS,
      handler,
      failureFile,
      retryDelayMs: 0,
      settings: { maximumRetryAttempts: 1 },
    });
  }

  async function putPayment(endpoint: string, orderId: string, userId: string): Promise<void> {
    const client = localClient(endpoint);
    try {
      await client.send(
        new PutItemCommand({ TableName: PAYMENTS, Item: { orderId: { S: orderId }, userId: { S: userId }, courseId: { S: 'c-1' }, status: { S: 'settlement' } } }),
      );
    } finally {
      client.destroy();
    }
  }

  it('names exactly the user whose batch the stream gave up on', async () => {
    const failureFile = join(folder, 'one-user.jsonl');
    stream = await streamFailingFor(['u-bad'], failureFile);
    await putPayment(stream.endpoint, 'o-ok-1', 'u-ok-1');
    await putPayment(stream.endpoint, 'o-bad', 'u-bad');
    await putPayment(stream.endpoint, 'o-ok-2', 'u-ok-2');
    await stream.idle();

    const messages = await readFailureMessages(failureFile);
    expect(messages.length).toBeGreaterThanOrEqual(1);
    const answer = await new LocalStreamFailures(failureFile, stream.log).usersNamed(USER_ATTR);
    expect(answer).toMatchObject({ userIds: ['u-bad'], messages: messages.length, unreadable: 0, records: 1, recordsWithoutUser: 0, capped: false });
    // Read, never emptied: the operator purges once a sync repaired the users.
    expect(await readFailureMessages(failureFile)).toEqual(messages);
  });

  it('names both users of a payment moved from one user to another', async () => {
    const failureFile = join(folder, 'moved.jsonl');
    stream = await streamFailingFor(['u-to'], failureFile);
    await putPayment(stream.endpoint, 'o-moved', 'u-from');
    await putPayment(stream.endpoint, 'o-other', 'u-other');
    const client = localClient(stream.endpoint);
    await client.send(
      new UpdateItemCommand({
        TableName: PAYMENTS,
        Key: { orderId: { S: 'o-moved' } },
        UpdateExpression: 'SET userId = :to',
        ExpressionAttributeValues: { ':to': { S: 'u-to' } },
      }),
    );
    client.destroy();
    await stream.idle();

    const answer = await new LocalStreamFailures(failureFile, stream.log).usersNamed(USER_ATTR);
    expect(answer).toMatchObject({ userIds: ['u-from', 'u-to'], unreadable: 0, records: 1 });
  });

  it('counts an unparsable line, a message that is no failure message and one naming a gone shard as unreadable', async () => {
    const failureFile = join(folder, 'mixed.jsonl');
    stream = await streamFailingFor(['u-bad'], failureFile);
    await putPayment(stream.endpoint, 'o-bad-2', 'u-bad');
    await stream.idle();
    const [message] = await readFailureMessages(failureFile);
    const earlierProcess: StreamFailureMessage = {
      ...(message as StreamFailureMessage),
      DDBStreamBatchInfo: { ...(message as StreamFailureMessage).DDBStreamBatchInfo, shardId: 'shardId-00000000000000000001-deadbeef' },
    };
    await appendFile(failureFile, `{"truncated": \n${JSON.stringify({ hello: 'world' })}\n\n${JSON.stringify(earlierProcess)}\n`);

    const answer = await new LocalStreamFailures(failureFile, stream.log).usersNamed(USER_ATTR);
    expect(answer).toMatchObject({ userIds: ['u-bad'], messages: 4, unreadable: 3 });
    expect(answer.unreadableMessages.map((m) => m.reason)).toEqual(['not-a-failure-message', 'not-a-failure-message', 'records-gone']);
    expect(answer.unreadableMessages[2]?.batch?.shardId).toBe('shardId-00000000000000000001-deadbeef');
  });

  it('answers no messages when the failure file does not exist', async () => {
    stream = await streamFailingFor([], join(folder, 'unused.jsonl'));
    const answer = await new LocalStreamFailures(join(folder, 'absent', 'none.jsonl'), stream.log).usersNamed(USER_ATTR);
    expect(answer).toEqual({ userIds: [], messages: 0, unreadable: 0, records: 0, recordsWithoutUser: 0, capped: false, unreadableMessages: [] });
  });
});

// --- on AWS: SQS and DynamoDB Streams, faked on loopback in their own protocol ---

const STREAM_ARN = 'arn:aws:dynamodb:ap-southeast-1:123456789012:table/lms-payments/stream/2026-01-01T00:00:00.000';
const SQS_TARGET = 'AmazonSQS.';
const STREAMS_TARGET = 'DynamoDBStreams_20120810.';

interface FakeShard {
  readonly records: DynamoDBRecord[];
  /** Past the stream's retention: every read answers TrimmedDataAccessException. */
  readonly trimmed?: boolean;
  /** A closed shard's last page has no NextShardIterator; an open one keeps answering (empty) pages. */
  readonly closed?: boolean;
  /** Serve this many pages, then answer one GetRecords with ExpiredIteratorException (an iterator older than 15 minutes). */
  expireAfterPages?: number;
}

interface QueuedMessage {
  readonly MessageId: string;
  readonly Body: string;
  invisibleUntil: number;
}

/** Records per GetRecords page at most, whatever the Limit: ranges span pages. */
const PAGE = 2;

interface FakeAws {
  readonly server: FakeAwsJson;
  readonly queue: QueuedMessage[];
  readonly queueUrl: string;
  /** The fake SQS clock (ms): visibility timeouts run on it. */
  clock: number;
  reader(options?: ConstructorParameters<typeof SqsStreamFailures>[3]): SqsStreamFailures;
  close(): void;
}

async function startFakeAws(bodies: readonly string[], shards: Record<string, FakeShard>): Promise<FakeAws> {
  const queue: QueuedMessage[] = bodies.map((Body, i) => ({ MessageId: `m-${i}`, Body, invisibleUntil: 0 }));
  const fake: { clock: number } = { clock: 1_000_000 };
  const shardOf = (input: Record<string, unknown>): [string, FakeShard] => {
    const id = String(input.ShardId);
    const shard = shards[id];
    if (input.StreamArn !== STREAM_ARN || !shard) throw new AwsJsonError('ResourceNotFoundException', `no shard ${id}`);
    if (shard.trimmed) throw new AwsJsonError('TrimmedDataAccessException', 'the requested data is beyond the trim horizon');
    return [id, shard];
  };
  const server = await startFakeAwsJson({
    [`${SQS_TARGET}ReceiveMessage`]: (input) => {
      const visible = queue.filter((m) => m.invisibleUntil <= fake.clock).slice(0, Number(input.MaxNumberOfMessages ?? 1));
      for (const m of visible) m.invisibleUntil = fake.clock + Number(input.VisibilityTimeout ?? 30) * 1000;
      return {
        Messages: visible.map((m) => ({
          MessageId: m.MessageId,
          ReceiptHandle: `rh-${m.MessageId}-${fake.clock}`,
          MD5OfBody: createHash('md5').update(m.Body).digest('hex'),
          Body: m.Body,
        })),
      };
    },
    [`${STREAMS_TARGET}GetShardIterator`]: (input) => {
      const [id, shard] = shardOf(input);
      const sequence = BigInt(String(input.SequenceNumber));
      const index = shard.records.findIndex((r) =>
        input.ShardIteratorType === 'AFTER_SEQUENCE_NUMBER' ? BigInt(r.dynamodb?.SequenceNumber ?? '0') > sequence : BigInt(r.dynamodb?.SequenceNumber ?? '0') >= sequence,
      );
      return { ShardIterator: `${id}|${index === -1 ? shard.records.length : index}` };
    },
    [`${STREAMS_TARGET}GetRecords`]: (input) => {
      const [id, at] = String(input.ShardIterator).split('|');
      const shard = shards[id ?? ''];
      if (!shard) throw new AwsJsonError('ResourceNotFoundException', 'no such shard');
      if (shard.expireAfterPages !== undefined && shard.expireAfterPages-- === 0) {
        throw new AwsJsonError('ExpiredIteratorException', 'iterator expired');
      }
      const start = Number(at);
      const end = Math.min(start + Math.min(PAGE, Number(input.Limit ?? 1000)), shard.records.length);
      const atEnd = end >= shard.records.length;
      return { Records: shard.records.slice(start, end), ...(!(shard.closed && atEnd) && { NextShardIterator: `${id}|${end}` }) };
    },
  });
  const queueUrl = `${server.endpoint}/123456789012/payment-sync-stream-failures`;
  const sqs = new SQSClient({ endpoint: server.endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
  const streams = new DynamoDBStreamsClient({ endpoint: server.endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS, maxAttempts: 1 });
  return {
    server,
    queue,
    queueUrl,
    get clock() {
      return fake.clock;
    },
    set clock(value: number) {
      fake.clock = value;
    },
    reader: (options) => new SqsStreamFailures(sqs, streams, queueUrl, { waitTimeSeconds: 0, ...options }),
    close() {
      sqs.destroy();
      streams.destroy();
      void server.close();
    },
  };
}

function streamRecord(sequence: string, images: { newUser?: string; oldUser?: string }, orderId = `o-${sequence}`): DynamoDBRecord {
  const image = (userId: string) => ({ orderId: { S: orderId }, userId: { S: userId }, courseId: { S: 'c-1' }, status: { S: 'settlement' } });
  return {
    eventID: `e-${sequence}`,
    eventName: images.newUser && images.oldUser ? 'MODIFY' : images.newUser ? 'INSERT' : 'REMOVE',
    eventVersion: '1.1',
    eventSource: 'aws:dynamodb',
    awsRegion: 'ap-southeast-1',
    dynamodb: {
      ApproximateCreationDateTime: 1_767_225_600,
      Keys: { orderId: { S: orderId } },
      ...(images.newUser && { NewImage: image(images.newUser) }),
      ...(images.oldUser && { OldImage: image(images.oldUser) }),
      SequenceNumber: sequence,
      SizeBytes: 100,
      StreamViewType: 'NEW_AND_OLD_IMAGES',
    },
    eventSourceARN: STREAM_ARN,
  };
}

function failureMessage(shardId: string, startSequenceNumber: string, endSequenceNumber: string): string {
  const message: StreamFailureMessage = {
    requestContext: { requestId: 'r-1', functionArn: 'arn:aws:lambda:ap-southeast-1:123456789012:function:stream', condition: 'RetryAttemptsExhausted', approximateInvokeCount: 11 },
    responseContext: { statusCode: 200, executedVersion: '$LATEST', functionError: 'Unhandled' },
    version: '1.0',
    timestamp: '2026-01-01T00:05:00.000Z',
    DDBStreamBatchInfo: {
      shardId,
      startSequenceNumber,
      endSequenceNumber,
      approximateArrivalOfFirstRecord: '2026-01-01T00:00:00Z',
      approximateArrivalOfLastRecord: '2026-01-01T00:00:00Z',
      batchSize: 1,
      streamArn: STREAM_ARN,
    },
  };
  return JSON.stringify(message);
}

describe('SqsStreamFailures: the SQS failure queue read back against DynamoDB Streams', () => {
  let aws: FakeAws | undefined;
  afterEach(() => {
    aws?.close();
    aws = undefined;
  });

  const shards = (): Record<string, FakeShard> => ({
    // Users around the range, a payment moved between two users, a deleted payment.
    'shard-a': {
      records: [
        streamRecord('100', { newUser: 'u-before' }),
        streamRecord('101', { newUser: 'u-a' }),
        streamRecord('102', { newUser: 'u-c', oldUser: 'u-b' }),
        streamRecord('103', { oldUser: 'u-deleted' }),
        streamRecord('104', { newUser: 'u-after' }),
      ],
      closed: false,
    },
    // Sequence numbers of different lengths: as strings 100… sorts before 99…; as numbers it is past the end.
    'shard-big': {
      records: [
        streamRecord('98000000000000000000', { newUser: 'u-big-1' }),
        streamRecord('99000000000000000000', { newUser: 'u-big-2' }),
        streamRecord('100000000000000000000', { newUser: 'u-past-end' }),
      ],
    },
    'shard-trimmed': { records: [streamRecord('5', { newUser: 'u-trimmed' })], trimmed: true },
    // A closed shard that ends before the range does: read to its end.
    'shard-closed': { records: [streamRecord('7', { newUser: 'u-closed' })], closed: true },
  });

  it('names the users of every message\'s range, counts the rest unreadable, and deletes nothing', async () => {
    const bodies = [
      failureMessage('shard-a', '101', '103'),
      failureMessage('shard-big', '98000000000000000000', '99500000000000000000'),
      failureMessage('shard-trimmed', '5', '5'),
      'not json at all',
      JSON.stringify({ Records: [] }),
      failureMessage('shard-closed', '7', '9'),
      failureMessage('shard-gone', '1', '2'),
    ];
    // More messages than one ReceiveMessage answers (10): the reader loops until the queue is empty.
    for (let i = 0; i < 8; i++) bodies.push(failureMessage('shard-a', '101', '101'));
    aws = await startFakeAws(bodies, shards());

    const answer = await aws.reader().usersNamed(USER_ATTR);
    expect(answer.userIds).toEqual(['u-a', 'u-b', 'u-big-1', 'u-big-2', 'u-c', 'u-closed', 'u-deleted']);
    expect(answer).toMatchObject({ messages: 15, unreadable: 4, records: 3 + 2 + 1 + 8, recordsWithoutUser: 0, capped: false });
    expect(answer.unreadableMessages.map((m) => [m.reason, m.batch?.shardId])).toEqual([
      ['records-gone', 'shard-trimmed'],
      ['not-a-failure-message', undefined],
      ['not-a-failure-message', undefined],
      ['records-gone', 'shard-gone'],
    ]);
    expect(answer.unreadableMessages[0]?.detail).toMatch(/TrimmedDataAccessException/);

    const sqsCalls = aws.server.calls.filter((c) => c.target.startsWith(SQS_TARGET));
    expect(new Set(sqsCalls.map((c) => c.target))).toEqual(new Set([`${SQS_TARGET}ReceiveMessage`]));
    expect(sqsCalls.map((c) => c.body.MaxNumberOfMessages)).toEqual([10, 10, 10]);
    expect(sqsCalls.every((c) => c.body.VisibilityTimeout === 900 && c.body.QueueUrl === aws?.queueUrl)).toBe(true);
    expect(sqsCalls[0]?.contentType).toBe('application/x-amz-json-1.0');
    expect(aws.server.calls.some((c) => /Delete/.test(c.target))).toBe(false);
    expect(aws.queue).toHaveLength(15);
    const iterators = aws.server.calls.filter((c) => c.target === `${STREAMS_TARGET}GetShardIterator`);
    expect(iterators[0]?.body).toEqual({ StreamArn: STREAM_ARN, ShardId: 'shard-a', ShardIteratorType: 'AT_SEQUENCE_NUMBER', SequenceNumber: '101' });
  });

  it('leaves the messages for the next run: invisible for the visibility timeout, then back', async () => {
    aws = await startFakeAws([failureMessage('shard-a', '101', '101')], shards());
    expect((await aws.reader().usersNamed(USER_ATTR)).userIds).toEqual(['u-a']);
    expect(await aws.reader().usersNamed(USER_ATTR)).toMatchObject({ userIds: [], messages: 0 });
    aws.clock += 15 * 60 * 1000;
    expect(await aws.reader().usersNamed(USER_ATTR)).toMatchObject({ userIds: ['u-a'], messages: 1 });
  });

  it('stops at the cap of messages and says so', async () => {
    aws = await startFakeAws(Array.from({ length: 25 }, () => failureMessage('shard-a', '101', '101')), shards());
    const answer = await aws.reader({ maxMessages: 12 }).usersNamed(USER_ATTR);
    expect(answer).toMatchObject({ messages: 12, capped: true, userIds: ['u-a'] });
    const receives = aws.server.calls.filter((c) => c.target === `${SQS_TARGET}ReceiveMessage`);
    expect(receives.map((c) => c.body.MaxNumberOfMessages)).toEqual([10, 2]);
  });

  it('starts again after the last record read when an iterator expires mid-range', async () => {
    const withExpiry = shards();
    (withExpiry['shard-a'] as FakeShard).expireAfterPages = 1;
    aws = await startFakeAws([failureMessage('shard-a', '101', '104')], withExpiry);
    const answer = await aws.reader().usersNamed(USER_ATTR);
    expect(answer).toMatchObject({ userIds: ['u-a', 'u-after', 'u-b', 'u-c', 'u-deleted'], unreadable: 0, records: 4 });
    const iterators = aws.server.calls.filter((c) => c.target === `${STREAMS_TARGET}GetShardIterator`).map((c) => [c.body.ShardIteratorType, c.body.SequenceNumber]);
    expect(iterators).toEqual([['AT_SEQUENCE_NUMBER', '101'], ['AFTER_SEQUENCE_NUMBER', '102']]);
  });

  it('counts a range an open shard never reaches as incomplete instead of polling forever', async () => {
    aws = await startFakeAws([failureMessage('shard-a', '103', '200')], shards());
    const answer = await aws.reader({ maxEmptyPages: 3 }).usersNamed(USER_ATTR);
    expect(answer).toMatchObject({ userIds: ['u-after', 'u-deleted'], unreadable: 1 });
    expect(answer.unreadableMessages[0]?.reason).toBe('incomplete');
  });

  it('rejects a message whose sequence numbers are not numbers or run backwards', async () => {
    const bad = JSON.parse(failureMessage('shard-a', '101', '101')) as StreamFailureMessage;
    aws = await startFakeAws(
      [
        JSON.stringify({ ...bad, DDBStreamBatchInfo: { ...bad.DDBStreamBatchInfo, startSequenceNumber: 'abc' } }),
        JSON.stringify({ ...bad, DDBStreamBatchInfo: { ...bad.DDBStreamBatchInfo, startSequenceNumber: '102', endSequenceNumber: '101' } }),
      ],
      shards(),
    );
    const answer = await aws.reader().usersNamed(USER_ATTR);
    expect(answer).toMatchObject({ userIds: [], messages: 2, unreadable: 2 });
    expect(aws.server.calls.some((c) => c.target.startsWith(STREAMS_TARGET))).toBe(false);
  });
});
