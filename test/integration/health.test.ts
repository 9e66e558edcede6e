import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { Context } from 'aws-lambda';
import { loadConfig, type SyncConfig } from '../../lambdas/core/config';
import { createSyncDeps, type SyncDeps } from '../../lambdas/core/deps';
import { checkHealth, createHealthReaders, type HealthCheck, type HealthOptions, type HealthReport } from '../../lambdas/core/jobs/health';
import { emptyCounts, emptyIssueCounts, type IssueCounts, type RunMode } from '../../lambdas/core/report/report';
import { RunRecords, type RunRecord } from '../../lambdas/core/runs/run-records';
import { EXIT, main, parseCommandLine, runCommand } from '../../scripts/cli';
import { fullRun, removeRunFolders } from '../support/full-run';
import { configError, loadHandler } from '../support/lambda';
import { startTestTables, type TestTables } from '../support/local-tables';

const NOW = Date.parse('2025-06-02T03:00:00.000Z');
const minutesAgo = (minutes: number): string => new Date(NOW - minutes * 60_000).toISOString();
const context = { functionName: 'payment-sync-health-test', awsRequestId: 'req-health' } as unknown as Context;

/** A completed run's record as finalize writes it, finished `finishedMinutesAgo` before NOW. */
function completed(mode: RunMode, finishedMinutesAgo: number, extra: Omit<Partial<RunRecord>, 'issues'> & { issues?: Partial<IssueCounts> } = {}): RunRecord {
  const { issues, ...rest } = extra;
  return {
    runId: `20250602T000000Z-${mode}-${finishedMinutesAgo}m`,
    mode,
    trigger: mode.startsWith('cron-') ? 'schedule' : 'manual',
    status: 'completed',
    dryRun: mode.endsWith('validate'),
    held: false,
    startedAt: minutesAgo(finishedMinutesAgo + 3),
    snapshotAt: minutesAgo(finishedMinutesAgo + 3),
    finishedAt: minutesAgo(finishedMinutesAgo),
    counts: emptyCounts(),
    issues: { ...emptyIssueCounts(), ...issues },
    ...rest,
  };
}

const check = (report: HealthReport, name: string): HealthCheck => {
  const found = report.checks.find((candidate) => candidate.name === name);
  if (!found) throw new Error(`no check ${name} in ${JSON.stringify(report.checks)}`);
  return found;
};
/** The checks that are not `pass`, by name: what made the report degraded or unhealthy. */
const notPassing = (report: HealthReport): Record<string, string> =>
  Object.fromEntries(report.checks.filter((found) => found.status !== 'pass').map((found) => [found.name, found.status]));

