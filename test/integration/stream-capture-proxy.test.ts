import {
  BatchWriteItemCommand,
  DeleteItemCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { DynamoDBRecord } from 'aws-lambda';
import { createTables, DEFAULT_TABLES, LOCAL_CREDENTIALS, LOCAL_REGION, localClient, startDynalite } from '../../scripts/local/embedded-dynamodb';
import type { EmbeddedDynamo } from '../../scripts/local/embedded-dynamodb';
import { startCaptureProxy } from '../../scripts/local/stream/capture-proxy';
import type { CaptureProxy } from '../../scripts/local/stream/capture-proxy';

const PAYMENTS = DEFAULT_TABLES.paymentsTable;
const USERS = DEFAULT_TABLES.usersTable;

let dynamo: EmbeddedDynamo;
let proxy: CaptureProxy;
let client: DynamoDBClient;
let records: DynamoDBRecord[];

beforeAll(async () => {
  dynamo = await startDynalite();
  await createTables(localClient(dynamo.endpoint));
  proxy = await startCaptureProxy({ upstreamEndpoint: dynamo.endpoint, tableName: PAYMENTS, region: 'ap-southeast-1' });
  client = localClient(proxy.endpoint);
  proxy.log.subscribe((record) => records.push(record));
});

beforeEach(() => {
  records = [];
});

afterAll(async () => {
  client.destroy();
  await proxy.close();
  await dynamo.close();
});

const payment = (orderId: string, status: string) => ({
  orderId: { S: orderId },
  userId: { S: 'u-1' },
  courseId: { S: 'c-1' },
  status: { S: status },
});

describe('capture proxy in front of dynalite', () => {
  it('passes requests and answers through unchanged', async () => {
    await client.send(new PutItemCommand({ TableName: USERS, Item: { userId: { S: 'u-pass' }, n: { N: '1' } } }));
    const read = await client.send(new GetItemCommand({ TableName: USERS, Key: { userId: { S: 'u-pass' } } }));
    expect(read.Item).toEqual({ userId: { S: 'u-pass' }, n: { N: '1' } });
    const failed = client.send(new GetItemCommand({ TableName: 'no-such-table', Key: { id: { S: 'x' } } }));
    await expect(failed).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
    expect(records).toEqual([]);
  });

  it('turns an insert into an INSERT record with the key and the new image, in the shape Lambda delivers', async () => {
    const before = Math.floor(Date.now() / 1000);
    await client.send(new PutItemCommand({ TableName: PAYMENTS, Item: payment('o-insert', 'pending') }));
    expect(records).toHaveLength(1);
    const [record] = records;
    expect(record).toEqual({
      eventID: expect.stringMatching(/^[0-9a-f]{32}$/),
      eventName: 'INSERT',
      eventVersion: '1.1',
      eventSource: 'aws:dynamodb',
      awsRegion: 'ap-southeast-1',
      dynamodb: {
        ApproximateCreationDateTime: expect.any(Number),
        Keys: { orderId: { S: 'o-insert' } },
        NewImage: payment('o-insert', 'pending'),
        SequenceNumber: expect.stringMatching(/^\d{21}$/),
        SizeBytes: expect.any(Number),
        StreamViewType: 'NEW_AND_OLD_IMAGES',
      },
      eventSourceARN: proxy.log.streamArn,
    });
    expect(record?.dynamodb?.ApproximateCreationDateTime).toBeGreaterThanOrEqual(before);
    expect(record?.dynamodb?.SizeBytes).toBeGreaterThan(0);
    expect(proxy.log.streamArn).toMatch(/^arn:aws:dynamodb:ap-southeast-1:\d{12}:table\/lms-payments\/stream\/.+/);
  });

  it('records old and new images of a change, and nothing for a write that changes nothing', async () => {
    await client.send(new PutItemCommand({ TableName: PAYMENTS, Item: payment('o-mod', 'pending') }));
    await client.send(
      new UpdateItemCommand({
        TableName: PAYMENTS,
        Key: { orderId: { S: 'o-mod' } },
        UpdateExpression: 'SET #s = :s',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: { ':s': { S: 'settlement' } },
      }),
    );
    await client.send(new PutItemCommand({ TableName: PAYMENTS, Item: payment('o-mod', 'settlement') }));
    expect(records.map((r) => r.eventName)).toEqual(['INSERT', 'MODIFY']);
    expect(records[1]?.dynamodb?.OldImage).toEqual(payment('o-mod', 'pending'));
    expect(records[1]?.dynamodb?.NewImage).toEqual(payment('o-mod', 'settlement'));
  });

  it('records nothing for a failed condition, and nothing for deleting a missing item', async () => {
    await client.send(new PutItemCommand({ TableName: PAYMENTS, Item: payment('o-cond', 'pending') }));
    const conditional = client.send(
      new PutItemCommand({
        TableName: PAYMENTS,
        Item: payment('o-cond', 'settlement'),
        ConditionExpression: 'attribute_not_exists(orderId)',
      }),
    );
    await expect(conditional).rejects.toMatchObject({ name: 'ConditionalCheckFailedException' });
    await client.send(new DeleteItemCommand({ TableName: PAYMENTS, Key: { orderId: { S: 'o-never-there' } } }));
    expect(records.map((r) => r.eventName)).toEqual(['INSERT']);
  });

  it('turns a delete into a REMOVE record with the old image', async () => {
    await client.send(new PutItemCommand({ TableName: PAYMENTS, Item: payment('o-del', 'expire') }));
    await client.send(new DeleteItemCommand({ TableName: PAYMENTS, Key: { orderId: { S: 'o-del' } } }));
    expect(records.map((r) => r.eventName)).toEqual(['INSERT', 'REMOVE']);
    expect(records[1]?.dynamodb?.OldImage).toEqual(payment('o-del', 'expire'));
    expect(records[1]?.dynamodb?.NewImage).toBeUndefined();
    expect(records[1]?.dynamodb?.Keys).toEqual({ orderId: { S: 'o-del' } });
  });

  it('records every payments item of a BatchWriteItem, and none of the other tables in it', async () => {
    await client.send(new PutItemCommand({ TableName: PAYMENTS, Item: payment('o-b3', 'pending') }));
    await client.send(
      new BatchWriteItemCommand({
        RequestItems: {
          [PAYMENTS]: [
            { PutRequest: { Item: payment('o-b1', 'settlement') } },
            { PutRequest: { Item: payment('o-b2', 'settlement') } },
            { DeleteRequest: { Key: { orderId: { S: 'o-b3' } } } },
          ],
          [USERS]: [{ PutRequest: { Item: { userId: { S: 'u-batch' } } } }],
        },
      }),
    );
    expect(records.slice(1).map((r) => [r.eventName, r.dynamodb?.Keys?.orderId?.S])).toEqual([
      ['INSERT', 'o-b1'],
      ['INSERT', 'o-b2'],
      ['REMOVE', 'o-b3'],
    ]);
  });

  it('captures writes from the document client as well', async () => {
    const documents = DynamoDBDocumentClient.from(client);
    await documents.send(new PutCommand({ TableName: PAYMENTS, Item: { orderId: 'o-doc', userId: 'u-1', courseId: ['c-1', 'c-2'], status: 'pending', amount: 150000 } }));
    await documents.send(
      new UpdateCommand({ TableName: PAYMENTS, Key: { orderId: 'o-doc' }, UpdateExpression: 'SET #s = :s', ExpressionAttributeNames: { '#s': 'status' }, ExpressionAttributeValues: { ':s': 'settlement' } }),
    );
    expect(records.map((r) => r.eventName)).toEqual(['INSERT', 'MODIFY']);
    expect(records[1]?.dynamodb?.NewImage).toMatchObject({ courseId: { L: [{ S: 'c-1' }, { S: 'c-2' }] }, amount: { N: '150000' }, status: { S: 'settlement' } });
  });

  it('keeps images exact and sequence numbers increasing under concurrent writes to one item', async () => {
    await client.send(new PutItemCommand({ TableName: PAYMENTS, Item: { ...payment('o-race', 'pending'), n: { N: '0' } } }));
    await Promise.all(
      Array.from({ length: 20 }, () =>
        client.send(
          new UpdateItemCommand({
            TableName: PAYMENTS,
            Key: { orderId: { S: 'o-race' } },
            UpdateExpression: 'ADD n :one',
            ExpressionAttributeValues: { ':one': { N: '1' } },
          }),
        ),
      ),
    );
    const modifies = records.slice(1);
    expect(modifies).toHaveLength(20);
    modifies.forEach((record, i) => {
      expect(record.dynamodb?.OldImage?.n).toEqual({ N: String(i) });
      expect(record.dynamodb?.NewImage?.n).toEqual({ N: String(i + 1) });
    });
    const sequence = records.map((r) => BigInt(r.dynamodb?.SequenceNumber as string));
    expect(sequence.every((n, i) => i === 0 || n > (sequence[i - 1] as bigint))).toBe(true);
  });

  it('answers chosen requests with an injected DynamoDB error, a given number of times', async () => {
    const fault = proxy.injectFault({ operations: ['PutItem'], table: USERS, times: 1 });
    const throttled = new DynamoDBClient({ endpoint: proxy.endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS, maxAttempts: 1 });
    const write = () => throttled.send(new PutItemCommand({ TableName: USERS, Item: { userId: { S: 'u-fault' } } }));
    await expect(write()).rejects.toMatchObject({ name: 'ProvisionedThroughputExceededException' });
    await expect(write()).resolves.toBeDefined();
    expect(fault.hits).toBe(1);
    throttled.destroy();
  });
});
