import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DescribeTableCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { createSyncDeps } from '../../lambdas/core/deps';
import { listedCourseIds } from '../../lambdas/core/rules/courses-list';
import { LOCAL_DATA_DIR, LOCAL_DATA_DIR_VARIABLE, localDataDir, lockDataDir, startEmbeddedDefault } from '../../scripts/local/environment';

const root = join(__dirname, '..', '..');

/**
 * Runs a script as `npm run …` does, in a process of its own, with the embedded default's data
 * in `dataDir` (never the project's `.local/`).
 */
function run(script: string, args: string[], dataDir: string) {
  const base = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('DYNAMODB_') && name !== LOCAL_DATA_DIR_VARIABLE));
  const child = spawnSync(process.execPath, ['--import', 'tsx', script, ...args], {
    cwd: root,
    encoding: 'utf8',
    env: { ...base, [LOCAL_DATA_DIR_VARIABLE]: dataDir, LOG_FILE: '' },
  });
  return { code: child.status, stdout: child.stdout, stderr: child.stderr, lastLine: child.stdout.trim().split('\n').pop() ?? '' };
}

describe('the persistent embedded default', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'local-persistent-'));
  const dataDir = join(scratch, 'local');
  const reports = join(scratch, 'reports');
  const cli = (...args: string[]) => run('scripts/cli.ts', [...args, '--json', '--report-dir', reports], dataDir);
  const reset = () => run('scripts/local/reset.ts', [], dataDir);
  let seededMissing = 0;

  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  test('the data directory is .local/ by default, elsewhere when told, and in memory under jest or when asked', () => {
    expect(LOCAL_DATA_DIR).toBe(join(root, '.local'));
    expect(localDataDir({})).toBe(LOCAL_DATA_DIR);
    expect(localDataDir({ [LOCAL_DATA_DIR_VARIABLE]: 'some/where' })).toBe(resolve('some/where'));
    expect(localDataDir({ [LOCAL_DATA_DIR_VARIABLE]: 'memory' })).toBeUndefined();
    expect(localDataDir({ JEST_WORKER_ID: '1' })).toBeUndefined();
    expect(localDataDir({ JEST_WORKER_ID: '1', [LOCAL_DATA_DIR_VARIABLE]: dataDir })).toBe(dataDir);
  });

  test('first use creates and seeds it; a fix in one process is what the next process validates; later flags do not re-seed', () => {
    const first = cli('validate', '--demo-users', '30');
    expect(first.code).toBe(0);
    expect(first.stderr).toContain('created now with 30 demo users');
    const before = JSON.parse(first.lastLine);
    expect(before.counts.usersScanned).toBe(30);
    expect(before.issues.missing).toBeGreaterThan(0);
    seededMissing = before.issues.missing;
    expect(readdirSync(dataDir).sort()).toEqual(expect.arrayContaining(['demo.json', 'dynamodb']));

    const fix = cli('fix');
    expect(fix.code).toBe(0);
    expect(fix.stderr).toContain('using the existing data');
    expect(fix.stderr).not.toContain('created now');
    const fixed = JSON.parse(fix.lastLine);
    expect(fixed.issues.missing).toBe(seededMissing);
    expect(fixed.counts.coursesAdded).toBeGreaterThanOrEqual(seededMissing);

    // Other demo flags on existing data: said, not applied.
    const again = cli('validate', '--demo-users', '50', '--demo-seed', '3');
    expect(again.code).toBe(0);
    expect(again.stderr).toContain('using the existing data');
    expect(again.stderr).toContain('50 demo users (seed 3) asked for, not applied');
    const after = JSON.parse(again.lastLine);
    expect(after.counts.usersScanned).toBe(30);
    expect(after.issues.missing).toBe(0);
    expect(after.issues.duplicate).toBe(0);
  }, 120_000);

  test('a second process while one has the data: a clear error (exit 2), not a crash', async () => {
    const release = await lockDataDir(dataDir);
    try {
      const busy = cli('validate');
      expect(busy.code).toBe(2);
      expect(busy.stderr).toMatch(/payment-sync: the embedded data in .* is in use \(pid \d+, .*\): one process at a time can open it \(a LevelDB lock\)/);
      expect(busy.stderr).not.toMatch(/^\s+at /m);
      const refused = reset();
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain('not reset');
      expect(existsSync(join(dataDir, 'dynamodb'))).toBe(true);
    } finally {
      await release();
    }
  }, 120_000);

  test('the stream capture stands in front of it: a paid payment written to its endpoint is granted live; the run table is there', async () => {
    const local = await startEmbeddedDefault({ env: { [LOCAL_DATA_DIR_VARIABLE]: dataDir } });
    try {
      expect(local.seededNow).toBe(false);
      const runs = await local.client.send(new DescribeTableCommand({ TableName: local.config.runsTable }));
      expect(runs.Table?.KeySchema).toEqual([{ AttributeName: 'pk', KeyType: 'HASH' }]);
      const p = local.config.payment;
      await local.client.send(
        new PutItemCommand({
          TableName: local.config.paymentsTable,
          Item: { [p.id]: { S: 'ORDER-LIVE-TEST' }, [p.user]: { S: 'user-00001' }, [p.course]: { S: 'course-live-test' }, [p.status]: { S: 'settlement' }, [p.updated]: { S: new Date().toISOString() } },
        }),
      );
      await local.stream.idle();
      const user = await createSyncDeps(local.config, local.client).users.get('user-00001');
      expect(listedCourseIds(user.courses)).toContain('course-live-test');
    } finally {
      await local.close();
    }
  }, 60_000);

  test('local:reset deletes it and says so; the next command seeds fresh demo data', () => {
    const done = reset();
    expect(done.code).toBe(0);
    expect(done.stdout).toContain(`deleted ${dataDir}`);
    expect(existsSync(dataDir)).toBe(false);
    expect(reset().stdout).toContain('nothing to reset');

    const fresh = cli('validate', '--demo-users', '30');
    expect(fresh.code).toBe(0);
    expect(fresh.stderr).toContain('created now with 30 demo users');
    expect(JSON.parse(fresh.lastLine).issues.missing).toBe(seededMissing);
  }, 120_000);
});
