import { UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { createSyncDeps, type SyncDeps } from '../../lambdas/core/deps';
import { applyPaymentChange } from '../../lambdas/core/jobs/payment-change';
import { reconcileUser, reconcileUsers } from '../../lambdas/core/jobs/user-reconcile';
import { courseIdsOf, startTestTables, type TestTables } from '../support/local-tables';

const runId = 'test-run';

describe('per-user validate and fix against dynalite', () => {
  let tables: TestTables;
  let deps: SyncDeps;

  beforeEach(async () => {
    tables = await startTestTables();
    deps = createSyncDeps(tables.config, tables.client);
    await tables.putUser('u1', { L: [{ S: 'c1' }, { S: 'c1' }, { S: 'c3' }, { S: 'manual' }, { N: '5' }] }, { email: { S: 'u1@example.com' } });
    await tables.putPayment('o1', { userId: 'u1', courseId: 'c1', status: 'settlement' });
    await tables.putPayment('o2', { userId: 'u1', courseId: 'c2', status: 'SETTLEMENT' });
    await tables.putPayment('o3', { userId: 'u1', courseId: 'c3', status: 'refund' });
    await tables.putPayment('o4', { userId: 'u1', courseId: 'c4', status: 'capture', fraudStatus: 'challenge' });
  });
  afterEach(() => tables.close());

  test('a dry run reports every issue with its order ids and writes nothing', async () => {
    const before = await tables.dump('users');
    const { result, change } = await reconcileUser(deps, 'u1', { dryRun: true, runId });
    expect(result.status).toBe('would-fix');
    expect(result.added).toEqual(['c2']);
    expect(result.duplicatesRemoved).toEqual(['c1']);
    const byKind = Object.fromEntries(result.issues.map((issue) => [`${issue.kind}:${issue.courseId ?? ''}`, issue]));
    expect(byKind['missing:c2']?.orderIds).toEqual(['o2']);
    expect(byKind['duplicate:c1']?.orderIds).toEqual(['o1']);
    expect(byKind['revoked:c3']).toMatchObject({ orderIds: ['o3'], fix: 'none' });
    expect(byKind['unbacked:manual']?.fix).toBe('none');
    expect(byKind['malformed-entry:']).toBeDefined();
    expect(change).toBeUndefined();
    expect(await tables.dump('users')).toEqual(before);
  });

  test('a fix grants, drops the duplicate, keeps what it does not own; a second fix changes nothing', async () => {
    const { result, change } = await reconcileUser(deps, 'u1', { dryRun: false, runId });
    expect(result.status).toBe('fixed');
    expect(await tables.userCourses('u1')).toEqual({ L: [{ S: 'c1' }, { S: 'c3' }, { S: 'manual' }, { N: '5' }, { S: 'c2' }] });
    expect((await tables.userItem('u1'))?.email).toEqual({ S: 'u1@example.com' });
    expect(change).toMatchObject({ userId: 'u1', added: ['c2'], duplicatesRemoved: ['c1'] });
    expect([...(change?.orderIds ?? [])].sort()).toEqual(['o1', 'o2']);
    expect(courseIdsOf(change?.before ?? undefined)).toEqual(['c1', 'c1', 'c3', 'manual', '<malformed {"N":"5"}>']);

    const after = await tables.dump('users');
    const second = await reconcileUser(deps, 'u1', { dryRun: false, runId });
    expect(second.result.status).toBe('in-sync');
    expect(second.result.issues.map((issue) => issue.kind).sort()).toEqual(['malformed-entry', 'revoked', 'unbacked']);
    expect(second.change).toBeUndefined();
    expect(await tables.dump('users')).toEqual(after);
  });

  test('an unknown user is reported with its paid orders, never created', async () => {
    await tables.putPayment('o9', { userId: 'ghost', courseId: 'c9', status: 'settlement' });
    const { result } = await reconcileUser(deps, 'ghost', { dryRun: false, runId });
    expect(result.status).toBe('not-found');
    expect(result.issues).toEqual([expect.objectContaining({ kind: 'orphan-payment', orderIds: ['o9'] })]);
    expect(await tables.userItem('ghost')).toBeUndefined();
  });

  test('one failing user is an error line, the others are still answered', async () => {
    await tables.putUser('u2', { S: 'not a list' });
    await tables.putPayment('o5', { userId: 'u2', courseId: 'c5', status: 'settlement' });
    const outcomes = await reconcileUsers(deps, ['u2', 'u1', 'u1'], { dryRun: false, runId });
    expect(outcomes.map(({ result }) => [result.userId, result.status])).toEqual([
      ['u2', 'in-sync'],
      ['u1', 'fixed'],
    ]);
    expect(outcomes[0]?.result.issues[0]).toMatchObject({ kind: 'malformed-entry' });
    expect(await tables.userCourses('u2')).toEqual({ S: 'not a list' });
  });
});

describe('revoke policy and list formats', () => {
  let tables: TestTables;
  afterEach(() => tables.close());

  test('with REVOKE_ON_REFUND a refunded course goes, one bought twice and refunded once stays', async () => {
    tables = await startTestTables({ REVOKE_ON_REFUND: 'true' });
    const deps = createSyncDeps(tables.config, tables.client);
    await tables.putUser('u1', { L: [{ S: 'refunded' }, { S: 'twice' }, { S: 'kept' }] });
    await tables.putPayment('a', { userId: 'u1', courseId: 'refunded', status: 'refund' });
    await tables.putPayment('b', { userId: 'u1', courseId: 'twice', status: 'settlement' });
    await tables.putPayment('c', { userId: 'u1', courseId: 'twice', status: 'chargeback' });
    await tables.putPayment('d', { userId: 'u1', courseId: 'kept', status: 'settlement' });
    const { result } = await reconcileUser(deps, 'u1', { dryRun: false, runId });
    expect(result.removed).toEqual(['refunded']);
    expect(courseIdsOf(await tables.userCourses('u1'))).toEqual(['twice', 'kept']);
  });

  test('an object-format list gets object entries and keeps unknown fields byte for byte', async () => {
    tables = await startTestTables();
    const deps = createSyncDeps(tables.config, tables.client);
    const existing = { M: { courseId: { S: 'c1' }, purchasedAt: { S: '2024-02-02T00:00:00Z' }, price: { N: '150000.50' }, tags: { SS: ['a', 'b'] } } };
    await tables.putUser('u1', { L: [existing] });
    await tables.putPayment('o1', { userId: 'u1', courseId: 'c1', status: 'settlement' });
    await tables.putPayment('o2', { userId: 'u1', courseId: ['c2', 'c3'], status: 'capture' });
    const stored = (await tables.userCourses('u1'))?.L?.[0];
    await reconcileUser(deps, 'u1', { dryRun: false, runId });
    const list = (await tables.userCourses('u1'))?.L ?? [];
    expect(list[0]).toEqual(stored);
    expect(list[0]?.M?.tags).toEqual({ SS: ['a', 'b'] });
    expect(list.slice(1).map((entry) => [entry.M?.courseId?.S, entry.M?.orderId?.S, typeof entry.M?.purchasedAt?.S])).toEqual([
      ['c2', 'o2', 'string'],
      ['c3', 'o2', 'string'],
    ]);
  });

  test('an empty list takes the configured format', async () => {
    tables = await startTestTables({ PURCHASED_COURSES_FORMAT: 'objects' });
    const deps = createSyncDeps(tables.config, tables.client);
    await tables.putUser('u1');
    await tables.putPayment('o1', { userId: 'u1', courseId: 'c1', status: 'success' });
    await reconcileUser(deps, 'u1', { dryRun: false, runId });
    expect((await tables.userCourses('u1'))?.L?.[0]?.M?.courseId).toEqual({ S: 'c1' });
  });
});

describe('the one write path under concurrency', () => {
  let tables: TestTables;
  afterEach(() => tables.close());

  test('20 grants, 10 fixers and an outside writer on one user: nothing lost, nothing doubled', async () => {
    tables = await startTestTables();
    const deps = createSyncDeps(tables.config, tables.client);
    await tables.putUser('u1', { L: [] });
    const courses = Array.from({ length: 20 }, (_, i) => `c${i + 1}`);
    await Promise.all(courses.map((courseId, i) => tables.putPayment(`o${i + 1}`, { userId: 'u1', courseId, status: 'settlement' })));
    // The LMS webhook appends on its own, unconditionally, as it does today.
    const outsideWriter = (n: number) =>
      tables.client.send(
        new UpdateItemCommand({
          TableName: tables.config.usersTable,
          Key: { userId: { S: 'u1' } },
          UpdateExpression: 'SET purchasedCourses = list_append(purchasedCourses, :entry)',
          ExpressionAttributeValues: { ':entry': { L: [{ S: `outside-${n}` }] } },
        }),
      );
    const grants = courses.map((courseId, i) =>
      applyPaymentChange(deps, {
        eventName: 'MODIFY',
        oldImage: { orderId: { S: `o${i + 1}` }, userId: { S: 'u1' }, courseId: { S: courseId }, status: { S: 'pending' } },
        newImage: { orderId: { S: `o${i + 1}` }, userId: { S: 'u1' }, courseId: { S: courseId }, status: { S: 'settlement' } },
      }),
    );
    const fixers = Array.from({ length: 10 }, () => reconcileUser(deps, 'u1', { dryRun: false, runId }));
    await Promise.all([...grants, ...fixers, ...[1, 2, 3, 4, 5].map(outsideWriter)]);
    const listed = courseIdsOf(await tables.userCourses('u1'));
    expect([...listed].sort()).toEqual([...courses, 'outside-1', 'outside-2', 'outside-3', 'outside-4', 'outside-5'].sort());
  });
});
