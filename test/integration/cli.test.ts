import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ISSUE_KINDS } from '../../lambdas/core/rules/plan';
import { EXIT, exitCodeOf } from '../../scripts/cli';

const root = join(__dirname, '..', '..');
const tsx = join(root, 'node_modules', '.bin', 'tsx');

/** Runs the command line as an operator would, on the embedded default unless env says otherwise. */
function cli(args: string[], env: Record<string, string> = {}) {
  const base = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('DYNAMODB_')));
  const run = spawnSync(tsx, ['scripts/cli.ts', ...args], { cwd: root, encoding: 'utf8', env: { ...base, ...env } });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr, lastLine: run.stdout.trim().split('\n').pop() ?? '' };
}

describe('the command line', () => {
  const reports = mkdtempSync(join(tmpdir(), 'cli-reports-'));

  test('--json prints the contract summary as the last stdout line, and the report folder holds the run', () => {
    const run = cli(['fix', '--json', '--demo-users', '60', '--report-dir', reports]);
    expect(run.code).toBe(0);
    const summary = JSON.parse(run.lastLine);
    expect(summary).toMatchObject({ mode: 'fix', dryRun: false, runId: expect.any(String) });
    for (const key of ['paymentsScanned', 'usersScanned', 'usersFixed', 'coursesAdded', 'coursesRemoved', 'duplicatesRemoved']) {
      expect(typeof summary.counts[key]).toBe('number');
    }
    expect(Object.keys(summary.issues).sort()).toEqual([...ISSUE_KINDS].sort());
    expect(summary.counts.coursesAdded).toBeGreaterThan(0);
    const folder = join(reports, summary.runId);
    // The report, the run's snapshot in the export layout, its candidate files and each task's figures.
    expect(readdirSync(folder).sort()).toEqual(['candidates', 'changes.jsonl', 'issues.jsonl', 'results', 'snapshot', 'summary.json']);
    expect(readdirSync(join(folder, 'snapshot', 'payments'))).toEqual(expect.arrayContaining(['manifest-summary.json', 'manifest-files.json', 'data']));
    expect(summary.snapshotAt).toEqual(expect.any(String));
    expect(JSON.parse(readFileSync(join(folder, 'summary.json'), 'utf8')).counts).toEqual(summary.counts);
    const changes = readFileSync(join(folder, 'changes.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line));
    expect(new Set(changes.map((change) => change.userId)).size).toBe(summary.counts.usersFixed);
  });

  test('--user narrows to named users; the migration backs up users first', () => {
    const single = cli(['validate', '--user', 'user-00003', '--user', 'nobody', '--json', '--report-dir', reports]);
    expect(single.code).toBe(0);
    expect(JSON.parse(single.lastLine).counts.usersScanned).toBe(2);
    const migrate = cli(['migrate', '--json', '--demo-users', '40', '--report-dir', reports]);
    expect(migrate.code).toBe(0);
    const summary = JSON.parse(migrate.lastLine);
    expect(summary.backup).toMatchObject({ kind: 'file', items: 40 });
    expect(readFileSync(summary.backup.location, 'utf8').trim().split('\n')).toHaveLength(40);
  });

  test('--max-changes 0 writes nothing and reports what it would have changed as CAPPED', () => {
    const run = cli(['fix', '--max-changes', '0', '--json', '--demo-users', '40', '--report-dir', reports]);
    expect(run.code).toBe(EXIT.capped);
    const summary = JSON.parse(run.lastLine);
    expect(summary).toMatchObject({ capped: true, counts: { usersFixed: 0, coursesAdded: 0 } });
    expect(summary.issues.missing).toBeGreaterThan(0);
    expect(readFileSync(join(reports, summary.runId, 'changes.jsonl'), 'utf8')).toBe('');
  });

  test('a run the change cap stopped exits 3 and says CAPPED; a run with users in error exits 4', () => {
    const capped = cli(['fix', '--max-changes', '2', '--json', '--demo-users', '60', '--report-dir', reports]);
    expect(capped.code).toBe(EXIT.capped);
    const summary = JSON.parse(capped.lastLine);
    expect(summary).toMatchObject({ capped: true, counts: { usersFixed: 2 } });
    expect(capped.stderr).toMatch(/CAPPED/);
    const base = JSON.parse(capped.lastLine);
    expect(exitCodeOf({ ...base, capped: false, issues: { ...base.issues, error: 1 } })).toBe(EXIT.usersInError);
    expect(exitCodeOf({ ...base, capped: false, issues: { ...base.issues, error: 0 } })).toBe(EXIT.completed);
  });

  test('it exits non-zero with a clear message when it cannot run', () => {
    const badConfig = cli(['validate'], { DYNAMODB_PAYMENTS_TABLE: 'lms-payments', PURCHASED_COURSES_FORMAT: 'xml' });
    expect(badConfig.code).toBe(2);
    expect(badConfig.stderr).toMatch(/DYNAMODB_USERS_TABLE is required.*PURCHASED_COURSES_FORMAT must be one of/);
    const unreachable = cli(['validate'], { DYNAMODB_ENDPOINT: 'http://127.0.0.1:9', DYNAMODB_PAYMENTS_TABLE: 'p', DYNAMODB_USERS_TABLE: 'u' });
    expect(unreachable.code).toBe(2);
    expect(unreachable.stderr).toMatch(/cannot reach DynamoDB at http:\/\/127\.0\.0\.1:9/);
    const usage = cli(['validate', '--segments', 'many']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/--segments takes a whole number/);
    for (const [flag, value] of [['--buckets', '0'], ['--max-changes', '=-1'], ['--max-changes', '-1'], ['--demo-users', '1.5'], ['--segments', '']] as const) {
      const bad = cli(['validate', value.startsWith('=') ? `${flag}${value}` : flag, ...(value.startsWith('=') ? [] : [value])]);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(new RegExp(`${flag} takes a whole number`));
    }
  });
});
