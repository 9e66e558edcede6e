import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import type { DynamoDBBatchResponse, DynamoDBStreamEvent } from 'aws-lambda';
import { createTables, DEFAULT_TABLES, localClient, startDynalite } from '../../scripts/local/embedded-dynamodb';
import type { EmbeddedDynamo } from '../../scripts/local/embedded-dynamodb';
import { readFailureMessages } from '../../scripts/local/stream/failure-destination';
import { startLocalStream } from '../../scripts/local/stream/local-stream';
import type { LocalStream } from '../../scripts/local/stream/local-stream';

const PAYMENTS = DEFAULT_TABLES.paymentsTable;

let dynamo: EmbeddedDynamo;
let folder: string;
beforeAll(async () => {
  dynamo = await startDynalite();
  await createTables(localClient(dynamo.endpoint));
  folder = await mkdtemp(join(tmpdir(), 'stream-delivery-'));
});
afterAll(async () => {
  await dynamo.close();
  await rm(folder, { recursive: true, force: true });
});

const put = (endpoint: string, orderId: string, status: string) => {
  const client = localClient(endpoint);
  return client
    .send(new PutItemCommand({ TableName: PAYMENTS, Item: { orderId: { S: orderId }, userId: { S: 'u-1' }, courseId: { S: 'c-1' }, status: { S: status } } }))
    .finally(() => client.destroy());
};

describe('local stream: capture proxy + event source mapping with the deployed settings', () => {
  let stream: LocalStream | undefined;
  afterEach(async () => {
    await stream?.stop();
    stream = undefined;
  });

  it('delivers only the payments writes the deployed filter keeps', async () => {
    const seen: string[] = [];
    stream = await startLocalStream({
      upstreamEndpoint: dynamo.endpoint,
      paymentsTable: PAYMENTS,
      handler: async (event) => {
        seen.push(...event.Records.map((r) => `${r.eventName} ${r.dynamodb?.NewImage?.status?.S}`));
      },
    });
    await put(stream.endpoint, 'o-1', 'pending');
    const client = localClient(stream.endpoint);
    await client.send(
      new UpdateItemCommand({
        TableName: PAYMENTS,
        Key: { orderId: { S: 'o-1' } },
        UpdateExpression: 'SET #s = :s',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: { ':s': { S: 'SETTLEMENT' } },
      }),
    );
    client.destroy();
    await stream.idle();
    expect(seen).toEqual(['MODIFY SETTLEMENT']);
    expect(stream.log.length).toBe(2);
  });

  it('writes a batch that keeps failing to the failure file, then moves on', async () => {
    const failureFile = join(folder, 'nested', 'stream-failures.jsonl');
    const handler = async (event: DynamoDBStreamEvent): Promise<DynamoDBBatchResponse> => ({
      batchItemFailures: event.Records.filter((r) => r.dynamodb?.Keys?.orderId?.S === 'o-bad').map((r) => ({
        itemIdentifier: r.dynamodb?.SequenceNumber as string,
      })),
    });
    stream = await startLocalStream({
      upstreamEndpoint: dynamo.endpoint,
      paymentsTable: PAYMENTS,
      handler,
      failureFile,
      retryDelayMs: 0,
      settings: { maximumRetryAttempts: 2 },
    });
    await put(stream.endpoint, 'o-bad', 'settlement');
    await put(stream.endpoint, 'o-good', 'settlement');
    await stream.idle();
    const messages = await readFailureMessages(failureFile);
    expect(messages).toHaveLength(1);
    expect(messages[0]?.requestContext).toMatchObject({ condition: 'RetryAttemptsExhausted', approximateInvokeCount: 3 });
    expect(messages[0]?.DDBStreamBatchInfo).toMatchObject({
      startSequenceNumber: stream.log.at(0)?.dynamodb?.SequenceNumber,
      streamArn: stream.log.streamArn,
      shardId: stream.log.shardId,
    });
  });
});
