import { createSyncDeps, type SyncDeps } from '../../lambdas/core/deps';
import { runLayout } from '../../lambdas/core/jobs/full-run/layout';
import { isSkipped, prepareRun } from '../../lambdas/core/jobs/full-run/prepare';
import { scanSegmentTurn, TURN_MARGIN_MS } from '../../lambdas/core/jobs/full-run/snapshot-tasks';
import type { IssueLine } from '../../lambdas/core/report/report';
import { RunRecords } from '../../lambdas/core/runs/run-records';
import { generateDemoData, loadDemoData } from '../../scripts/local/demo-data';
import { RUN_STATES } from '../../lib/constructs/run-definition';
import { runStateMachineLocally } from '../../scripts/local/run-state-machine';
import { fullRun, readLines, removeRunFolders, runFolder } from '../support/full-run';
import { courseIdsOf, startTestTables, type TestTables } from '../support/local-tables';

afterAll(removeRunFolders);

/** Issue lines without the run id, in one order: what two runs must agree on. */
const comparable = (lines: readonly IssueLine[]) => lines.map(({ runId: _runId, ...line }) => JSON.stringify(line)).sort();
/** New object entries carry the time they were granted; everything else must be equal. */
const withoutGrantTimes = (items: unknown) => JSON.stringify(items, (key, value) => (key === 'purchasedAt' ? undefined : value));