describe('health against dynalite and the run table', () => {
  let tables: TestTables;
  let tableCount = 0;
  let config: SyncConfig;
  let deps: SyncDeps;
  /** The run table as the runs write it, with NOW as their clock (lock times). */
  let runs: RunRecords;
  const health = (options: Partial<HealthOptions> = {}, at: SyncDeps = deps): Promise<HealthReport> => checkHealth(at, { expectStream: false, ...options });

  beforeAll(async () => {
    tables = await startTestTables();
  });
  // Each test gets an empty run table of its own, with an hourly sync schedule.
  beforeEach(async () => {
    const runsTable = `health-runs-${++tableCount}`;
    await tables.client.send(new CreateTableCommand({ TableName: runsTable, BillingMode: 'PAY_PER_REQUEST', KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }], AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }] }));
    config = { ...tables.config, runsTable, syncIntervalMinutes: 60 };
    deps = createSyncDeps(config, tables.client, () => NOW);
    runs = new RunRecords(tables.client, runsTable, () => NOW);
  });
  afterAll(async () => {
    removeRunFolders();
    await tables.close();
  });

  test('healthy with a sync completed ten minutes ago: every check passes and says what it found', async () => {
    const sync = completed('cron-sync', 10);
    await runs.finishRun(sync);
    await runs.finishRun(completed('cron-validate', 30));
    const report = await health({ failureQueueDepth: async () => 0 });
    expect(report.checks.map((found) => found.name)).toEqual(['paymentsTable', 'paymentsUserIndex', 'usersTable', 'lastSync', 'lastValidation', 'runLock', 'hold', 'failureQueue', 'pointInTimeRecovery']);
    expect(notPassing(report)).toEqual({});
    expect(report.status).toBe('healthy');
    expect(check(report, 'lastSync').detail).toBe(`run ${sync.runId} (cron-sync, schedule) finished ${sync.finishedAt} (10 min ago) (every 60 min: degraded past 90 min, unhealthy past 120 min)`);
    expect(check(report, 'runLock').detail).toBe('no full run in progress');
    expect(check(report, 'hold').detail).toBe('no hold: scheduled fixes write');
  });

  test('unhealthy when the last sync is older than two intervals; degraded past one and a half', async () => {
    const old = completed('cron-sync', 121);
    await runs.finishRun(old);
    const stale = await health();
    expect(stale.status).toBe('unhealthy');
    expect(notPassing(stale)).toEqual({ lastSync: 'fail' });
    expect(check(stale, 'lastSync').detail).toMatch(new RegExp(`^no sync completed for 2 h 1 min: last run ${old.runId} .*unhealthy past 120 min`));

    await runs.finishRun(completed('cron-sync', 100));
    const late = await health();
    expect(late.status).toBe('degraded');
    expect(notPassing(late)).toEqual({ lastSync: 'warn' });
    expect(check(late, 'lastSync').detail).toMatch(/^the last sync is late: .*\(100 min ago\)/);

    // Without a schedule interval (the command line on a laptop) the age is reported, not judged.
    const unjudged = await health({}, createSyncDeps({ ...config, syncIntervalMinutes: undefined }, tables.client, () => NOW));
    expect(unjudged.status).toBe('healthy');
    expect(check(unjudged, 'lastSync').detail).toMatch(/SYNC_INTERVAL_MINUTES unset, so its age is not judged/);
  });

  test('a manual full fix keeps the tables fresh, but a schedule that stopped is still degraded; a dry-run fix does not count', async () => {
    await runs.finishRun(completed('cron-sync', 300));
    const fix = completed('fix', 20);
    await runs.finishRun(fix);
    const report = await health();
    expect(notPassing(report)).toEqual({ lastSync: 'warn' });
    expect(check(report, 'lastSync').detail).toMatch(new RegExp(`^the tables were reconciled by run ${fix.runId} \\(fix, manual\\).*but the last scheduled cron-sync finished .*\\(5 h 0 min ago\\)`));

    await runs.finishRun(completed('fix', 5, { runId: 'dry-fix', dryRun: true }));
    expect(notPassing(await health())).toEqual({ lastSync: 'fail' });

    await runs.finishRun(completed('cron-sync', 15));
    expect((await health()).status).toBe('healthy');
  });

  test('no sync yet: degraded with a schedule (deployment just happened, or the schedule never ran)', async () => {
    const report = await health();
    expect(notPassing(report)).toEqual({ lastSync: 'warn' });
    expect(check(report, 'lastSync').detail).toMatch(/^no completed sync in health-runs-\d+ yet: the schedule \(every 60 min\)/);
  });

  test('degraded by a lock held past its expiry, which names the run; a lock within its expiry is a run in progress', async () => {
    await runs.finishRun(completed('cron-sync', 10));
    // Taken 13 hours ago: its 12 hours ran out an hour ago, and no finalize released it.
    const past = new RunRecords(tables.client, config.runsTable, () => NOW - 13 * 3_600_000);
    expect(await past.acquireLock('20250601T140000Z-fix-dead01', 'fix')).toEqual({ acquired: true });
    const stale = await health();
    expect(stale.status).toBe('degraded');
    expect(notPassing(stale)).toEqual({ runLock: 'warn' });
    expect(check(stale, 'runLock').detail).toBe(
      'run 20250601T140000Z-fix-dead01 (fix) holds a stale lock since 2025-06-01T14:00:00.000Z (13 h 0 min ago): it expired at 2025-06-02T02:00:00.000Z without the run\'s finalize releasing it (the run died); the next run takes it over',
    );

    // The next run takes it over, as the detail says; while it runs, that is no problem.
    expect(await runs.acquireLock('20250602T025000Z-cron-sync-live01', 'cron-sync')).toEqual({ acquired: true });
    const running = await health();
    expect(running.status).toBe('healthy');
    expect(check(running, 'runLock')).toEqual({ name: 'runLock', status: 'pass', detail: 'run 20250602T025000Z-cron-sync-live01 (cron-sync) in progress since 2025-06-02T03:00:00.000Z (0 min ago) (its lock expires at 2025-06-02T15:00:00.000Z)' });
  });

  test('degraded by a hold, naming the run that set it, when, why and how to release it; healthy again after payment-release-hold', async () => {
    await runs.finishRun(completed('cron-sync', 10, { held: true, dryRun: true }));
    await runs.setHold('20250602T020000Z-cron-sync-capped', 'the run reached MAX_USER_CHANGES_PER_RUN and stopped writing');
    const held = await health();
    expect(held.status).toBe('degraded');
    expect(notPassing(held)).toEqual({ hold: 'warn' });
    const { detail } = check(held, 'hold');
    expect(detail).toContain('run 20250602T020000Z-cron-sync-capped set a hold at 2025-06-02T03:00:00.000Z');
    expect(detail).toContain('the run reached MAX_USER_CHANGES_PER_RUN and stopped writing');
    expect(detail).toContain('npm run payment-release-hold');
    expect(detail).toContain('{"releaseHold": true}');
    // A held scheduled sync still completed (report-only): the schedule runs, and lastSync says how.
    expect(check(held, 'lastSync').detail).toMatch(/\(cron-sync, schedule, held: report-only\)/);

    const lines: string[] = [];
    const released = await runCommand(parseCommandLine(['release-hold']), deps, false, (line) => lines.push(line));
    expect(released.exitCode).toBe(EXIT.completed);
    const after = await health();
    expect(after.status).toBe('healthy');
    expect(check(after, 'hold').detail).toBe('no hold: scheduled fixes write');
  });

  test('degraded when the newest validation found missing courses or duplicates, naming the run and the snapshot time', async () => {
    // The sync ran before the validation's snapshot: it did not fix what the validation found.
    await runs.finishRun(completed('cron-sync', 10));
    await runs.finishRun(completed('validate', 200));
    const found = completed('cron-validate', 5, { issues: { missing: 3, duplicate: 1, unbacked: 7 } });
    await runs.finishRun(found);
    const report = await health();
    expect(report.status).toBe('degraded');
    expect(notPassing(report)).toEqual({ lastValidation: 'warn' });
    expect(check(report, 'lastValidation').detail).toMatch(
      new RegExp(`^validation run ${found.runId} \\(cron-validate\\) found 3 missing, 1 duplicate in the snapshot of ${found.snapshotAt} \\(8 min ago\\), not fixed since: npm run payment-fix`),
    );

    // A newer manual validation that found nothing fixable wins over the older scheduled one.
    const clean = completed('validate', 1, { issues: { unbacked: 7 } });
    await runs.finishRun(clean);
    const after = await health();
    expect(after.status).toBe('healthy');
    expect(check(after, 'lastValidation').detail).toBe(`validation run ${clean.runId} (validate) found 0 missing, 0 duplicate in the snapshot of ${clean.snapshotAt} (4 min ago)`);
  });

  test('a validation\'s findings count as fixed only after a full fix from a later snapshot that repaired everything (not capped, not held)', async () => {
    await runs.finishRun(completed('cron-validate', 60, { issues: { missing: 3 } }));
    await runs.finishRun(completed('cron-sync', 10, { capped: true }));
    expect(notPassing(await health())).toEqual({ lastValidation: 'warn' });
    await runs.finishRun(completed('cron-sync', 5, { runId: 'held-sync', held: true, dryRun: true }));
    expect(notPassing(await health())).toEqual({ lastValidation: 'warn' });
    await runs.finishRun(completed('cron-sync', 2, { runId: 'whole-sync' }));
    const fixed = await health();
    expect(fixed.status).toBe('healthy');
    expect(check(fixed, 'lastValidation').detail).toMatch(/found 3 missing, 0 duplicate .*; run whole-sync \(cron-sync, schedule\), a full fix from a later snapshot/);
  });

  test('the records real runs write: a validation that finds a missing course degrades health until a fix repairs it', async () => {
    const live = createSyncDeps(config, tables.client);
    await tables.putUser('health-u1', { L: [{ S: 'c-old' }] });
    await tables.putPayment('HEALTH-ORDER-1', { userId: 'health-u1', courseId: 'c-new', status: 'settlement' });
    const validation = await fullRun(live, 'validate', { dryRun: true });
    expect(validation.result.issues.missing).toBeGreaterThanOrEqual(1);
    const found = await health({}, live);
    expect(check(found, 'lastValidation')).toMatchObject({ status: 'warn', detail: expect.stringContaining(`validation run ${validation.result.runId} (validate) found ${validation.result.issues.missing} missing`) });
    expect(check(found, 'lastValidation').detail).toContain(`in the snapshot of ${validation.result.snapshotAt}`);

    const fix = await fullRun(live, 'fix');
    expect(fix.result.counts.coursesAdded).toBeGreaterThanOrEqual(1);
    const fixed = await health({}, live);
    expect(check(fixed, 'lastValidation')).toMatchObject({ status: 'pass', detail: expect.stringContaining(`run ${fix.result.runId} (fix, manual), a full fix from a later snapshot`) });
    expect(check(fixed, 'lastSync').detail).toContain(`the tables were reconciled by run ${fix.result.runId} (fix, manual)`);
  });

  test('every run check fails, saying why, when the run table is not there', async () => {
    const report = await health({}, createSyncDeps({ ...config, runsTable: 'no-such-runs' }, tables.client, () => NOW));
    expect(report.status).toBe('unhealthy');
    const failing = `run table no-such-runs does not exist at ${tables.endpoint}: check RUNS_TABLE (the stack's RunTableName output)`;
    for (const name of ['lastSync', 'lastValidation', 'runLock', 'hold']) expect(check(report, name)).toEqual({ name, status: 'fail', detail: failing });
  });

  test('tables and index: unhealthy without the index, the detail says what to set', async () => {
    await runs.finishRun(completed('cron-sync', 10));
    const report = await health({}, createSyncDeps({ ...config, paymentsUserIndex: 'byUser' }, tables.client, () => NOW));
    expect(report.status).toBe('unhealthy');
    expect(notPassing(report)).toEqual({ paymentsUserIndex: 'fail' });
    expect(check(report, 'paymentsUserIndex').detail).toMatch(/^index byUser not found on .*set PAYMENTS_USER_INDEX/);
  });

  test('failure queue: degraded by parked stream batches, unhealthy when its depth cannot be read', async () => {
    await runs.finishRun(completed('cron-sync', 10));
    const parked = await health({ failureQueueDepth: async () => 3 });
    expect(parked.status).toBe('degraded');
    expect(check(parked, 'failureQueue')).toMatchObject({ status: 'warn', detail: expect.stringMatching(/^3 failed stream batch\(es\) waiting in the failure queue: .*delete the message/) });
    const broken = await health({ failureQueueDepth: async () => Promise.reject(Object.assign(new Error('not allowed'), { name: 'AccessDenied' })) });
    expect(broken.status).toBe('unhealthy');
    expect(check(broken, 'failureQueue')).toEqual({ name: 'failureQueue', status: 'fail', detail: 'AccessDenied: not allowed' });
  });

  test('stream lag (on AWS): degraded past five minutes, reading the last fifteen', async () => {
    await runs.finishRun(completed('cron-sync', 10));
    const windows: number[] = [];
    const late = await health({ streamLag: async (minutes) => (windows.push(minutes), 6 * 60_000) });
    expect(windows).toEqual([15]);
    expect(late.status).toBe('degraded');
    expect(check(late, 'streamLag').detail).toMatch(/^payment changes waited up to 6 min \(360 s\) .*over 5 min: grants are late/);
    expect(check(await health({ streamLag: async () => 30_000 }), 'streamLag')).toMatchObject({ status: 'pass', detail: expect.stringContaining('within 30 s') });
    expect(check(await health({ streamLag: async () => undefined }), 'streamLag')).toMatchObject({ status: 'pass' });
  });

  test('the readers exist only where they apply: the failure queue when configured, the stream lag on AWS', () => {
    const local = createHealthReaders(config);
    expect(local.readers.failureQueueDepth).toBeUndefined();
    expect(local.readers.streamLag).toBeUndefined();
    local.destroy();
    const aws = createHealthReaders({ ...config, endpoint: undefined, failureQueueUrl: 'https://sqs.ap-southeast-1.amazonaws.com/123456789012/failures' });
    expect(aws.readers.failureQueueDepth).toEqual(expect.any(Function));
    expect(aws.readers.streamLag).toEqual(expect.any(Function));
    aws.destroy();
  });

  describe('point-in-time recovery', () => {
    /** A client of the test dynalite that answers DescribeContinuousBackups as AWS would. */
    const awsLike = (status: 'ENABLED' | 'DISABLED'): DynamoDBClient => {
      const client = new DynamoDBClient({ endpoint: tables.endpoint, region: 'ap-southeast-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
      client.middlewareStack.add(
        (next, at) => async (args) => {
          if (at.commandName !== 'DescribeContinuousBackupsCommand') return next(args);
          const output = { $metadata: {}, ContinuousBackupsDescription: { ContinuousBackupsStatus: 'ENABLED', PointInTimeRecoveryDescription: { PointInTimeRecoveryStatus: status } } };
          return { output, response: {} } as unknown as Awaited<ReturnType<typeof next>>;
        },
        { step: 'initialize', name: 'awsLikeContinuousBackups' },
      );
      return client;
    };
    const onAws = (status: 'ENABLED' | 'DISABLED', snapshotMode: SyncConfig['snapshotMode']): SyncDeps =>
      createSyncDeps({ ...config, endpoint: undefined, snapshotMode }, awsLike(status), () => NOW);

    test('locally it is unknown, never a failure, even with SNAPSHOT_MODE=export', async () => {
      await runs.finishRun(completed('cron-sync', 10));
      const report = await health({}, createSyncDeps({ ...config, snapshotMode: 'export' }, tables.client, () => NOW));
      expect(report.status).toBe('healthy');
      expect(check(report, 'pointInTimeRecovery')).toMatchObject({ status: 'pass', detail: expect.stringMatching(/^unknown locally: /) });
    });

    test('on AWS: off is unhealthy when SNAPSHOT_MODE=export needs it, informative otherwise', async () => {
      await runs.finishRun(completed('cron-sync', 10));
      const needed = await health({}, onAws('DISABLED', 'export'));
      expect(needed.status).toBe('unhealthy');
      expect(notPassing(needed)).toEqual({ pointInTimeRecovery: 'fail' });
      expect(check(needed, 'pointInTimeRecovery').detail).toMatch(/SNAPSHOT_MODE=export needs it on both tables.*aws dynamodb update-continuous-backups --table-name/);

      const informative = await health({}, onAws('DISABLED', 'scan'));
      expect(informative.status).toBe('healthy');
      expect(check(informative, 'pointInTimeRecovery').detail).toMatch(/DISABLED.*\(informative: SNAPSHOT_MODE=scan does not need it/);

      const on = await health({}, onAws('ENABLED', 'export'));
      expect(on.status).toBe('healthy');
      expect(check(on, 'pointInTimeRecovery').detail).toMatch(/ENABLED.*ENABLED: as SNAPSHOT_MODE=export needs/);
    });
  });

  test('payment-cron-health prints every check and exits 1 only when unhealthy', async () => {
    await runs.finishRun(completed('cron-sync', 10));
    await runs.setHold('capped-run', 'the run reached MAX_USER_CHANGES_PER_RUN and stopped writing');
    const degraded: string[] = [];
    const first = await runCommand(parseCommandLine(['health']), deps, false, (line) => degraded.push(line));
    expect(first.exitCode).toBe(EXIT.completed);
    const report = first.summary as HealthReport;
    expect(degraded).toHaveLength(report.checks.length + 1);
    for (const found of report.checks) expect(degraded).toContainEqual(expect.stringMatching(new RegExp(`^  ${found.status === 'fail' ? 'FAIL' : found.status} +${found.name} +`)));
    expect(degraded).toContainEqual(expect.stringMatching(/^ {2}warn hold +run capped-run set a hold/));
    expect(degraded.at(-1)).toBe('health: degraded');

    const unhealthy: string[] = [];
    const stale = createSyncDeps(config, tables.client, () => NOW + 3 * 3_600_000);
    const second = await runCommand(parseCommandLine(['health']), stale, false, (line) => unhealthy.push(line));
    expect(second.exitCode).toBe(EXIT.unhealthy);
    expect(unhealthy).toContainEqual(expect.stringMatching(/^ {2}FAIL lastSync +no sync completed for 3 h 10 min/));
    expect(unhealthy.at(-1)).toBe('health: unhealthy');
  });

  describe('SYNC_INTERVAL_MINUTES and FAILURE_QUEUE_URL come from loadConfig', () => {
    const saved = { ...process.env };
    afterEach(() => {
      for (const name of Object.keys(process.env)) if (!(name in saved)) delete process.env[name];
      Object.assign(process.env, saved);
    });

    test.each(['hourly', '0', '-5', '1.5', '10081'])('a bad SYNC_INTERVAL_MINUTES (%s) is a configuration error naming it, not a check turned off', (value) => {
      const error = configError({ ...tables.env, SYNC_INTERVAL_MINUTES: value });
      expect(error.problems).toEqual([`SYNC_INTERVAL_MINUTES must be a whole number from 1 to 10080 (got "${value}")`]);
    });

    test('a bad FAILURE_QUEUE_URL is a configuration error; good values are read, trimmed', () => {
      expect(configError({ ...tables.env, FAILURE_QUEUE_URL: 'failures' }).problems).toEqual(['FAILURE_QUEUE_URL must be an SQS queue URL, http(s) (got "failures")']);
      expect(configError({ ...tables.env, FAILURE_QUEUE_URL: 'failures', SYNC_INTERVAL_MINUTES: 'x' }).problems).toHaveLength(2);
      const url = 'https://sqs.ap-southeast-1.amazonaws.com/123456789012/payment-sync-failures';
      expect(loadConfig({ ...tables.env, FAILURE_QUEUE_URL: ` ${url} `, SYNC_INTERVAL_MINUTES: ' 30 ' })).toMatchObject({ failureQueueUrl: url, syncIntervalMinutes: 30 });
      expect(loadConfig({ ...tables.env, FAILURE_QUEUE_URL: ' ', SYNC_INTERVAL_MINUTES: '' })).toMatchObject({ failureQueueUrl: undefined, syncIntervalMinutes: undefined });
    });

    test('the health Lambda does not start with a bad SYNC_INTERVAL_MINUTES; payment-cron-health exits 2 naming it', async () => {
      await expect(loadHandler('../../lambdas/health/handler', { ...tables.env, RUNS_TABLE: config.runsTable, SYNC_INTERVAL_MINUTES: 'hourly' })).rejects.toThrow(/SYNC_INTERVAL_MINUTES must be a whole number/);
      const errors: string[] = [];
      const spy = jest.spyOn(console, 'error').mockImplementation((...args) => void errors.push(args.join(' ')));
      try {
        expect(await main(['health'], { ...tables.env, SYNC_INTERVAL_MINUTES: 'hourly', LOG_FILE: '' })).toBe(EXIT.couldNotRun);
      } finally {
        spy.mockRestore();
      }
      expect(errors.join('\n')).toMatch(/SYNC_INTERVAL_MINUTES must be a whole number from 1 to 10080 \(got "hourly"\)/);
    });

    test('the health Lambda judges the sync age by SYNC_INTERVAL_MINUTES from its configuration', async () => {
      await new RunRecords(tables.client, config.runsTable).finishRun({ ...completed('cron-sync', 0), finishedAt: new Date(Date.now() - 50 * 60_000).toISOString() });
      const env = { ...tables.env, RUNS_TABLE: config.runsTable };
      const every30 = (await (await loadHandler('../../lambdas/health/handler', { ...env, SYNC_INTERVAL_MINUTES: '30' }))({}, context)) as HealthReport;
      expect(check(every30, 'lastSync')).toMatchObject({ status: 'warn', detail: expect.stringContaining('(every 30 min: degraded past 45 min, unhealthy past 60 min)') });
      const hourly = (await (await loadHandler('../../lambdas/health/handler', { ...env, SYNC_INTERVAL_MINUTES: '60' }))({}, context)) as HealthReport;
      expect(check(hourly, 'lastSync')).toMatchObject({ status: 'pass', detail: expect.stringContaining('(every 60 min: degraded past 90 min') });
    });
  });
});
