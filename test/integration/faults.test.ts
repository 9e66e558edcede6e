import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { loadConfig } from '../../lambdas/core/config';
import { createSyncDeps } from '../../lambdas/core/deps';
import { reconcileUsers } from '../../lambdas/core/jobs/user-reconcile';
import { createDynamoClient } from '../../lambdas/core/store/dynamo-client';
import { generateDemoData, loadDemoData } from '../../scripts/local/demo-data';
import { startFaultProxy, type FaultProxy } from '../../scripts/local/fault-proxy';
import { fullRun, removeRunFolders, runFolder } from '../support/full-run';
import { courseIdsOf, startTestTables, type TestTables } from '../support/local-tables';

afterAll(removeRunFolders);

const ROOT = join(__dirname, '..', '..');

/** The users table with `purchasedAt` stamps dropped: two fixes at different times grant the same. */
const lists = async (tables: TestTables) => JSON.stringify(await tables.dump('users'), (key, value) => (key === 'purchasedAt' ? undefined : value));

describe('under 30% throttling (ProvisionedThroughputExceededException and ThrottlingException)', () => {
  let clean: TestTables;
  let faulty: TestTables;
  let proxy: FaultProxy;

  beforeEach(async () => {
    [clean, faulty] = await Promise.all([startTestTables(), startTestTables()]);
    for (const tables of [clean, faulty]) await loadDemoData(tables.client, tables.config, generateDemoData({ users: 60, seed: 5 }, tables.config));
    proxy = await startFaultProxy(faulty.endpoint, { throttleRate: 0.3, seed: 11 });
  });
  afterEach(async () => {
    await proxy.close();
    await Promise.all([clean.close(), faulty.close()]);
  });

  /** The product's own client, as a Lambda or the command line builds it, through the proxy. */
  const throttledDeps = () => {
    const config = loadConfig({ ...faulty.env, DYNAMODB_ENDPOINT: proxy.endpoint });
    return createSyncDeps(config, createDynamoClient(config));
  };

  test('a full fix ends in the state of a fault-free one', async () => {
    const reference = await fullRun(createSyncDeps(clean.config, clean.client), 'fix');
    const deps = throttledDeps();
    const throttled = await fullRun(deps, 'fix');
    deps.client.destroy();
    expect(proxy.stats.throttled).toBeGreaterThan(20);
    expect(throttled.result.issues.error).toBe(0);
    expect(throttled.result.counts).toEqual(reference.result.counts);
    expect(await lists(faulty)).toEqual(await lists(clean));
  }, 120_000);

  test('a per-user fix of every user ends in the state of a fault-free one', async () => {
    const userIds = (await clean.dump('users')).map((item) => item.userId!.S!);
    await reconcileUsers(createSyncDeps(clean.config, clean.client), userIds, { dryRun: false, runId: 'clean' });
    const deps = throttledDeps();
    const outcomes = await reconcileUsers(deps, userIds, { dryRun: false, runId: 'throttled' });
    deps.client.destroy();
    expect(outcomes.filter(({ result }) => result.status === 'error')).toEqual([]);
    expect(await lists(faulty)).toEqual(await lists(clean));
  }, 120_000);
});

describe('one user whose grant can never be written', () => {
  let tables: TestTables;
  afterEach(() => tables.close());

  test('a user at the 400 KB item limit becomes an error line; the run fixes everyone else and says it', async () => {
    tables = await startTestTables();
    const deps = createSyncDeps(tables.config, tables.client);
    // Just under DynamoDB's 400 KB item limit: any grant pushes the item over it.
    await tables.putUser('big', { L: [] }, { profile: { S: 'x'.repeat(400 * 1024 - 100) } });
    await tables.putPayment('o-big', { userId: 'big', courseId: `course-${'long'.repeat(25)}`, status: 'settlement' });
    for (let i = 1; i <= 30; i++) {
      await tables.putUser(`u${i}`, { L: [] });
      await tables.putPayment(`o${i}`, { userId: `u${i}`, courseId: 'c1', status: 'settlement' });
    }
    const { result, issues } = await fullRun(deps, 'fix', { segments: 1, buckets: 1 });
    expect(result.status).toBe('completed');
    expect(result.counts.usersFixed).toBe(30);
    expect(result.issues.error).toBe(1);
    expect(issues.find((line) => line.kind === 'error')).toMatchObject({ userId: 'big', applied: false, detail: expect.stringMatching(/size/i) });
    expect(courseIdsOf(await tables.userCourses('big'))).toEqual([]);
  });
});

describe('a per-user run against a table that is not there', () => {
  test('answers error for the user, naming the tables the missing resource can be', async () => {
    const tables = await startTestTables();
    try {
      const config = loadConfig({ ...tables.env, DYNAMODB_USERS_TABLE: 'lms-users-typo' });
      const [outcome] = await reconcileUsers(createSyncDeps(config, tables.client), ['u1'], { dryRun: false, runId: 'missing-table' });
      expect(outcome?.result.status).toBe('error');
      expect(outcome?.result.error).toMatch(/ResourceNotFoundException: .*table lms-users-typo/);
      expect(outcome?.result.issues).toEqual([expect.objectContaining({ kind: 'error', userId: 'u1' })]);
    } finally {
      await tables.close();
    }
  });
});

describe('a full fix killed part way', () => {
  let clean: TestTables;
  let killed: TestTables;
  afterEach(async () => {
    await Promise.all([clean.close(), killed.close()]);
  });

  test('killed (SIGKILL) at three points and run again, it ends in the state of an uninterrupted fix', async () => {
    [clean, killed] = await Promise.all([startTestTables(), startTestTables()]);
    for (const tables of [clean, killed]) await loadDemoData(tables.client, tables.config, generateDemoData({ users: 400, seed: 9 }, tables.config));
    await fullRun(createSyncDeps(clean.config, clean.client), 'fix');

    const reports = runFolder();
    const env = { ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('DYNAMODB_'))), ...killed.env };
    const command = (): ChildProcess =>
      spawn(join(ROOT, 'node_modules', '.bin', 'tsx'), ['scripts/cli.ts', 'fix', '--report-dir', reports.root, '--segments', '2'], { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
    /** Runs the fix and kills it a random 0–150 ms after its progress shows `stage` has begun (its previous stage's line). */
    const killDuring = (after: RegExp): Promise<number | null> => {
      const child = command();
      let seen = '';
      child.stderr?.on('data', (chunk: Buffer) => {
        seen += chunk.toString();
        if (after.test(seen)) setTimeout(() => child.kill('SIGKILL'), Math.floor(Math.random() * 150));
      });
      return new Promise((resolve) => child.on('exit', (code) => resolve(code)));
    };
    const before = await lists(killed);
    // During the repair (writes in flight), during the plan, and at start-up or in the snapshot.
    const codes = [await killDuring(/progress: join \+ plan/), await killDuring(/progress: snapshot/), await killDuring(/embedded|./)];
    expect(codes.filter((code) => code === null).length).toBeGreaterThan(0);
    const last = command();
    expect(await new Promise<number | null>((resolve) => last.on('exit', (code) => resolve(code)))).toBe(0);
    expect(await lists(killed)).not.toEqual(before);
    expect(await lists(killed)).toEqual(await lists(clean));
  }, 120_000);
});