describe('the full run as a state machine, run locally from the synthesized definition', () => {
  let tables: TestTables;
  let deps: SyncDeps;
  let runs: RunRecords;

  beforeEach(async () => {
    tables = await startTestTables();
    deps = createSyncDeps(tables.config, tables.client);
    runs = new RunRecords(tables.client, tables.config.runsTable);
  });
  afterEach(() => tables.close());

  const plantDrift = async (users = 80, seed = 31): Promise<void> => {
    await loadDemoData(tables.client, tables.config, generateDemoData({ users, seed }, tables.config));
  };

  test('a tiny time budget (a turn per page, many cursor loops) ends in the same tables and lines as one turn per segment', async () => {
    await plantDrift();
    const drifted = await tables.dump('users');
    const single = await fullRun(deps, 'fix', { segments: 1, buckets: 1, pageSize: 1000 });
    const fixedOnce = await tables.dump('users');
    for (const item of drifted) await tables.putUser(item.userId!.S!, undefined, item);

    let turns = 0;
    const looped = await fullRun(deps, 'fix', {
      segments: 3,
      buckets: 4,
      pageSize: 5,
      taskBudgetMs: 0,
      onTask: (state) => {
        if (state === RUN_STATES.scanSegment) turns++;
      },
    });
    // Six workers (three segments of two tables), each handing its cursor back after every page.
    expect(turns).toBeGreaterThan(6 * 5);
    expect(looped.result.status).toBe('completed');
    expect(looped.result.counts).toEqual(single.result.counts);
    expect(comparable(looped.issues)).toEqual(comparable(single.issues));
    expect(withoutGrantTimes(await tables.dump('users'))).toEqual(withoutGrantTimes(fixedOnce));
    expect(await runs.readLock()).toBeUndefined();
    expect(await runs.getRun(looped.result.runId)).toMatchObject({ status: 'completed', counts: looped.result.counts });
  });

  test('a second run while one holds the lock is skipped at once, naming the running run', async () => {
    await plantDrift(20);
    const first = runStateMachineLocally({ deps, storage: runFolder(), runs }, { runId: 'run-a', mode: 'fix', trigger: 'manual', segments: 2, buckets: 1 });
    const second = runStateMachineLocally({ deps, storage: runFolder(), runs }, { runId: 'run-b', mode: 'validate', trigger: 'schedule', segments: 2, buckets: 1 });
    const outcomes = await Promise.all([first, second]);
    const skipped = outcomes.filter(isSkipped);
    expect(skipped).toHaveLength(1);
    const ran = outcomes.find((outcome) => !isSkipped(outcome));
    expect(skipped[0]!.skipped.runningRunId).toBe(ran && 'runId' in ran ? ran.runId : undefined);
    expect(await runs.getRun(skipped[0]!.run.runId)).toMatchObject({ status: 'skipped' });
    expect(await runs.readLock()).toBeUndefined();
  });

  test('a task that throws mid-run fails the run, which finalize closes and unlocks; a rerun converges', async () => {
    await plantDrift(40);
    const drifted = await tables.dump('users');
    const failing = await fullRun(deps, 'fix', {
      onTask: (state, input) => {
        if (state === RUN_STATES.repairBatch) throw new Error(`repair of ${(input as { candidateKey: string }).candidateKey} broke`);
      },
    });
    expect(failing.result.status).toBe('failed');
    expect(failing.result.error).toMatch(/repair of .* broke/);
    expect(await runs.readLock()).toBeUndefined();
    expect(await runs.getRun(failing.result.runId)).toMatchObject({ status: 'failed' });
    const summary = JSON.parse((await failing.storage.getText(runLayout(failing.result.runId).summary))!);
    expect(summary.status).toBe('failed');
    expect(await tables.dump('users')).toEqual(drifted);

    const rerun = await fullRun(deps, 'fix');
    expect(rerun.result.status).toBe('completed');
    expect(rerun.result.counts.usersFixed).toBeGreaterThan(0);
    expect((await fullRun(deps, 'validate')).result.issues.missing).toBe(0);
  });

  test('a failure before the snapshot (prepare) still reaches finalize, which marks the run failed', async () => {
    await plantDrift(10);
    const failing = await fullRun(deps, 'validate', {
      onTask: (state) => {
        if (state === RUN_STATES.prepare) throw new Error('prepare broke');
      },
    });
    expect(failing.result).toMatchObject({ status: 'failed', error: expect.stringContaining('prepare broke') });
    expect(await runs.readLock()).toBeUndefined();
  });

  test('a scheduled run stops at its change cap and holds later scheduled fixes until a person releases the hold', async () => {
    for (let i = 1; i <= 6; i++) {
      await tables.putUser(`u${i}`, { L: [] });
      await tables.putPayment(`o${i}`, { userId: `u${i}`, courseId: 'c1', status: 'settlement' });
    }
    const capped = await fullRun(deps, 'cron-sync', { trigger: 'schedule', maxUserChanges: 2 });
    expect(capped.result).toMatchObject({ status: 'completed', capped: true, counts: expect.objectContaining({ usersFixed: 2 }) });
    expect(await runs.readHold()).toMatchObject({ runId: capped.result.runId });

    const held = await fullRun(deps, 'fix', { trigger: 'schedule' });
    expect(held.result).toMatchObject({ held: true, dryRun: true, counts: expect.objectContaining({ usersFixed: 0 }) });
    expect(held.result.issues.missing).toBe(4);
    let granted = 0;
    for (let i = 1; i <= 6; i++) granted += courseIdsOf(await tables.userCourses(`u${i}`)).length;
    expect(granted).toBe(2);

    // A person's run is not held.
    const manual = await fullRun(deps, 'fix', { maxUserChanges: 1 });
    expect(manual.result).toMatchObject({ held: false, capped: true, counts: expect.objectContaining({ usersFixed: 1 }) });
    expect((await runs.readHold())?.runId).toBe(capped.result.runId);

    expect(await runs.releaseHold()).toMatchObject({ runId: capped.result.runId });
    const released = await fullRun(deps, 'fix', { trigger: 'schedule' });
    expect(released.result).toMatchObject({ held: false, capped: false, counts: expect.objectContaining({ usersFixed: 3 }) });
    expect(await runs.readHold()).toBeUndefined();
  });

  test('a migration backs the users table up before it writes, into the run folder', async () => {
    await tables.putUser('u1', { L: [] });
    await tables.putPayment('o1', { userId: 'u1', courseId: 'c1', status: 'settlement' });
    const migration = await fullRun(deps, 'migrate');
    const receipt = JSON.parse((await migration.storage.getText(runLayout(migration.result.runId).backup))!);
    expect(receipt).toMatchObject({ kind: 'file', items: 1 });
    const backup = await readLines<Record<string, unknown>>(migration.storage, receipt.location);
    expect(backup).toEqual([{ userId: { S: 'u1' }, purchasedCourses: { L: [] } }]);
    expect(courseIdsOf(await tables.userCourses('u1'))).toEqual(['c1']);
  });

  test('a scan turn in Lambda hands its cursor back a margin before the invocation\'s time is up, after at least one page', async () => {
    await plantDrift(20);
    const ctx = { deps, storage: runFolder(), runs };
    const prepared = await prepareRun(ctx, { run: { runId: 'turns', mode: 'validate', trigger: 'manual', segments: 1, buckets: 1, pageSize: 5 } });
    if (isSkipped(prepared)) throw new Error('skipped');
    const turn = { run: prepared.run, item: { table: 'payments' as const, segment: 0 } };
    // No time left beyond the margin: one page, then the cursor goes back to the state machine.
    expect(await scanSegmentTurn(ctx, turn, { remainingMs: TURN_MARGIN_MS })).toMatchObject({ done: false, items: 5 });
    expect(await scanSegmentTurn(ctx, turn, { remainingMs: TURN_MARGIN_MS - 1 })).toMatchObject({ done: false, items: 10 });
    // Time enough: the rest of the segment in one turn, from the stored cursor.
    const rest = await scanSegmentTurn(ctx, turn, { remainingMs: 15 * 60_000 });
    expect(rest.done).toBe(true);
    expect(rest.items).toBe((await tables.dump('payments')).length);
    await runs.releaseLock('turns');
  });
});
