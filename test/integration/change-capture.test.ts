import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BatchWriteItemCommand, DeleteItemCommand, PutItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { touchedUserIds } from '../../lambdas/core/snapshot/incremental-export';
import type { RunStorage } from '../../lambdas/core/storage/run-storage';
import { createTables, DEFAULT_TABLES, localClient, startDynalite } from '../../scripts/local/embedded-dynamodb';
import type { EmbeddedDynamo } from '../../scripts/local/embedded-dynamodb';
import { startCaptureProxy } from '../../scripts/local/stream/capture-proxy';
import type { CaptureProxy } from '../../scripts/local/stream/capture-proxy';
import { ChangeLog, exportChanges } from '../../scripts/local/stream/change-log';
import { removeRunFolders, runFolder } from '../support/full-run';

const PAYMENTS = DEFAULT_TABLES.paymentsTable;
const USERS = DEFAULT_TABLES.usersTable;
const USER_ATTR = 'userId';

let dynamo: EmbeddedDynamo;
let proxy: CaptureProxy;
let client: DynamoDBClient;
let changeLog: ChangeLog;
let logFolder: string;
let storage: RunStorage;
/** When set, the change log's clock stands still there (the tightest boundary case); real time otherwise. */
let frozenAt: number | undefined;

beforeAll(async () => {
  dynamo = await startDynalite();
  await createTables(localClient(dynamo.endpoint));
  logFolder = mkdtempSync(join(tmpdir(), 'payment-sync-changes-'));
  changeLog = new ChangeLog({ folder: logFolder, now: () => frozenAt ?? Date.now() });
  proxy = await startCaptureProxy({ upstreamEndpoint: dynamo.endpoint, tableName: PAYMENTS, usersTableName: USERS, changeLog, region: 'ap-southeast-1' });
  client = localClient(proxy.endpoint);
  storage = runFolder();
});

