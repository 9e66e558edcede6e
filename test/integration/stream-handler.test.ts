import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BatchWriteItemCommand, DynamoDBClient, GetItemCommand, PutItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import type { DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { loadConfig } from '../../lambdas/core/config';
import { createSyncDeps } from '../../lambdas/core/deps';
import { createStreamHandler } from '../../lambdas/stream/stream-batch';
import type { StreamTelemetry } from '../../lambdas/stream/stream-batch';
import type * as StreamEntry from '../../lambdas/stream/handler';
import { createTables, DEFAULT_TABLES, LOCAL_CREDENTIALS, LOCAL_REGION, localClient, startDynalite } from '../../scripts/local/embedded-dynamodb';
import type { EmbeddedDynamo } from '../../scripts/local/embedded-dynamodb';
import type { InvocationReport } from '../../scripts/local/stream/event-source-mapping';
import { readFailureMessages } from '../../scripts/local/stream/failure-destination';
import { startLocalStream } from '../../scripts/local/stream/local-stream';
import type { LocalStream } from '../../scripts/local/stream/local-stream';

type EntryModule = typeof StreamEntry;

const PAYMENTS = DEFAULT_TABLES.paymentsTable;
const USERS = DEFAULT_TABLES.usersTable;
/** SDK attempts of the handler's client: a fault injected this many times outlasts its retries. */
const SDK_ATTEMPTS = 2;

/** Records what the handler logs and publishes, instead of printing EMF. */
class RecordingTelemetry implements StreamTelemetry {
  readonly published: Array<Record<string, number[]>> = [];
  readonly logs: Array<{ level: string; message: string; extra: Record<string, unknown> }> = [];
  private pending: Record<string, number[]> = {};
  readonly logger = {
    info: (message: string, extra: Record<string, unknown>) => this.logs.push({ level: 'info', message, extra }),
    warn: (message: string, extra: Record<string, unknown>) => this.logs.push({ level: 'warn', message, extra }),
    error: (message: string, extra: Record<string, unknown>) => this.logs.push({ level: 'error', message, extra }),
    addContext: () => undefined,
  };
  readonly metrics = {
    addMetric: (name: string, _unit: unknown, value: number) => (this.pending[name] ??= []).push(value),
    publishStoredMetrics: () => {
      this.published.push(this.pending);
      this.pending = {};
    },
  };
  /** The sum of a counter over every invocation so far. */
  total(name: string): number {
    return this.published.reduce((sum, flush) => sum + (flush[name] ?? []).reduce((a, b) => a + b, 0), 0);
  }
}

let dynamo: EmbeddedDynamo;
let stream: LocalStream;
let client: DynamoDBClient;
let folder: string;
let failureFile: string;
let telemetry: RecordingTelemetry;
let invocations: InvocationReport[];
const handlers: Record<'policyOff' | 'policyOn', (event: DynamoDBStreamEvent) => Promise<DynamoDBBatchResponse>> = {} as never;
let policy: keyof typeof handlers = 'policyOff';

beforeAll(async () => {
  dynamo = await startDynalite();
  await createTables(localClient(dynamo.endpoint));
  folder = await mkdtemp(join(tmpdir(), 'stream-handler-'));
  failureFile = join(folder, 'stream-failures.jsonl');
  stream = await startLocalStream({
    upstreamEndpoint: dynamo.endpoint,
    paymentsTable: PAYMENTS,
    // The handler is chosen per test (revoke policy off or on); it reads and writes through the proxy too.
    handler: (event) => handlers[policy](event),
    failureFile,
    retryDelayMs: 0,
    settings: { maximumRetryAttempts: 3 },
    onInvocation: (report) => invocations.push(report),
  });
  const env = {
    DYNAMODB_PAYMENTS_TABLE: PAYMENTS,
    DYNAMODB_USERS_TABLE: USERS,
    DYNAMODB_ENDPOINT: stream.endpoint,
    AWS_REGION: 'ap-southeast-1',
  };
  for (const [name, revoke] of [['policyOff', 'false'], ['policyOn', 'true']] as const) {
    const config = loadConfig({ ...env, REVOKE_ON_REFUND: revoke });
    // Two SDK attempts, so an injected fault outlasts the client's retries and reaches the handler's own failure path.
    const sdk = new DynamoDBClient({ endpoint: stream.endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS, maxAttempts: SDK_ATTEMPTS });
    const deps = createSyncDeps(config, sdk);
    handlers[name] = (event) => createStreamHandler(deps, telemetry)(event);
  }
  client = localClient(stream.endpoint);
});

beforeEach(() => {
  telemetry = new RecordingTelemetry();
  invocations = [];
  policy = 'policyOff';
});

afterAll(async () => {
  client.destroy();
  await stream.stop();
  await dynamo.close();
  await rm(folder, { recursive: true, force: true });
});

// --- what the webhook and the app do, through the stream endpoint with ordinary SDK calls ---

async function createUser(userId: string, courses: string[] = []): Promise<void> {
  await client.send(new PutItemCommand({ TableName: USERS, Item: marshall({ userId, email: `${userId}@example.com`, purchasedCourses: courses }) }));
}

function paymentItem(orderId: string, userId: string | undefined, courseId: string | string[] | undefined, status: string, fraudStatus?: string) {
  return marshall(
    { orderId, userId, courseId, status, fraudStatus, updatedAt: new Date().toISOString() },
    { removeUndefinedValues: true },
  );
}

async function pay(orderId: string, userId: string | undefined, courseId: string | string[] | undefined, status: string, fraudStatus?: string) {
  await client.send(new PutItemCommand({ TableName: PAYMENTS, Item: paymentItem(orderId, userId, courseId, status, fraudStatus) }));
}

async function setStatus(orderId: string, status: string): Promise<void> {
  await client.send(
    new UpdateItemCommand({
      TableName: PAYMENTS,
      Key: { orderId: { S: orderId } },
      UpdateExpression: 'SET #status = :status, updatedAt = :now',
      ExpressionAttributeNames: { '#status': 'status' },
      ExpressionAttributeValues: { ':status': { S: status }, ':now': { S: new Date().toISOString() } },
    }),
  );
}

async function coursesOf(userId: string): Promise<unknown[]> {
  const { Item } = await client.send(new GetItemCommand({ TableName: USERS, Key: { userId: { S: userId } }, ConsistentRead: true }));
  return (Item?.purchasedCourses?.L ?? []).map((entry) => entry.S ?? entry.M);
}

/** Fault-injection filter: requests naming this user's key. */
const forUser = (userId: string) => (request: Record<string, unknown>) =>
  (request.Key as Record<string, { S?: string }> | undefined)?.userId?.S === userId;

const failuresReported = () => invocations.flatMap((report) => report.batchItemFailures);

describe('stream handler through the local stream delivery', () => {
  it('grants the course when a pending payment becomes settlement', async () => {
    await createUser('u-settle', ['c-old']);
    await pay('o-settle', 'u-settle', 'c-new', 'pending');
    await stream.idle();
    expect(invocations).toHaveLength(0); // pending is filtered out before the function
    await setStatus('o-settle', 'settlement');
    await stream.idle();
    expect(await coursesOf('u-settle')).toEqual(['c-old', 'c-new']);
    expect(telemetry.total('GrantsApplied')).toBe(1);
    expect(telemetry.published.at(-1)?.ProcessingLagMs).toHaveLength(1);
    expect(failuresReported()).toEqual([]);
  });

  it('grants every course of a multi-course payment', async () => {
    await createUser('u-multi');
    await pay('o-multi', 'u-multi', ['c-1', 'c-2', 'c-3'], 'SETTLEMENT');
    await stream.idle();
    expect(await coursesOf('u-multi')).toEqual(['c-1', 'c-2', 'c-3']);
  });

  it('does not grant a capture held by the fraud screen (challenge), and grants once it is accepted', async () => {
    await createUser('u-challenge');
    await pay('o-challenge', 'u-challenge', 'c-1', 'capture', 'challenge');
    await stream.idle();
    expect(await coursesOf('u-challenge')).toEqual([]);
    await pay('o-challenge', 'u-challenge', 'c-1', 'capture', 'accept');
    await stream.idle();
    expect(await coursesOf('u-challenge')).toEqual(['c-1']);
  });

  it('reports a refund with the revoke policy off', async () => {
    await createUser('u-refund-off');
    await pay('o-refund-off', 'u-refund-off', 'c-1', 'settlement');
    await stream.idle();
    await setStatus('o-refund-off', 'refund');
    await stream.idle();
    expect(await coursesOf('u-refund-off')).toEqual(['c-1']);
    expect(telemetry.total('RevocationsSkippedByPolicy')).toBe(1);
    expect(telemetry.total('RevocationsApplied')).toBe(0);
  });

  it('revokes a refund with the revoke policy on, and only the refunded course', async () => {
    policy = 'policyOn';
    await createUser('u-refund-on');
    await pay('o-refund-on-1', 'u-refund-on', 'c-1', 'settlement');
    await pay('o-refund-on-2', 'u-refund-on', 'c-2', 'settlement');
    await stream.idle();
    await setStatus('o-refund-on-2', 'Refund');
    await stream.idle();
    expect(await coursesOf('u-refund-on')).toEqual(['c-1']);
    expect(telemetry.total('RevocationsApplied')).toBe(1);
  });

  it('keeps a course bought twice and refunded once', async () => {
    policy = 'policyOn';
    await createUser('u-twice');
    await pay('o-twice-1', 'u-twice', 'c-1', 'settlement');
    await pay('o-twice-2', 'u-twice', 'c-1', 'settlement');
    await stream.idle();
    await setStatus('o-twice-1', 'refund');
    await stream.idle();
    expect(await coursesOf('u-twice')).toEqual(['c-1']);
    expect(telemetry.total('RevocationsApplied')).toBe(0);
  });

  it('revokes a settlement reversed to deny when the policy is on', async () => {
    policy = 'policyOn';
    await createUser('u-deny');
    await pay('o-deny', 'u-deny', 'c-1', 'settlement');
    await stream.idle();
    expect(await coursesOf('u-deny')).toEqual(['c-1']);
    await setStatus('o-deny', 'deny');
    await stream.idle();
    expect(await coursesOf('u-deny')).toEqual([]);
    expect(telemetry.total('RevocationsApplied')).toBe(1);
  });

  it('passes orphan and malformed payments through without failing the batch', async () => {
    await createUser('u-neighbour');
    await client.send(
      new BatchWriteItemCommand({
        RequestItems: {
          [PAYMENTS]: [
            { PutRequest: { Item: paymentItem('o-orphan', 'u-does-not-exist', 'c-1', 'settlement') } },
            { PutRequest: { Item: paymentItem('o-no-course', 'u-neighbour', undefined, 'settlement') } },
            { PutRequest: { Item: paymentItem('o-no-user', undefined, 'c-1', 'settlement') } },
            { PutRequest: { Item: paymentItem('o-odd-fraud', 'u-neighbour', 'c-9', 'capture', 'review') } },
            { PutRequest: { Item: paymentItem('o-fine', 'u-neighbour', 'c-2', 'settlement') } },
          ],
        },
      }),
    );
    await stream.idle();
    expect(failuresReported()).toEqual([]);
    expect(await readFailureMessages(failureFile)).toEqual([]);
    expect(await coursesOf('u-neighbour')).toEqual(['c-2']);
    expect(telemetry.total('OrphanPayments')).toBe(1);
    expect(telemetry.total('MalformedRecords')).toBe(3);
    const warned = telemetry.logs.filter((log) => log.level === 'warn').map((log) => log.extra.orderId);
    expect(warned.sort()).toEqual(['o-no-course', 'o-no-user', 'o-odd-fraud', 'o-orphan']);
  });

  it('counts a record whose image will not unmarshal, and a record of an unknown kind, without failing', async () => {
    const handler = createStreamHandler(createSyncDeps(loadConfig({ DYNAMODB_PAYMENTS_TABLE: PAYMENTS, DYNAMODB_USERS_TABLE: USERS, DYNAMODB_ENDPOINT: stream.endpoint })), telemetry);
    const broken = (sequence: string, dynamodb: unknown, eventName = 'INSERT') =>
      ({ eventName, eventSource: 'aws:dynamodb', dynamodb: { SequenceNumber: sequence, ApproximateCreationDateTime: 1, ...(dynamodb as object) } }) as DynamoDBRecord;
    const answer = await handler({
      Records: [
        broken('1', { NewImage: { orderId: { S: 'o-broken' }, userId: { S: 'u-x' }, courseId: { L: 'not-a-list' } } }),
        broken('2', { NewImage: { orderId: { S: 'o-empty-value' }, status: {} } }),
        broken('3', { NewImage: { orderId: { S: 'o-kind' } } }, 'TTL'),
      ],
    });
    expect(answer).toEqual({ batchItemFailures: [] });
    expect(telemetry.total('MalformedRecords')).toBe(3);
    expect(telemetry.logs.map((log) => log.extra.orderId)).toEqual(['o-broken', 'o-empty-value', 'o-kind']);
  });

  it('adds a course once when the same record is delivered twice', async () => {
    await createUser('u-dup');
    await pay('o-dup', 'u-dup', 'c-1', 'settlement');
    await stream.idle();
    const record = stream.log.at(stream.log.length - 1) as DynamoDBRecord;
    const again = await handlers.policyOff({ Records: [record, record] });
    expect(again).toEqual({ batchItemFailures: [] });
    expect(await coursesOf('u-dup')).toEqual(['c-1']);
    expect(telemetry.total('GrantsApplied')).toBe(1);
  });

  it('ends with 20 distinct courses when 20 payments of one user are written at once', async () => {
    await createUser('u-burst');
    await Promise.all(Array.from({ length: 20 }, (_, i) => pay(`o-burst-${i}`, 'u-burst', `c-${i}`, 'settlement')));
    await stream.idle();
    const courses = await coursesOf('u-burst');
    expect(new Set(courses).size).toBe(20);
    expect(courses).toHaveLength(20);
    expect(telemetry.total('GrantsApplied')).toBe(20);
  });

  it('reports a record whose write is throttled past its retries, holds back that user’s later records, and succeeds on redelivery', async () => {
    await createUser('u-throttled');
    await createUser('u-other');
    const fault = stream.injectFault({ operations: ['UpdateItem'], table: USERS, times: SDK_ATTEMPTS, when: forUser('u-throttled') });
    await client.send(
      new BatchWriteItemCommand({
        RequestItems: {
          [PAYMENTS]: [
            { PutRequest: { Item: paymentItem('o-thr-1', 'u-throttled', 'c-1', 'settlement') } },
            { PutRequest: { Item: paymentItem('o-thr-2', 'u-throttled', 'c-2', 'settlement') } },
          ],
        },
      }),
    );
    await stream.idle();
    expect(fault.hits).toBe(SDK_ATTEMPTS);
    const [first, second] = invocations;
    const sequenceOf = (orderId: string) =>
      first?.records.find((r) => r.dynamodb?.NewImage?.orderId?.S === orderId)?.dynamodb?.SequenceNumber;
    // Both records were in the first batch: the throttled one failed, the later one of the same user was held back.
    expect(first?.outcome).toBe('partial-failure');
    expect([...(first?.batchItemFailures ?? [])].sort()).toEqual([sequenceOf('o-thr-1'), sequenceOf('o-thr-2')].sort());
    expect(second?.outcome).toBe('success');
    expect(await coursesOf('u-throttled')).toEqual(['c-1', 'c-2']);
    expect(telemetry.total('RecordsFailed')).toBe(2);
    expect(await readFailureMessages(failureFile)).toEqual([]);
  });

  it('rejects, without retrying, a record whose write DynamoDB refuses for good (the user item would pass 400 KB); later records of the user go on', async () => {
    await client.send(new PutItemCommand({ TableName: USERS, Item: marshall({ userId: 'u-huge', purchasedCourses: [], profile: 'x'.repeat(400 * 1024 - 100) }) }));
    await client.send(
      new BatchWriteItemCommand({
        RequestItems: {
          [PAYMENTS]: [
            { PutRequest: { Item: paymentItem('o-huge-1', 'u-huge', `course-${'long'.repeat(25)}`, 'settlement') } },
            { PutRequest: { Item: paymentItem('o-huge-2', 'u-huge', 'c-1', 'pending') } },
          ],
        },
      }),
    );
    await stream.idle();
    expect(invocations).toHaveLength(1);
    expect(invocations[0]?.batchItemFailures).toEqual([]);
    expect(telemetry.total('RecordsRejected')).toBe(1);
    expect(telemetry.total('RecordsFailed')).toBe(0);
    expect(await coursesOf('u-huge')).toEqual([]);
    expect(await readFailureMessages(failureFile)).toEqual([]);
  });

  it('keeps other users’ records of a batch going when one user’s record fails', async () => {
    await createUser('u-slow');
    await createUser('u-fast');
    const fault = stream.injectFault({ operations: ['UpdateItem'], table: USERS, times: SDK_ATTEMPTS, when: forUser('u-slow') });
    await client.send(
      new BatchWriteItemCommand({
        RequestItems: {
          [PAYMENTS]: [
            { PutRequest: { Item: paymentItem('o-slow', 'u-slow', 'c-1', 'settlement') } },
            { PutRequest: { Item: paymentItem('o-fast', 'u-fast', 'c-1', 'settlement') } },
          ],
        },
      }),
    );
    await stream.idle();
    expect(fault.hits).toBe(SDK_ATTEMPTS);
    expect(invocations[0]?.batchItemFailures).toHaveLength(1);
    expect(await coursesOf('u-slow')).toEqual(['c-1']);
    expect(await coursesOf('u-fast')).toEqual(['c-1']);
  });

  it('sends a batch that fails beyond its retries to the failure destination', async () => {
    await createUser('u-doomed');
    const fault = stream.injectFault({ operations: ['UpdateItem'], table: USERS, when: forUser('u-doomed') });
    try {
      await pay('o-doomed', 'u-doomed', 'c-1', 'settlement');
      await stream.idle();
    } finally {
      fault.remove();
    }
    const sequence = stream.log.at(stream.log.length - 1)?.dynamodb?.SequenceNumber;
    const messages = await readFailureMessages(failureFile);
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatchObject({
      requestContext: { condition: 'RetryAttemptsExhausted', approximateInvokeCount: 4 },
      responseContext: { statusCode: 200, executedVersion: '$LATEST' },
      DDBStreamBatchInfo: { startSequenceNumber: sequence, endSequenceNumber: sequence, batchSize: 1, streamArn: stream.log.streamArn },
    });
    expect(await coursesOf('u-doomed')).toEqual([]);
    // The shard is not blocked: the next payment is applied.
    await pay('o-after-doom', 'u-doomed', 'c-2', 'settlement');
    await stream.idle();
    expect(await coursesOf('u-doomed')).toEqual(['c-2']);
  });
});

describe('the Lambda entry point', () => {
  it('loads the environment contract once and answers a stream event with batchItemFailures', async () => {
    await createUser('u-entry');
    await pay('o-entry', 'u-entry', 'c-1', 'settlement');
    await stream.idle();
    const record = stream.log.at(stream.log.length - 1) as DynamoDBRecord;
    await client.send(new UpdateItemCommand({ TableName: USERS, Key: { userId: { S: 'u-entry' } }, UpdateExpression: 'SET purchasedCourses = :none', ExpressionAttributeValues: { ':none': { L: [] } } }));
    const saved = { ...process.env };
    Object.assign(process.env, {
      DYNAMODB_PAYMENTS_TABLE: PAYMENTS,
      DYNAMODB_USERS_TABLE: USERS,
      DYNAMODB_ENDPOINT: dynamo.endpoint,
      POWERTOOLS_METRICS_DISABLED: 'true',
      LOG_LEVEL: 'ERROR',
    });
    try {
      // A fresh module instance, so that its module-scope loadConfig() reads the environment set here.
      let entry: EntryModule | undefined;
      jest.isolateModules(() => {
        entry = jest.requireActual<EntryModule>('../../lambdas/stream/handler');
      });
      expect(await entry?.handler({ Records: [record] })).toEqual({ batchItemFailures: [] });
      expect(await coursesOf('u-entry')).toEqual(['c-1']);
    } finally {
      process.env = saved;
    }
  });
});
