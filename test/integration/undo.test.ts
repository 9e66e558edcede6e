import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteItemCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { createSyncDeps, type SyncDeps } from '../../lambdas/core/deps';
import { runLayout } from '../../lambdas/core/jobs/full-run/layout';
import { ChangeLogError, NoSuchRunError, undoRun, type UndoLine, type UndoResult } from '../../lambdas/core/jobs/undo';
import type { ChangeLine } from '../../lambdas/core/report/report';
import type { WireValue } from '../../lambdas/core/rules/attribute-values';
import type { FolderStorage } from '../../lambdas/core/storage/folder-storage';
import { ManualUndoEventSchema } from '../../lambdas/commons/events';
import { EXIT, main, undoExitCode } from '../../scripts/cli';
import { fullRun, readLines, removeRunFolders, runFolder } from '../support/full-run';
import { startTestTables, type TestTables } from '../support/local-tables';

afterAll(removeRunFolders);

/** The users a fix changes, in every list shape: ids, maps with fields the sync does not own, absent. */
const U_IDS_BEFORE: WireValue = { L: [{ S: 'c1' }] };
const U_MAPS_BEFORE: WireValue = {
  L: [
    { M: { courseId: { S: 'c1' }, purchasedAt: { S: '2024-01-01T00:00:00Z' }, orderId: { S: 'o3' }, note: { S: 'gift' } } },
    { M: { courseId: { S: 'c1' }, purchasedAt: { S: '2024-02-01T00:00:00Z' } } },
  ],
};

async function seed(tables: TestTables): Promise<void> {
  await tables.putUser('u-ids', U_IDS_BEFORE, { name: { S: 'Ann' } });
  await tables.putPayment('o1', { userId: 'u-ids', courseId: 'c1', status: 'settlement' });
  await tables.putPayment('o2', { userId: 'u-ids', courseId: 'c2', status: 'settlement' });
  await tables.putUser('u-maps', U_MAPS_BEFORE);
  await tables.putPayment('o3', { userId: 'u-maps', courseId: 'c1', status: 'settlement' });
  await tables.putPayment('o4', { userId: 'u-maps', courseId: 'c3', status: 'capture' });
  await tables.putUser('u-absent', undefined, { email: { S: 'absent@example.com' } });
  await tables.putPayment('o5', { userId: 'u-absent', courseId: 'c4', status: 'settlement' });
  // In sync: not in the change log, and undo must not touch it.
  await tables.putUser('u-ok', { L: [{ S: 'c5' }] });
  await tables.putPayment('o6', { userId: 'u-ok', courseId: 'c5', status: 'settlement' });
}

const CHANGED = ['u-absent', 'u-ids', 'u-maps'];

/** A grant made after the run: the user's list is no longer what the run wrote. */
async function grantLater(tables: TestTables, userId: string, courseId: string): Promise<WireValue> {
  const now = (await tables.userCourses(userId)) as WireValue;
  const next: WireValue = { L: [...(now.L ?? []), { S: courseId }] };
  const item = (await tables.userItem(userId)) ?? {};
  await tables.putUser(userId, next, Object.fromEntries(Object.entries(item).filter(([name]) => name !== 'userId' && name !== 'purchasedCourses')));
  return next;
}

async function deleteUser(tables: TestTables, userId: string): Promise<void> {
  await tables.client.send(new DeleteItemCommand({ TableName: tables.config.usersTable, Key: { userId: { S: userId } } as Record<string, AttributeValue> }));
}

const statusOf = (result: UndoResult): Record<string, string> => Object.fromEntries(result.users.map((user) => [user.userId, user.status]));