afterAll(async () => {
  client.destroy();
  await proxy.close();
  await dynamo.close();
  rmSync(logFolder, { recursive: true, force: true });
  removeRunFolders();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** A window boundary strictly after every write made so far (write times are whole milliseconds). */
async function boundary(): Promise<Date> {
  await sleep(5);
  const at = new Date();
  await sleep(5);
  return at;
}

const putPayment = (orderId: string, userId: string, status = 'settlement') =>
  client.send(new PutItemCommand({ TableName: PAYMENTS, Item: { orderId: { S: orderId }, userId: { S: userId }, courseId: { S: `course-of-${orderId}` }, status: { S: status } } }));
const putUser = (userId: string, courses: string[]) =>
  client.send(new PutItemCommand({ TableName: USERS, Item: { userId: { S: userId }, purchasedCourses: { L: courses.map((c) => ({ S: c })) } } }));

let exportCount = 0;
/** The users the local incremental export of one table over [from, to) touches, read as AWS's are read. */
async function touched(table: 'payments' | 'users', from: Date, to: Date, log: ChangeLog = changeLog): Promise<string[]> {
  exportCount += 1;
  const { summaryKey } = await exportChanges(log, storage, `exports/${exportCount}-${table}`, { table: table === 'payments' ? PAYMENTS : USERS, from, to });
  const result = await touchedUserIds(storage, summaryKey, { table, userAttr: USER_ATTR });
  expect(result.malformed).toBe(0);
  return result.userIds;
}

describe('the capture of writes to both tables, exported as DynamoDB incremental exports', () => {
  let a: Date;
  let b: Date;
  let c: Date;
  let d: Date;
  let streamRecordsBefore: number;

  beforeAll(async () => {
    // Before the windows: writes that no window below may show.
    await putPayment('o-early', 'u-early');
    await putUser('u-early', ['course-x']);
    await putUser('u-gone', ['course-y']);
    await putUser('u-cond', []);
    streamRecordsBefore = proxy.log.length;
    a = await boundary();

    // [a, b): a payment put, a user list written by the LMS.
    await putPayment('o-1', 'u-buyer');
    await putUser('u-lms', ['course-1', 'course-2']);
    b = await boundary();

    // [b, c): the payment moved to another user, the list overwritten by an UpdateItem (a stale
    // copy without course-2), a user deleted, one batch across both tables; and writes that
    // change nothing: a put of the same item, a conditional write that fails.
    await client.send(
      new UpdateItemCommand({ TableName: PAYMENTS, Key: { orderId: { S: 'o-1' } }, UpdateExpression: 'SET userId = :u', ExpressionAttributeValues: { ':u': { S: 'u-other' } } }),
    );
    await client.send(
      new UpdateItemCommand({
        TableName: USERS,
        Key: { userId: { S: 'u-lms' } },
        UpdateExpression: 'SET purchasedCourses = :list',
        ExpressionAttributeValues: { ':list': { L: [{ S: 'course-1' }] } },
      }),
    );
    await client.send(new DeleteItemCommand({ TableName: USERS, Key: { userId: { S: 'u-gone' } } }));
    await client.send(
      new BatchWriteItemCommand({
        RequestItems: {
          [PAYMENTS]: [{ PutRequest: { Item: { orderId: { S: 'o-batch' }, userId: { S: 'u-batch-payer' }, courseId: { S: 'c' }, status: { S: 'settlement' } } } }],
          [USERS]: [{ PutRequest: { Item: { userId: { S: 'u-batch-user' } } } }],
        },
      }),
    );
    await putUser('u-early', ['course-x']);
    await expect(
      client.send(new PutItemCommand({ TableName: USERS, Item: { userId: { S: 'u-cond' }, purchasedCourses: { L: [{ S: 'z' }] } }, ConditionExpression: 'attribute_not_exists(userId)' })),
    ).rejects.toMatchObject({ name: 'ConditionalCheckFailedException' });
    c = await boundary();

    // After the windows.
    await putPayment('o-late', 'u-late');
    await putUser('u-late-user', []);
    d = await boundary();
  });

  test('each window gives exactly the users its writes touched, in both tables', async () => {
    expect(await touched('payments', a, b)).toEqual(['u-buyer']);
    expect(await touched('users', a, b)).toEqual(['u-lms']);
    // The moved payment names its old and its new user; the batch is captured table by table.
    expect(await touched('payments', b, c)).toEqual(['u-batch-payer', 'u-buyer', 'u-other']);
    // Overwritten by UpdateItem, deleted, written by a batch; not u-early (unchanged) nor u-cond (refused).
    expect(await touched('users', b, c)).toEqual(['u-batch-user', 'u-gone', 'u-lms']);
    // Writes outside a window never show in it.
    expect(await touched('payments', c, d)).toEqual(['u-late']);
    expect(await touched('users', c, d)).toEqual(['u-late-user']);
  });

  test('a window over several writes to one item is compacted as AWS compacts it: the item before the window, the item after', async () => {
    // o-1 did not exist at a and is u-other's at c: u-buyer held it only inside the window.
    expect(await touched('payments', a, c)).toEqual(['u-batch-payer', 'u-other']);
    const { writes, lines } = await exportChanges(changeLog, storage, 'exports/compacted', { table: PAYMENTS, from: a, to: c });
    expect({ writes, lines }).toEqual({ writes: 3, lines: 2 });
  });

  test('the change log holds each write with its exact old and new images; the stream still gets payments writes only', async () => {
    const entries = [];
    for await (const entry of changeLog.entries(PAYMENTS, { from: b, to: c })) entries.push(entry);
    expect(entries[0]).toEqual({
      table: PAYMENTS,
      writeTimeMicros: expect.any(Number),
      keys: { orderId: { S: 'o-1' } },
      oldImage: { orderId: { S: 'o-1' }, userId: { S: 'u-buyer' }, courseId: { S: 'course-of-o-1' }, status: { S: 'settlement' } },
      newImage: { orderId: { S: 'o-1' }, userId: { S: 'u-other' }, courseId: { S: 'course-of-o-1' }, status: { S: 'settlement' } },
    });
    const deleted = [];
    for await (const entry of changeLog.entries(USERS, { from: b, to: c })) if (!entry.newImage) deleted.push(entry);
    expect(deleted).toEqual([{ table: USERS, writeTimeMicros: expect.any(Number), keys: { userId: { S: 'u-gone' } }, oldImage: { userId: { S: 'u-gone' }, purchasedCourses: { L: [{ S: 'course-y' }] } } }]);

    const streamed = [];
    for (let i = streamRecordsBefore; i < proxy.log.length; i += 1) streamed.push(proxy.log.at(i)?.dynamodb?.Keys?.orderId?.S);
    expect(streamed).toEqual(['o-1', 'o-1', 'o-batch', 'o-late']);
  });

  test('the log outlives the process: another ChangeLog on the same folder exports the same', async () => {
    const reopened = new ChangeLog({ folder: logFolder });
    expect(await touched('payments', b, c, reopened)).toEqual(['u-batch-payer', 'u-buyer', 'u-other']);
    expect(await touched('users', b, c, reopened)).toEqual(['u-batch-user', 'u-gone', 'u-lms']);
  });

  test('a window that ends in the future is refused, as ExportToTime is', async () => {
    await expect(exportChanges(changeLog, storage, 'exports/future', { table: PAYMENTS, from: a, to: new Date(Date.now() + 60_000) })).rejects.toThrow(/in the future/);
  });
});

describe('window boundaries', () => {
  test('writes in flight when a window closes land in exactly one of two adjacent windows, and an overlapping window re-reads the overlap', async () => {
    const start = await boundary();
    const users = Array.from({ length: 40 }, (_, i) => `u-race-${String(i).padStart(2, '0')}`);
    let done = 0;
    const writes = users.map((user, i) => sleep(i % 10).then(() => putPayment(`o-race-${i}`, user)).then(() => (done += 1)));
    while (done < 5) await sleep(1);
    // The window closes at t and is exported at once, while most writes are still on their way.
    // The log's clock stands still at t meanwhile, so each write recorded from now on is stamped
    // t exactly, the closest a write recorded after the window closed can come to it: none may
    // fall before t, where the export has already been read.
    frozenAt = Date.now();
    const t = new Date(frozenAt);
    const first = await touched('payments', start, t);
    await Promise.all(writes);
    frozenAt = undefined;
    const end = await boundary();
    const second = await touched('payments', t, end);

    expect(first.length).toBeGreaterThanOrEqual(5);
    expect(second.length).toBeGreaterThan(0);
    expect(first.filter((user) => second.includes(user))).toEqual([]);
    expect([...first, ...second].sort()).toEqual(users);

    // The next run's window starts an overlap before the last one ended: it misses nothing and
    // shows again what was written in the overlap.
    const overlapFrom = new Date(t.getTime() - 3);
    const overlapping = await touched('payments', overlapFrom, end);
    expect([...new Set([...first, ...overlapping])].sort()).toEqual(users);
    const inOverlap: string[] = [];
    for await (const entry of changeLog.entries(PAYMENTS, { from: overlapFrom, to: t })) inOverlap.push(entry.newImage?.userId?.S ?? '');
    expect(first).toEqual(expect.arrayContaining(inOverlap));
    expect(overlapping).toEqual(expect.arrayContaining(inOverlap));
  });

  test('in memory, without a folder, the log exports the same way', async () => {
    let now = Date.parse('2025-11-01T12:00:00.000Z');
    const memory = new ChangeLog({ now: () => now });
    const keys = (id: string) => ({ userId: { S: id } });
    memory.append({ table: USERS, keys: keys('u1'), oldImage: undefined, newImage: keys('u1') });
    now += 1000;
    // A write that changes nothing is not a change.
    expect(memory.append({ table: USERS, keys: keys('u1'), oldImage: keys('u1'), newImage: keys('u1') })).toBeUndefined();
    memory.append({ table: USERS, keys: keys('u2'), oldImage: undefined, newImage: keys('u2') });
    now += 1000;
    const at = (iso: string) => new Date(iso);
    expect(await touched('users', at('2025-11-01T12:00:00.000Z'), at('2025-11-01T12:00:01.000Z'), memory)).toEqual(['u1']);
    expect(await touched('users', at('2025-11-01T12:00:01.000Z'), at('2025-11-01T12:00:02.000Z'), memory)).toEqual(['u2']);
    expect(memory.folder).toBeUndefined();
  });
});
