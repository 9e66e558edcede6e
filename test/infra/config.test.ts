import { App } from 'aws-cdk-lib';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { loadConfig } from '../../lambdas/core/config';
import {
  DeployConfigError,
  deploymentEnvironment,
  fullRunEnvironment,
  healthEnvironment,
  lambdaEnvironment,
  loadDeployConfig,
  runTaskEnvironment,
  scheduleIntervalMinutes,
  snapshotModeOf,
} from '../../lib/config';

const STREAM_ARN = 'arn:aws:dynamodb:ap-southeast-1:123456789012:table/lms-payments/stream/2024-01-01T00:00:00.000';
const IMPORT_TABLES = {
  mode: 'import',
  paymentsTableName: 'lms-payments',
  usersTableName: 'lms-users',
  paymentsStreamArn: STREAM_ARN,
};

function configFrom(context: Record<string, unknown>) {
  return loadDeployConfig(new App({ context }).node);
}

function problemsOf(context: Record<string, unknown>): readonly string[] {
  try {
    configFrom(context);
  } catch (error) {
    expect(error).toBeInstanceOf(DeployConfigError);
    return (error as DeployConfigError).problems;
  }
  throw new Error('expected the configuration to be rejected');
}

describe('loadDeployConfig', () => {
  it('needs only the table mode; every other default is the Lambda loader’s own', () => {
    const config = configFrom({ paymentSync: { tables: { mode: 'create' } } });
    expect(config.stage).toBe('dev');
    expect(config.logging.retentionDays).toBe(RetentionDays.ONE_MONTH);
    const names = { payments: 'lms-payments', users: 'lms-users' };
    const fromDerivedEnvironment = loadConfig(lambdaEnvironment(config, names));
    const fromBareEnvironment = loadConfig({ DYNAMODB_PAYMENTS_TABLE: names.payments, DYNAMODB_USERS_TABLE: names.users });
    expect(fromDerivedEnvironment).toEqual(fromBareEnvironment);
  });

  it('derives the whole environment contract from the configuration', () => {
    const config = configFrom({
      paymentSync: {
        tables: { ...IMPORT_TABLES, paymentsUserIndex: 'byUser' },
        attributes: { paymentCourse: 'courseIds', userCourses: 'courses' },
        statuses: { paid: ['Settlement', 'lunas'] },
        sync: { revokeOnRefund: true, coursesFormat: 'objects', graceMinutes: 10, scanSegments: 8 },
        logging: { level: 'DEBUG' },
      },
    });
    expect(lambdaEnvironment(config, { payments: 'lms-payments', users: 'lms-users' })).toEqual({
      DYNAMODB_PAYMENTS_TABLE: 'lms-payments',
      DYNAMODB_USERS_TABLE: 'lms-users',
      PAYMENTS_USER_INDEX: 'byUser',
      PAYMENT_ID_ATTR: 'orderId',
      PAYMENT_USER_ATTR: 'userId',
      PAYMENT_COURSE_ATTR: 'courseIds',
      PAYMENT_STATUS_ATTR: 'status',
      PAYMENT_FRAUD_ATTR: 'fraudStatus',
      PAYMENT_UPDATED_ATTR: 'updatedAt',
      USER_KEY_ATTR: 'userId',
      USER_COURSES_ATTR: 'courses',
      PURCHASED_COURSES_FORMAT: 'objects',
      PAID_STATUSES: 'settlement,lunas',
      REVOKED_STATUSES: 'refund,chargeback',
      REVOKE_ON_REFUND: 'true',
      GRACE_MINUTES: '10',
      MAX_USER_CHANGES_PER_RUN: '1000',
      MAX_REVOCATIONS_PER_RUN: '100',
      SCAN_SEGMENTS: '8',
      LOG_LEVEL: 'DEBUG',
      POWERTOOLS_SERVICE_NAME: 'payment-sync',
      POWERTOOLS_METRICS_NAMESPACE: 'PaymentSync',
    });
    expect(healthEnvironment(config, { payments: 'p', users: 'u' }, 'https://sqs/q', 'runs')).toMatchObject({ FAILURE_QUEUE_URL: 'https://sqs/q', RUNS_TABLE: 'runs', SNAPSHOT_MODE: 'scan' });
    // About 60% of the function's memory for the DuckDB join, read back by the Lambda loader.
    expect(loadConfig(fullRunEnvironment(config, { payments: 'p', users: 'u' }, 3008))).toMatchObject({ joinMemoryMb: 1800, joinBuckets: 1, scanReadUnitsPerSecond: undefined });
    const paced = configFrom({ paymentSync: { tables: { mode: 'create' }, sync: { joinBuckets: 8, scanReadUnitsPerSecond: 4000 } } });
    expect(loadConfig(fullRunEnvironment(paced, { payments: 'p', users: 'u' }, 3008))).toMatchObject({ joinBuckets: 8, scanReadUnitsPerSecond: 4000 });
  });

  it('derives the run tasks’ environment: the run table, the bucket, the snapshot mode and the run’s concurrency, read back by the Lambda loader', () => {
    const names = { payments: 'p', users: 'u' };
    const resources = { runsTable: 'runs-table', reportsBucket: 'reports-bucket' };
    const defaults = configFrom({ paymentSync: { tables: { mode: 'create' } } });
    expect(defaults.sync).toMatchObject({ joinConcurrency: 10, repairConcurrency: loadConfig({ DYNAMODB_PAYMENTS_TABLE: 'p', DYNAMODB_USERS_TABLE: 'u' }).repairConcurrency });
    expect(defaults.schedules.fullFix).toBe('cron(0 3 ? * SUN *)');
    expect(defaults.reports.retentionDays).toBe(90);
    expect(loadConfig(runTaskEnvironment(defaults, names, resources))).toMatchObject({
      runsTable: 'runs-table',
      reportsBucket: 'reports-bucket',
      snapshotMode: 'export',
      joinConcurrency: 10,
    });
    const tuned = configFrom({
      paymentSync: { tables: IMPORT_TABLES },
      'paymentSync.sync.joinConcurrency': '3',
      'paymentSync.sync.repairConcurrency': '7',
      'paymentSync.reports.retentionDays': '30',
    });
    expect(tuned.reports.retentionDays).toBe(30);
    expect(loadConfig(runTaskEnvironment(tuned, names, resources, 3008))).toMatchObject({ snapshotMode: 'scan', joinConcurrency: 3, repairConcurrency: 7, joinMemoryMb: 1800 });
    // Only the join task is sized for DuckDB.
    expect(runTaskEnvironment(tuned, names, resources)).not.toHaveProperty('JOIN_MEMORY_MB');
  });

  it.each([
    ['create', undefined, 'export'],
    ['create', 'scan', 'scan'],
    ['import', undefined, 'scan'],
    ['import', 'export', 'export'],
  ] as const)('chooses the snapshot mode: %s tables with sync.snapshotMode %s → %s', (mode, configured, expected) => {
    const tables = mode === 'create' ? { mode: 'create' } : IMPORT_TABLES;
    const config = configFrom({ paymentSync: { tables, ...(configured ? { sync: { snapshotMode: configured } } : {}) } });
    expect(snapshotModeOf(config)).toBe(expected);
    expect(runTaskEnvironment(config, { payments: 'p', users: 'u' }, { runsTable: 'r', reportsBucket: 'b' }).SNAPSHOT_MODE).toBe(expected);
  });

  it('rejects bad run settings by name', () => {
    const problems = problemsOf({
      paymentSync: {
        tables: { mode: 'create' },
        sync: { snapshotMode: 'dump', joinConcurrency: 0, repairConcurrency: 1001 },
        reports: { retentionDays: 0 },
        schedules: { fullFix: 'weekly' },
      },
    });
    for (const pattern of [
      /^paymentSync\.sync\.snapshotMode: /,
      /^paymentSync\.sync\.joinConcurrency: must be a whole number from 1 to 1000/,
      /^paymentSync\.sync\.repairConcurrency: must be a whole number from 1 to 1000/,
      /^paymentSync\.reports\.retentionDays: must be a whole number from 1 to 3650/,
      /^paymentSync\.schedules\.fullFix: must be rate/,
    ]) {
      expect(problems).toContainEqual(expect.stringMatching(pattern));
    }
    expect(problems).toHaveLength(5);
  });

  it('merges the stage overlay, then command-line overrides given as strings', () => {
    const config = configFrom({
      stage: 'prod',
      paymentSync: {
        tables: { mode: 'create' },
        alarms: { email: 'dev@example.com' },
        stages: { prod: { tables: IMPORT_TABLES, alarms: { issuesThreshold: 50 } } },
      },
      'paymentSync.alarms.email': 'ops@example.com',
      'paymentSync.sync.revokeOnRefund': 'true',
      'paymentSync.sync.maxRevocationsPerRun': '5',
      'paymentSync.statuses.revoked': 'refund, Chargeback ,partial_refund',
      'paymentSync.alarms.issueKinds': 'missing,revoked',
    });
    expect(config.stage).toBe('prod');
    expect(config.tables).toEqual({ ...IMPORT_TABLES, paymentsUserIndex: 'userId-index' });
    expect(config.alarms).toMatchObject({ email: 'ops@example.com', issuesThreshold: 50, issueKinds: ['missing', 'revoked'] });
    expect(config.sync).toMatchObject({ revokeOnRefund: true, maxRevocationsPerRun: 5 });
    expect(config.statuses.revoked).toEqual(['refund', 'chargeback', 'partial_refund']);
    expect(config.logging.retentionDays).toBe(RetentionDays.ONE_YEAR);
  });

  it('rejects a bad configuration with one error naming every problem', () => {
    const problems = problemsOf({
      stage: 'staging',
      paymentSync: {
        tables: { mode: 'import', paymentsTableName: 'lms-payments' },
        statuses: { paid: ['settlement', 'refund'] },
        sync: { revokeOnRefund: 'maybe', graceMinuts: 5 },
        schedules: { timeZone: 'Mars/Olympus', sync: 'cron(0 9 ? * MON *)', validate: 'daily' },
        alarms: { email: 'not-an-address' },
        logging: { retentionDays: 42 },
      },
    });
    const expected = [
      /^stage must be one of dev, prod/,
      /^paymentSync\.tables\.usersTableName: is required in import mode/,
      /^paymentSync\.tables\.paymentsStreamArn: is required in import mode/,
      /^paymentSync\.sync\.revokeOnRefund: must be true or false/,
      /^paymentSync\.sync: Unrecognized key: "graceMinuts"/,
      /^paymentSync\.schedules\.timeZone: must be an IANA time zone/,
      /^paymentSync\.schedules\.validate: must be rate/,
      /^paymentSync\.alarms\.email: must be an e-mail address/,
      /^paymentSync\.logging\.retentionDays: must be one of/,
    ];
    for (const pattern of expected) expect(problems).toContainEqual(expect.stringMatching(pattern));
    // Cross-field checks run once every field is valid on its own.
    const crossField = problemsOf({
      paymentSync: {
        tables: { ...IMPORT_TABLES, paymentsTableName: 'other-payments' },
        statuses: { paid: ['settlement', 'refund'] },
        schedules: { sync: 'cron(0 9 ? * MON *)' },
      },
    });
    expect(crossField).toEqual([
      'paymentSync.statuses: paid and revoked share refund',
      'paymentSync.tables.paymentsStreamArn: is the stream of table "lms-payments", not of paymentsTableName "other-payments"',
      expect.stringMatching(/^paymentSync\.schedules\.sync: must repeat at a fixed interval/),
    ]);
  });

  it('requires the table mode to be chosen explicitly', () => {
    expect(problemsOf({})).toEqual([expect.stringMatching(/^paymentSync\.tables: must choose mode "import"/)]);
  });

  it('puts an import-mode stack in the account and region of the payments stream', () => {
    expect(deploymentEnvironment(configFrom({ paymentSync: { tables: IMPORT_TABLES } }))).toEqual({
      account: '123456789012',
      region: 'ap-southeast-1',
    });
  });
});

describe('scheduleIntervalMinutes', () => {
  it.each([
    ['rate(15 minutes)', 15],
    ['rate(1 hour)', 60],
    ['rate(2 days)', 2880],
    ['cron(0 * * * ? *)', 60],
    ['cron(5 0/2 * * ? *)', 120],
    ['cron(30 2 * * ? *)', 1440],
    ['cron(0 9 ? * MON *)', undefined],
    ['cron(0/5 * * * ? *)', undefined],
    ['cron(0 0/5 * * ? *)', undefined],
  ])('%s → %s', (expression, minutes) => {
    expect(scheduleIntervalMinutes(expression)).toBe(minutes);
  });
});