describe('undo of a fix run against dynalite', () => {
  let tables: TestTables;
  let deps: SyncDeps;
  let before: Awaited<ReturnType<TestTables['dump']>>;
  let runId: string;
  let storage: FolderStorage;
  let changes: ChangeLine[];

  beforeEach(async () => {
    tables = await startTestTables();
    deps = createSyncDeps(tables.config, tables.client);
    await seed(tables);
    before = await tables.dump('users');
    const fix = await fullRun(deps, 'fix');
    runId = fix.result.runId;
    storage = fix.storage;
    changes = fix.changes;
    // The run changed exactly the three drifted users, one of them from an absent attribute.
    expect(changes.map((change) => change.userId).sort()).toEqual(CHANGED);
    expect(changes.find((change) => change.userId === 'u-absent')?.before).toBeNull();
    expect(await tables.dump('users')).not.toEqual(before);
  });
  afterEach(() => tables.close());

  test('restores every user exactly as before the run (maps, extra fields, absent attribute) and audits the undo', async () => {
    const result = await undoRun(deps, storage, { folder: runId, runId, dryRun: false });
    expect(result).toMatchObject({ runId, dryRun: false, restored: 3, alreadyRestored: 0, conflicts: 0, notFound: 0, errors: 0 });
    expect(statusOf(result)).toEqual({ 'u-ids': 'restored', 'u-maps': 'restored', 'u-absent': 'restored' });
    // The whole users table, raw, is what it was before the fix.
    expect(await tables.dump('users')).toEqual(before);
    expect(await tables.userCourses('u-maps')).toEqual(U_MAPS_BEFORE);
    const absent = await tables.userItem('u-absent');
    expect(absent).not.toHaveProperty('purchasedCourses');
    expect(absent?.email).toEqual({ S: 'absent@example.com' });
    expect(undoExitCode(result)).toBe(EXIT.completed);

    // The undo's own report sits in the run folder: one line per user, and a summary.
    const keys = await storage.list(runId);
    expect(keys).toEqual(expect.arrayContaining([result.report.lines, result.report.summary]));
    expect(result.report.lines).toMatch(new RegExp(`^${runId}/undo-[^/]+\\.jsonl$`));
    const lines = await readLines<UndoLine>(storage, result.report.lines);
    expect(lines.map((line) => [line.userId, line.status]).sort()).toEqual(CHANGED.map((userId) => [userId, 'restored']));
    const maps = lines.find((line) => line.userId === 'u-maps');
    expect(maps?.before).toEqual(U_MAPS_BEFORE);
    expect(maps?.after).toEqual(changes.find((change) => change.userId === 'u-maps')?.after);
    expect(JSON.parse((await storage.getText(result.report.summary)) ?? '{}')).toMatchObject({ runId, restored: 3, conflicts: 0 });
  });

  test('a user whose list changed since the run is a conflict and keeps its new list; a deleted user is not-found', async () => {
    const granted = await grantLater(tables, 'u-ids', 'c9');
    await deleteUser(tables, 'u-absent');
    const result = await undoRun(deps, storage, { folder: runId, runId, dryRun: false });
    expect(result).toMatchObject({ restored: 1, conflicts: 1, notFound: 1, errors: 0, alreadyRestored: 0 });
    expect(statusOf(result)).toEqual({ 'u-ids': 'conflict', 'u-maps': 'restored', 'u-absent': 'not-found' });
    expect(await tables.userCourses('u-ids')).toEqual(granted);
    expect(await tables.userCourses('u-maps')).toEqual(U_MAPS_BEFORE);
    // Not created again by the restore.
    expect(await tables.userItem('u-absent')).toBeUndefined();
    expect(undoExitCode(result)).toBe(EXIT.undoConflicts);
    const conflict = (await readLines<UndoLine>(storage, result.report.lines)).find((line) => line.userId === 'u-ids');
    expect(conflict).toMatchObject({ status: 'conflict', current: granted, before: U_IDS_BEFORE });
  });

  test('a dry run reports what would be restored and the conflicts, and writes nothing', async () => {
    const granted = await grantLater(tables, 'u-ids', 'c9');
    const fixed = await tables.dump('users');
    const dry = await undoRun(deps, storage, { folder: runId, runId, dryRun: true });
    expect(dry).toMatchObject({ dryRun: true, restored: 2, conflicts: 1, notFound: 0, errors: 0, alreadyRestored: 0 });
    expect(statusOf(dry)).toEqual({ 'u-ids': 'conflict', 'u-maps': 'would-restore', 'u-absent': 'would-restore' });
    expect(await tables.dump('users')).toEqual(fixed);
    expect(dry.report.lines).toMatch(/-dry-run\.jsonl$/);
    // What the dry run announced is what the undo then does.
    const real = await undoRun(deps, storage, { folder: runId, runId, dryRun: false });
    expect(statusOf(real)).toEqual({ 'u-ids': 'conflict', 'u-maps': 'restored', 'u-absent': 'restored' });
    expect(await tables.userCourses('u-ids')).toEqual(granted);
  });

  test('a second undo finds every user already restored and writes nothing', async () => {
    await undoRun(deps, storage, { folder: runId, runId, dryRun: false });
    const restored = await tables.dump('users');
    expect(restored).toEqual(before);
    const again = await undoRun(deps, storage, { folder: runId, runId, dryRun: false });
    expect(again).toMatchObject({ restored: 0, alreadyRestored: 3, conflicts: 0, notFound: 0, errors: 0 });
    expect(statusOf(again)).toEqual({ 'u-ids': 'already-restored', 'u-maps': 'already-restored', 'u-absent': 'already-restored' });
    expect(await tables.dump('users')).toEqual(restored);
    expect(undoExitCode(again)).toBe(EXIT.completed);
    // Each undo keeps its own report.
    const reports = (await storage.list(runId)).filter((key) => /\/undo-[^/]+\.jsonl$/.test(key));
    expect(reports).toHaveLength(2);
  });
});

