import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { createSyncDeps, type SyncDeps } from '../../lambdas/core/deps';
import { runLayout } from '../../lambdas/core/jobs/full-run/layout';
import { ReadBudget } from '../../lambdas/core/snapshot/read-budget';
import { finishScanSnapshot, scanSnapshotSegment, type SegmentTask } from '../../lambdas/core/snapshot/scan-snapshot';
import type { IssueLine } from '../../lambdas/core/report/report';
import { generateDemoData, loadDemoData } from '../../scripts/local/demo-data';
import { fullRun, removeRunFolders, runFolder } from '../support/full-run';
import { startTestTables, type TestTables } from '../support/local-tables';

afterAll(removeRunFolders);

/** Issue lines without the run id, in one order: what two runs must agree on. */
const comparable = (lines: readonly IssueLine[]) =>
  lines
    .map(({ runId: _runId, ...line }) => JSON.stringify(line))
    .sort();

describe('the full-run engine over the demo data', () => {
  let tables: TestTables;
  let deps: SyncDeps;

  beforeEach(async () => {
    tables = await startTestTables({ REVOKE_ON_REFUND: 'true' });
    deps = createSyncDeps(tables.config, tables.client);
    await loadDemoData(tables.client, tables.config, generateDemoData({ users: 120, seed: 23 }, tables.config));
  });
  afterEach(() => tables.close());

  test('one bucket and four buckets find the same issue lines, and fixes end in the same tables', async () => {
    const before = await tables.dump('users');
    const one = await fullRun(deps, 'validate', { buckets: 1, segments: 1 });
    const four = await fullRun(deps, 'validate', { buckets: 4, segments: 4 });
    expect(one.issues.length).toBeGreaterThan(50);
    expect(comparable(four.issues)).toEqual(comparable(one.issues));
    expect(four.result.issues).toEqual(one.result.issues);
    expect(four.result.counts).toEqual(one.result.counts);

    const fixOne = await fullRun(deps, 'fix', { buckets: 1 });
    const afterOne = await tables.dump('users');
    // Back to the drifted state, then the same fix with four buckets.
    for (const item of before) await tables.putUser(item.userId!.S!, undefined, item);
    const fixFour = await fullRun(deps, 'fix', { buckets: 4 });
    // New object entries carry the time they were granted; everything else must be equal.
    const strip = (items: typeof afterOne) => JSON.stringify(items, (key, value) => (key === 'purchasedAt' ? undefined : value));
    expect(strip(await tables.dump('users'))).toEqual(strip(afterOne));
    expect(fixFour.result.counts).toEqual(fixOne.result.counts);
    expect(comparable(fixFour.issues)).toEqual(comparable(fixOne.issues));
  });

  test('fix writes each user needing a fix exactly once; a second fix writes nothing', async () => {
    const validation = await fullRun(deps, 'validate');
    const needing = new Set(validation.issues.filter((line) => line.fix !== 'none').map((line) => line.userId));
    let updates = 0;
    deps.client.middlewareStack.add(
      (next, context) => async (args) => {
        // Writes to users only: the run table's own bookkeeping is not a user write.
        if (context.commandName === 'UpdateItemCommand' && (args.input as { TableName?: string }).TableName === tables.config.usersTable) updates++;
        return next(args);
      },
      { step: 'initialize', name: 'countUpdates' },
    );
    const fix = await fullRun(deps, 'fix');
    expect(fix.result.counts.usersFixed).toBe(needing.size);
    expect(updates).toBe(needing.size);
    expect(new Set(fix.changes.map((change) => change.userId))).toEqual(needing);
    const users = await tables.dump('users');
    updates = 0;
    const again = await fullRun(deps, 'fix');
    expect(again.result.counts.usersFixed).toBe(0);
    expect(updates).toBe(0);
    expect(await tables.dump('users')).toEqual(users);
  });

  test('a scan snapshot stopped mid-segment and resumed from its cursor holds what an uninterrupted one does', async () => {
    const read = (root: string, folder: string) => {
      const data = join(root, folder, 'payments', 'data');
      return readdirSync(data)
        .sort()
        .map((file) => gunzipSync(readFileSync(join(data, file))).toString('utf8'));
    };
    const whole = runFolder();
    const task = (folder: string, overrides: Partial<SegmentTask> = {}): SegmentTask => ({ folder, table: 'payments', segment: 1, totalSegments: 2, buckets: 3, pageSize: 5, ...overrides });
    const unlimited = new ReadBudget(undefined);
    const uninterrupted = await scanSnapshotSegment(deps, whole, unlimited, task('snap'));
    expect(uninterrupted.done).toBe(true);

    const resumed = runFolder();
    // Workers that each read two pages and stop, as a worker does at its time budget or when killed.
    let turns = 0;
    let progress;
    do {
      progress = await scanSnapshotSegment(deps, resumed, unlimited, task('snap', { maxPages: 2 }));
      turns++;
    } while (!progress.done);
    expect(turns).toBeGreaterThan(3);
    expect(progress.items).toBe(uninterrupted.items);
    expect(read(resumed.root, 'snap')).toEqual(read(whole.root, 'snap'));

    // Killed after a page's file was written but before its cursor was stored: the rewrite is identical.
    const killed = runFolder();
    await scanSnapshotSegment(deps, killed, unlimited, task('snap', { maxPages: 3 }));
    const checkpoint = join(killed.root, 'snap', 'payments', 'segments', 'segment-0001.json');
    const state = JSON.parse(readFileSync(checkpoint, 'utf8'));
    await killed.put('snap/payments/segments/segment-0001.json', JSON.stringify({ ...state, cursor: undefined, page: 0, files: [], consumedCapacity: 0 }));
    await scanSnapshotSegment(deps, killed, unlimited, task('snap'));
    expect(read(killed.root, 'snap')).toEqual(read(whole.root, 'snap'));
  });

  test('the manifests name every data file and count every item; an unfinished segment cannot be finished', async () => {
    const storage = runFolder();
    const layout = runLayout('r');
    const unlimited = new ReadBudget(undefined);
    await scanSnapshotSegment(deps, storage, unlimited, { folder: layout.snapshot, table: 'users', segment: 0, totalSegments: 2, buckets: 1, pageSize: 10 });
    const times = { startedAt: '2026-01-01T00:00:00.000Z', finishedAt: '2026-01-01T00:01:00.000Z' };
    await expect(finishScanSnapshot(storage, { folder: layout.snapshot, table: 'users', totalSegments: 2, ...times })).rejects.toThrow(/segment 1 of 2 is not finished/);
    await scanSnapshotSegment(deps, storage, unlimited, { folder: layout.snapshot, table: 'users', segment: 1, totalSegments: 2, buckets: 1, pageSize: 10 });
    const finished = await finishScanSnapshot(storage, { folder: layout.snapshot, table: 'users', totalSegments: 2, ...times });
    expect(finished.items).toBe((await tables.dump('users')).length);
    const files = ((await storage.getText('r/snapshot/users/manifest-files.json')) ?? '').trim().split('\n').map((line) => JSON.parse(line));
    expect(files.reduce((sum, file) => sum + file.itemCount, 0)).toBe(finished.items);
    expect(files.every((file) => file.dataFileS3Key.startsWith('r/snapshot/users/data/') && typeof file.md5Checksum === 'string')).toBe(true);
  });
});
