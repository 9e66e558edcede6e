import { createSyncDeps, type SyncDeps } from '../../lambdas/core/deps';
import { decodeCourses } from '../../lambdas/core/rules/courses-list';
import { generateDemoData, loadDemoData } from '../../scripts/local/demo-data';
import { fullRun, removeRunFolders } from '../support/full-run';
import { courseIdsOf, startTestTables, type TestTables } from '../support/local-tables';

afterAll(removeRunFolders);

describe('full reconciliation over the demo data', () => {
  let tables: TestTables;
  let deps: SyncDeps;

  beforeAll(async () => {
    tables = await startTestTables();
    deps = createSyncDeps(tables.config, tables.client);
    await loadDemoData(tables.client, tables.config, generateDemoData({ users: 150, seed: 11 }, tables.config));
  });
  afterAll(() => tables.close());

  test('validate → fix → validate: drift found, fixed, gone; validation and dry runs write nothing', async () => {
    const before = { users: await tables.dump('users'), payments: await tables.dump('payments') };
    const { result: first } = await fullRun(deps, 'validate');
    const { result: dry } = await fullRun(deps, 'fix', { dryRun: true });
    expect(await tables.dump('users')).toEqual(before.users);
    expect(first.dryRun).toBe(true);
    expect(first.counts.paymentsScanned).toBe(before.payments.length);
    expect(first.counts.usersScanned).toBe(before.users.length);
    for (const kind of ['missing', 'duplicate', 'revoked', 'malformed-entry', 'orphan-payment', 'malformed-payment'] as const) {
      expect(first.issues[kind]).toBeGreaterThan(0);
    }
    expect(dry.issues).toEqual(first.issues);
    // Each malformed entry is one line, however many jobs of the run looked at its user.
    const malformedEntries = before.users.flatMap((item) => {
      const list = decodeCourses(item.purchasedCourses);
      return list.state === 'list' ? list.entries.filter((entry) => entry.kind === 'malformed') : [];
    });
    expect(first.issues['malformed-entry']).toBe(malformedEntries.length);
    expect(dry.counts.usersFixed).toBe(0);

    const sink = await fullRun(deps, 'fix');
    const fix = sink.result;
    expect(fix.counts.coursesAdded).toBe(first.issues.missing);
    expect(fix.counts.duplicatesRemoved).toBe(first.issues.duplicate);
    expect(fix.counts.coursesRemoved).toBe(0);
    expect(new Set(sink.changes.map((change) => change.userId)).size).toBe(fix.counts.usersFixed);
    expect(sink.issues.filter((line) => line.kind === 'missing').every((line) => line.applied && line.orderIds.length > 0)).toBe(true);
    // The change log can undo the run: each user's first `before` is the list as it was.
    const beforeByUser = new Map(before.users.map((item) => [item.userId?.S, item.purchasedCourses ?? null]));
    const firstChange = new Map([...sink.changes].reverse().map((change) => [change.userId, change]));
    for (const [userId, change] of firstChange) expect(change.before).toEqual(beforeByUser.get(userId));

    const { result: after } = await fullRun(deps, 'validate');
    expect(after.issues.missing).toBe(0);
    expect(after.issues.duplicate).toBe(0);
    expect(after.issues.revoked).toBe(first.issues.revoked);
    expect(after.issues['orphan-payment']).toBe(first.issues['orphan-payment']);

    const snapshot = await tables.dump('users');
    const { result: again } = await fullRun(deps, 'fix');
    expect(again.counts.usersFixed).toBe(0);
    expect(await tables.dump('users')).toEqual(snapshot);
    // Orphans are reported, never created.
    expect(snapshot.length).toBe(before.users.length);
  });
});

describe('full reconciliation rules', () => {
  let tables: TestTables;
  afterEach(() => tables.close());

  test('payments inside the grace window are left to the stream; outside it they are granted', async () => {
    tables = await startTestTables();
    const now = Date.parse('2026-06-01T12:00:00Z');
    const deps = createSyncDeps(tables.config, tables.client, () => now);
    await tables.putUser('u1', { L: [] });
    await tables.putPayment('recent', { userId: 'u1', courseId: 'c-recent', status: 'settlement', updatedAt: '2026-06-01T11:58:00Z' });
    await tables.putPayment('old', { userId: 'u1', courseId: 'c-old', status: 'settlement', updatedAt: '2026-06-01T11:50:00Z' });
    const { result } = await fullRun(deps, 'fix');
    expect(result.inFlight).toBe(1);
    expect(courseIdsOf(await tables.userCourses('u1'))).toEqual(['c-old']);
  });

  test('a scheduled run stops writing at its change cap and reports the rest as not applied', async () => {
    tables = await startTestTables();
    const deps = createSyncDeps(tables.config, tables.client);
    for (let i = 1; i <= 6; i++) {
      await tables.putUser(`u${i}`, { L: [] });
      await tables.putPayment(`o${i}`, { userId: `u${i}`, courseId: 'c1', status: 'settlement' });
    }
    const sink = await fullRun(deps, 'cron-sync', { maxUserChanges: 2 });
    const { result } = sink;
    expect(result.capped).toBe(true);
    expect(result.counts.usersFixed).toBe(2);
    expect(sink.issues.filter((line) => line.kind === 'missing' && !line.applied)).toHaveLength(4);
    let granted = 0;
    for (let i = 1; i <= 6; i++) granted += courseIdsOf(await tables.userCourses(`u${i}`)).length;
    expect(granted).toBe(2);
  });

  test('revocations stop at the per-run cap', async () => {
    tables = await startTestTables({ REVOKE_ON_REFUND: 'true', MAX_REVOCATIONS_PER_RUN: '1' });
    const deps = createSyncDeps(tables.config, tables.client);
    for (let i = 1; i <= 3; i++) {
      await tables.putUser(`u${i}`, { L: [{ S: 'c1' }] });
      await tables.putPayment(`o${i}`, { userId: `u${i}`, courseId: 'c1', status: 'refund' });
    }
    const { result } = await fullRun(deps, 'fix', { segments: 1, buckets: 1 });
    expect(result.counts.coursesRemoved).toBe(1);
    expect(result.revocationCapReached).toBe(true);
    expect(result.issues.revoked).toBe(3);
  });

  test('every validation reports unbacked courses: every payment of each user is at hand in the join', async () => {
    tables = await startTestTables();
    const deps = createSyncDeps(tables.config, tables.client);
    await tables.putUser('u1', { L: [{ S: 'free-course' }, { S: 'paid' }] });
    await tables.putPayment('o1', { userId: 'u1', courseId: 'paid', status: 'settlement' });
    const { result, issues } = await fullRun(deps, 'validate');
    expect(result.issues.unbacked).toBe(1);
    expect(issues.find((line) => line.kind === 'unbacked')).toMatchObject({ userId: 'u1', courseId: 'free-course', fix: 'none' });
  });
});