describe('undo from a hand-written change log', () => {
  let tables: TestTables;
  let deps: SyncDeps;
  beforeEach(async () => {
    tables = await startTestTables();
    deps = createSyncDeps(tables.config, tables.client);
  });
  afterEach(() => tables.close());

  const line = (runId: string, userId: string, at: string, before: WireValue | null, after: WireValue): ChangeLine => ({
    runId,
    userId,
    at,
    added: [],
    removed: [],
    duplicatesRemoved: [],
    orderIds: [],
    before,
    after,
  });
  const write = (storage: FolderStorage, folder: string, lines: readonly unknown[]) =>
    storage.put(runLayout(folder).changes, lines.map((entry) => `${typeof entry === 'string' ? entry : JSON.stringify(entry)}\n`).join(''));

  test('a user written twice goes back to the earliest before on condition of the latest after; one failing user does not stop the others', async () => {
    const storage = runFolder();
    const B: WireValue = { L: [{ S: 'a' }] };
    const C: WireValue = { L: [{ S: 'a' }, { S: 'b' }] };
    await tables.putUser('twice', C, { name: { S: 'T' } });
    await tables.putUser('broken', { L: [{ S: 'x' }] });
    await tables.putUser('fine', { L: [{ S: 'y' }, { S: 'z' }] });
    // Log order is not time order: the later change comes first in the file.
    await write(storage, 'r1', [
      line('r1', 'twice', '2026-01-01T00:00:02.000Z', B, C),
      // An empty string set is a value DynamoDB refuses: this user's write fails for good.
      line('r1', 'broken', '2026-01-01T00:00:01.500Z', { SS: [] }, { L: [{ S: 'x' }] }),
      line('r1', 'twice', '2026-01-01T00:00:01.000Z', null, B),
      line('r1', 'fine', '2026-01-01T00:00:03.000Z', { L: [{ S: 'y' }] }, { L: [{ S: 'y' }, { S: 'z' }] }),
    ]);
    const result = await undoRun(deps, storage, { folder: 'r1', runId: 'r1', dryRun: false });
    expect(statusOf(result)).toEqual({ twice: 'restored', broken: 'error', fine: 'restored' });
    expect(result.users.map((user) => user.userId)).toEqual(['twice', 'broken', 'fine']);
    expect(result).toMatchObject({ restored: 2, errors: 1, conflicts: 0 });
    expect(result.users.find((user) => user.userId === 'broken')?.error).toMatch(/ValidationException/);
    expect(await tables.userItem('twice')).toEqual({ userId: { S: 'twice' }, name: { S: 'T' } });
    expect(await tables.userCourses('broken')).toEqual({ L: [{ S: 'x' }] });
    expect(await tables.userCourses('fine')).toEqual({ L: [{ S: 'y' }] });
    expect(undoExitCode(result)).toBe(EXIT.usersInError);
    const twice = (await readLines<UndoLine>(storage, result.report.lines)).find((entry) => entry.userId === 'twice');
    expect(twice).toMatchObject({ changes: 2, before: null, after: C });
  });

  test('a missing change log is no such run; a log of another run or a broken line restores nothing', async () => {
    const storage = runFolder();
    await expect(undoRun(deps, storage, { folder: 'nope', runId: 'nope', dryRun: false })).rejects.toThrow(NoSuchRunError);
    await expect(undoRun(deps, storage, { folder: 'nope', runId: 'nope', dryRun: false })).rejects.toThrow(/no such run: nope/);

    await tables.putUser('u1', { L: [{ S: 'new' }] });
    await write(storage, 'r2', [line('r2', 'u1', '2026-01-01T00:00:00.000Z', { L: [] }, { L: [{ S: 'new' }] }), line('other-run', 'u1', '2026-01-01T00:00:00.000Z', null, { L: [] })]);
    await expect(undoRun(deps, storage, { folder: 'r2', runId: 'r2', dryRun: false })).rejects.toThrow(ChangeLogError);
    await write(storage, 'r3', [line('r3', 'u1', '2026-01-01T00:00:00.000Z', { L: [] }, { L: [{ S: 'new' }] }), '{not json']);
    await expect(undoRun(deps, storage, { folder: 'r3', runId: 'r3', dryRun: false })).rejects.toThrow(/r3\/changes\.jsonl line 2 is not JSON/);
    expect(await tables.userCourses('u1')).toEqual({ L: [{ S: 'new' }] });

    // An empty log (a dry or validation run) undoes nothing and says so.
    await write(storage, 'r4', []);
    const empty = await undoRun(deps, storage, { folder: 'r4', runId: 'r4', dryRun: false });
    expect(empty).toMatchObject({ restored: 0, conflicts: 0, users: [] });
  });

  test('the manual event schema takes a run id and an optional dry run, nothing else', () => {
    expect(ManualUndoEventSchema.parse({ undo: '20260101T000000Z-fix-abc123', dryRun: true })).toEqual({ undo: '20260101T000000Z-fix-abc123', dryRun: true });
    for (const bad of [{}, { undo: '' }, { undo: '../other' }, { undo: 'runs/x' }, { undo: 'r', dryRun: 'yes' }, { undo: 'r', userIds: ['u'] }]) {
      expect(ManualUndoEventSchema.safeParse(bad).success).toBe(false);
    }
  });
});

describe('payment-undo on the command line (in-process, against dynalite)', () => {
  let tables: TestTables;
  let reports: string;
  let out: string[];
  let err: string[];

  beforeAll(async () => {
    tables = await startTestTables();
    await seed(tables);
    reports = mkdtempSync(join(tmpdir(), 'undo-cli-'));
  });
  afterAll(async () => {
    await tables.close();
    rmSync(reports, { recursive: true, force: true });
  });
  beforeEach(() => {
    out = [];
    err = [];
    jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => out.push(String(chunk)) > 0);
    jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => err.push(String(chunk)) > 0);
    jest.spyOn(console, 'error').mockImplementation((...args: unknown[]) => void err.push(args.join(' ')));
    jest.spyOn(console, 'log').mockImplementation((...args: unknown[]) => void out.push(args.join(' ')));
  });
  afterEach(() => jest.restoreAllMocks());

  const run = async (args: string[]) => {
    out.length = 0;
    err.length = 0;
    // The loopback endpoint gets the client's local credentials; the SDK's chain is not consulted.
    const env = Object.fromEntries(Object.entries(tables.env).filter(([name]) => !name.startsWith('AWS_ACCESS_KEY') && !name.startsWith('AWS_SECRET')));
    const code = await main(args, env);
    const lastLine = out.join('').trim().split('\n').pop() ?? '';
    return { code, lastLine, stderr: err.join('') };
  };

  test('payment-fix then payment-undo <run id>: dry run, restore, conflict exit code, idempotent rerun', async () => {
    const before = await tables.dump('users');
    const fix = await run(['fix', '--json', '--report-dir', reports]);
    expect(fix.code).toBe(0);
    const { runId, counts } = JSON.parse(fix.lastLine) as { runId: string; counts: { usersFixed: number } };
    expect(counts.usersFixed).toBe(3);
    const fixed = await tables.dump('users');

    const dry = await run(['undo', runId, '--dry-run', '--json', '--report-dir', reports]);
    expect(dry.code).toBe(EXIT.completed);
    expect(JSON.parse(dry.lastLine)).toMatchObject({ runId, dryRun: true, restored: 3, conflicts: 0 });
    expect(await tables.dump('users')).toEqual(fixed);

    const granted = await grantLater(tables, 'u-ids', 'c9');
    const undo = await run(['undo', runId, '--json', '--report-dir', reports]);
    expect(undo.code).toBe(EXIT.undoConflicts);
    expect(JSON.parse(undo.lastLine)).toMatchObject({ runId, dryRun: false, restored: 2, conflicts: 1, errors: 0 });
    expect(undo.stderr).toMatch(/u-ids: conflict/);
    expect(undo.stderr).toMatch(/2 restored, 0 already restored, 1 conflicts/);
    expect(await tables.userCourses('u-ids')).toEqual(granted);
    expect(await tables.userCourses('u-maps')).toEqual(U_MAPS_BEFORE);
    expect(await tables.userItem('u-absent')).not.toHaveProperty('purchasedCourses');
    expect(readdirSync(join(reports, runId)).filter((name) => name.startsWith('undo-')).length).toBe(4);

    // Put the conflicting user back by hand: a rerun then finds everyone already restored and exits 0.
    await tables.putUser('u-ids', U_IDS_BEFORE, { name: { S: 'Ann' } });
    const rerun = await run(['undo', runId, '--report-dir', reports]);
    expect(rerun.code).toBe(EXIT.completed);
    expect(out.join('')).toMatch(/0 restored, 3 already restored, 0 conflicts/);
    expect(await tables.dump('users')).toEqual(before);
    const summary = JSON.parse(readFileSync(join(reports, runId, 'summary.json'), 'utf8'));
    expect(summary.runId).toBe(runId);
  });

  test('a per-user fix (--user) writes the same change log, and undo restores it', async () => {
    await tables.putPayment('o7', { userId: 'u-ok', courseId: 'c7', status: 'settlement' });
    const okBefore = await tables.userCourses('u-ok');
    const fix = await run(['fix', '--user', 'u-ok', '--json', '--report-dir', reports]);
    expect(fix.code).toBe(0);
    const { runId } = JSON.parse(fix.lastLine) as { runId: string };
    expect(await tables.userCourses('u-ok')).not.toEqual(okBefore);
    const logged = readFileSync(join(reports, runId, 'changes.jsonl'), 'utf8').trim().split('\n').map((text) => JSON.parse(text) as ChangeLine);
    expect(logged).toEqual([expect.objectContaining({ runId, userId: 'u-ok', before: okBefore, added: ['c7'] })]);
    const undo = await run(['undo', runId, '--json', '--report-dir', reports]);
    expect(undo.code).toBe(EXIT.completed);
    expect(JSON.parse(undo.lastLine)).toMatchObject({ restored: 1, users: [{ userId: 'u-ok', status: 'restored' }] });
    expect(await tables.userCourses('u-ok')).toEqual(okBefore);
  });

  test('no run id, a bad run id, or a run with no change log: a clear message and exit 2', async () => {
    const missing = await run(['undo', '--report-dir', reports]);
    expect(missing.code).toBe(EXIT.couldNotRun);
    expect(missing.stderr).toMatch(/undo needs the run id/);
    const path = await run(['undo', '../elsewhere', '--report-dir', reports]);
    expect(path.code).toBe(EXIT.couldNotRun);
    expect(path.stderr).toMatch(/is not a run id/);
    const unknown = await run(['undo', 'no-such-run', '--report-dir', reports]);
    expect(unknown.code).toBe(EXIT.couldNotRun);
    expect(unknown.stderr).toMatch(/no such run: no-such-run/);
    const narrowed = await run(['undo', 'some-run', '--user', 'u1', '--report-dir', reports]);
    expect(narrowed.code).toBe(EXIT.couldNotRun);
    expect(narrowed.stderr).toMatch(/--user is not an undo option/);
  });
});
