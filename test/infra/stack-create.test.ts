import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Capture, Match } from 'aws-cdk-lib/assertions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { App } from 'aws-cdk-lib';
import { BUNDLING_STACKS } from 'aws-cdk-lib/cx-api';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { ISSUE_KINDS } from '../../lambdas/core/rules/plan';
import { STREAM_EVENT_SOURCE_SETTINGS } from '../../lambdas/stream/event-source-settings';
import { streamFilterPatterns } from '../../lambdas/stream/filter-criteria';
import { STREAM_METRICS } from '../../lambdas/stream/stream-batch';
import { addPaymentSync } from '../../lib/app';
import { actionsOf, assetDirectoryOf, logicalId, removeOutput, statementsOf, synthesize, type SynthesizedStack } from './stack-fixture';

/** The dev stack of cdk.json: created tables, defaults everywhere else. */
const CONTEXT = { paymentSync: { tables: { mode: 'create' } } };

const LOGS = ['logs:CreateLogStream', 'logs:PutLogEvents'];
const FULL_READ = ['dynamodb:DescribeTable', 'dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:Scan'];

let synthesized: SynthesizedStack;
beforeAll(() => {
  synthesized = synthesize(CONTEXT);
});
afterAll(() => removeOutput(synthesized));

const template = () => synthesized.template;
const stack = () => synthesized.stack;
const functions = () => ({
  stream: stack().realtime.handler,
  sync: stack().reconciliation.sync,
  validate: stack().reconciliation.validate,
  health: stack().health.handler,
});

describe('tables (create mode)', () => {
  it('creates both tables with the contract keys, generated names, PITR and RETAIN', () => {
    template().resourceCountIs('AWS::DynamoDB::Table', 2);
    template().hasResource('AWS::DynamoDB::Table', {
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
      Properties: {
        TableName: Match.absent(),
        KeySchema: [{ AttributeName: 'orderId', KeyType: 'HASH' }],
        BillingMode: 'PAY_PER_REQUEST',
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        StreamSpecification: { StreamViewType: 'NEW_AND_OLD_IMAGES' },
        GlobalSecondaryIndexes: [
          { IndexName: 'userId-index', KeySchema: [{ AttributeName: 'userId', KeyType: 'HASH' }], Projection: { ProjectionType: 'ALL' } },
        ],
      },
    });
    template().hasResource('AWS::DynamoDB::Table', {
      DeletionPolicy: 'Retain',
      Properties: {
        TableName: Match.absent(),
        KeySchema: [{ AttributeName: 'userId', KeyType: 'HASH' }],
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        StreamSpecification: Match.absent(),
      },
    });
  });
});

describe('functions', () => {
  it('runs all four on Node 24, each with its own role and log group: stream and health on ARM64, sync and validate on x86_64 (the DuckDB binding shipped)', () => {
    template().resourceCountIs('AWS::Lambda::Function', 4);
    const roles = new Set<string>();
    const architectures = { stream: 'arm64', sync: 'x86_64', validate: 'x86_64', health: 'arm64' };
    for (const [name, fn] of Object.entries(functions())) {
      template().hasResourceProperties('AWS::Lambda::Function', {
        Runtime: 'nodejs24.x',
        Architectures: [architectures[name as keyof typeof architectures]],
        Handler: 'index.handler',
        Role: { 'Fn::GetAtt': [logicalId(fn.role), 'Arn'] },
        LoggingConfig: { LogGroup: { Ref: logicalId(fn.logGroup) } },
        Environment: { Variables: Match.objectLike({ NODE_OPTIONS: '--enable-source-maps' }) },
      });
      roles.add(logicalId(fn.role));
    }
    expect(roles.size).toBe(4);
    template().allResourcesProperties('AWS::Logs::LogGroup', { RetentionInDays: 30 });
  });

  it('sizes memory, timeout and /tmp per role: the full runs for DuckDB (its snapshot and spill files in /tmp)', () => {
    const sizes = Object.fromEntries(
      Object.entries(functions()).map(([name, fn]) => {
        const properties = template().toJSON().Resources[logicalId(fn.function)].Properties;
        return [name, [properties.MemorySize, properties.Timeout, properties.EphemeralStorage?.Size]];
      }),
    );
    expect(sizes).toEqual({
      stream: [512, 60, undefined],
      sync: [3008, 900, 4096],
      validate: [3008, 900, 4096],
      health: [256, 30, undefined],
    });
  });

  it('gives every function the whole environment contract, only health the failure queue URL and sync interval, and only the full runs the join memory', () => {
    for (const [name, fn] of Object.entries(functions())) {
      const variables = template().toJSON().Resources[logicalId(fn.function)].Properties.Environment.Variables;
      expect(Object.keys(variables).sort()).toEqual(
        [
          'DYNAMODB_PAYMENTS_TABLE',
          'DYNAMODB_USERS_TABLE',
          'PAYMENTS_USER_INDEX',
          'PAYMENT_ID_ATTR',
          'PAYMENT_USER_ATTR',
          'PAYMENT_COURSE_ATTR',
          'PAYMENT_STATUS_ATTR',
          'PAYMENT_FRAUD_ATTR',
          'PAYMENT_UPDATED_ATTR',
          'USER_KEY_ATTR',
          'USER_COURSES_ATTR',
          'PURCHASED_COURSES_FORMAT',
          'PAID_STATUSES',
          'REVOKED_STATUSES',
          'REVOKE_ON_REFUND',
          'GRACE_MINUTES',
          'MAX_USER_CHANGES_PER_RUN',
          'MAX_REVOCATIONS_PER_RUN',
          'SCAN_SEGMENTS',
          'LOG_LEVEL',
          'POWERTOOLS_SERVICE_NAME',
          'POWERTOOLS_METRICS_NAMESPACE',
          'NODE_OPTIONS',
          ...(name === 'health' ? ['FAILURE_QUEUE_URL', 'SYNC_INTERVAL_MINUTES'] : []),
          ...(name === 'sync' || name === 'validate' ? ['JOIN_MEMORY_MB', 'JOIN_BUCKETS', 'SCAN_READ_UNITS_PER_SECOND'] : []),
        ].sort(),
      );
      expect(variables).toMatchObject({
        DYNAMODB_PAYMENTS_TABLE: { Ref: logicalId(stack().tables.payments) },
        DYNAMODB_USERS_TABLE: { Ref: logicalId(stack().tables.users) },
        POWERTOOLS_SERVICE_NAME: 'payment-sync',
        POWERTOOLS_METRICS_NAMESPACE: 'PaymentSync',
      });
    }
    const health = template().toJSON().Resources[logicalId(functions().health.function)].Properties.Environment.Variables;
    expect(health.FAILURE_QUEUE_URL).toEqual({ Ref: logicalId(stack().realtime.failureQueue) });
    expect(health.SYNC_INTERVAL_MINUTES).toBe('60');
    for (const fn of [functions().sync, functions().validate]) {
      // About 60% of the function's 3008 MB; the rest is Node's.
      expect(template().toJSON().Resources[logicalId(fn.function)].Properties.Environment.Variables.JOIN_MEMORY_MB).toBe('1800');
    }
  });

  it('bundles each handler with esbuild into one file with its source map (DuckDB stays outside, below)', () => {
    const outdir = synthesized.app.outdir;
    const bundles = readdirSync(outdir).filter((entry) => entry.startsWith('asset.') && existsSync(join(outdir, entry, 'index.js')));
    expect(bundles).toHaveLength(4);
    for (const bundle of bundles) {
      expect(existsSync(join(outdir, bundle, 'index.js.map'))).toBe(true);
      expect(readFileSync(join(outdir, bundle, 'index.js'), 'utf8')).toMatch(/\/\/# sourceMappingURL=index\.js\.map\s*$/);
    }
  });
});

describe('DuckDB in the sync and validate assets', () => {
  const EM_X86_64 = 62;
  const BINDING = join('node_modules', '@duckdb', 'node-bindings-linux-x64');
  const duckDbFunctions = () => ({ sync: functions().sync, validate: functions().validate });

  /** e_machine of an ELF file: a little-endian uint16 at byte 18, after the magic, class and data bytes. */
  function elfMachine(file: string): number {
    const header = Buffer.alloc(20);
    const fd = openSync(file, 'r');
    try {
      expect(readSync(fd, header, 0, header.length, 0)).toBe(header.length);
    } finally {
      closeSync(fd);
    }
    expect([...header.subarray(0, 6)]).toEqual([0x7f, 0x45, 0x4c, 0x46, 2, 1]); // \x7fELF, 64-bit, little-endian
    return header.readUInt16LE(18);
  }

  it.each(['sync', 'validate'] as const)('ships exactly the runtime packages with the %s handler, with the x86-64 binding', (name) => {
    const asset = assetDirectoryOf(synthesized, duckDbFunctions()[name].function);
    expect(readdirSync(join(asset, 'node_modules')).sort()).toEqual(['@duckdb', 'detect-libc']);
    expect(readdirSync(join(asset, 'node_modules', '@duckdb')).sort()).toEqual(['node-api', 'node-bindings', 'node-bindings-linux-x64']);
    for (const file of ['duckdb.node', 'libduckdb.so']) expect(elfMachine(join(asset, BINDING, file))).toBe(EM_X86_64);
  });

  it.each(['sync', 'validate'] as const)('requires DuckDB from the %s bundle instead of inlining it', (name) => {
    const asset = assetDirectoryOf(synthesized, duckDbFunctions()[name].function);
    const bundle = readFileSync(join(asset, 'index.js'), 'utf8');
    expect(bundle).toContain('require("@duckdb/node-api")');
    expect(bundle).not.toMatch(/node-bindings|duckdb\.node|detect-libc/);
    const sources = (JSON.parse(readFileSync(join(asset, 'index.js.map'), 'utf8')) as { sources: string[] }).sources;
    expect(sources.filter((source) => /node_modules\/(@duckdb|detect-libc)\//.test(source))).toEqual([]);
  });

  it('ships no node_modules with the stream and health handlers', () => {
    for (const fn of [functions().stream, functions().health]) expect(existsSync(join(assetDirectoryOf(synthesized, fn.function), 'node_modules'))).toBe(false);
  });

  it.each(['sync', 'validate'] as const)('loads the %s handler and runs a query from its asset folder alone', (name) => {
    const fn = duckDbFunctions()[name].function;
    const asset = assetDirectoryOf(synthesized, fn);
    const variables = template().toJSON().Resources[logicalId(fn)].Properties.Environment.Variables as Record<string, unknown>;
    // The deployed environment, table names (references) standing in as literals.
    const environment = Object.fromEntries(Object.entries(variables).map(([key, value]) => [key, typeof value === 'string' ? value : `${key}-value`]));
    const script = `
      const { handler } = require('./index.js');
      const { DuckDBInstance } = require('@duckdb/node-api');
      (async () => {
        const connection = await (await DuckDBInstance.create(':memory:')).connect();
        const rows = (await connection.runAndReadAll('SELECT 6 * 7')).getRows();
        const loaded = Object.keys(require.cache).filter((file) => /duckdb|detect-libc/.test(file));
        console.log(JSON.stringify({ handler: typeof handler, rows, loaded }));
      })();`;
    const output = execFileSync(process.execPath, ['-e', script], {
      cwd: asset,
      env: { PATH: process.env.PATH, AWS_REGION: 'ap-southeast-1', ...environment },
      encoding: 'utf8',
    });
    const result = JSON.parse(output.trim().split('\n').pop()!) as { handler: string; rows: number[][]; loaded: string[] };
    expect(result.handler).toBe('function');
    expect(result.rows).toEqual([[42]]);
    expect(result.loaded).toContain(join(asset, BINDING, 'duckdb.node'));
    expect(result.loaded.every((file) => file.startsWith(`${asset}/`))).toBe(true);
  });
});

describe('stream event source', () => {
  it('reads the payments stream with the shared settings, the filters and the failure queue', () => {
    const filterPattern = new Capture();
    template().resourceCountIs('AWS::Lambda::EventSourceMapping', 1);
    template().hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: logicalId(functions().stream.function) },
      EventSourceArn: { 'Fn::GetAtt': [logicalId(stack().tables.payments), 'StreamArn'] },
      StartingPosition: 'TRIM_HORIZON',
      BatchSize: STREAM_EVENT_SOURCE_SETTINGS.batchSize,
      MaximumBatchingWindowInSeconds: STREAM_EVENT_SOURCE_SETTINGS.maximumBatchingWindowInSeconds,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      BisectBatchOnFunctionError: true,
      MaximumRetryAttempts: STREAM_EVENT_SOURCE_SETTINGS.maximumRetryAttempts,
      MaximumRecordAgeInSeconds: STREAM_EVENT_SOURCE_SETTINGS.maximumRecordAgeInSeconds,
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [logicalId(stack().realtime.failureQueue), 'Arn'] } } },
      FilterCriteria: { Filters: [{ Pattern: filterPattern }] },
    });
    expect(STREAM_EVENT_SOURCE_SETTINGS.maximumRetryAttempts).toBeGreaterThan(0);
    expect(JSON.parse(filterPattern.asString())).toEqual(
      streamFilterPatterns(['settlement', 'success', 'paid', 'completed'], ['refund', 'chargeback'], 'status')[0],
    );
  });

  it('keeps failed batches in an encrypted queue that refuses plain HTTP', () => {
    template().hasResourceProperties('AWS::SQS::Queue', { SqsManagedSseEnabled: true, MessageRetentionPeriod: 14 * 24 * 3600 });
    template().hasResourceProperties('AWS::SQS::QueuePolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Action: 'sqs:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });
});

describe('IAM: each function its own least-privilege role', () => {
  const actions = (fn: { role: IConstruct }) => actionsOf(statementsOf(template(), logicalId(fn.role)));

  it('grants the stream function stream read, the index query, and get/update on users', () => {
    expect(actions(functions().stream)).toEqual(
      [
        ...LOGS,
        'dynamodb:DescribeStream',
        'dynamodb:GetItem',
        'dynamodb:GetRecords',
        'dynamodb:GetShardIterator',
        'dynamodb:ListStreams',
        'dynamodb:Query',
        'dynamodb:UpdateItem',
        'sqs:GetQueueAttributes',
        'sqs:GetQueueUrl',
        'sqs:SendMessage',
      ].sort(),
    );
    const statements = statementsOf(template(), logicalId(functions().stream.role));
    expect(statements.find((statement) => statement.Action === 'dynamodb:Query')?.Resource).toEqual({
      'Fn::Join': ['', [{ 'Fn::GetAtt': [logicalId(stack().tables.payments), 'Arn'] }, '/index/userId-index']],
    });
  });

  it('limits every UpdateItem on users to the key and the courses list', () => {
    for (const fn of [functions().stream, functions().sync]) {
      const updates = statementsOf(template(), logicalId(fn.role)).filter((statement) => [statement.Action].flat().includes('dynamodb:UpdateItem'));
      expect(updates).toEqual([
        {
          Sid: 'UpdateUserCoursesOnly',
          Effect: 'Allow',
          Action: 'dynamodb:UpdateItem',
          Resource: { 'Fn::GetAtt': [logicalId(stack().tables.users), 'Arn'] },
          Condition: {
            'ForAllValues:StringEquals': { 'dynamodb:Attributes': ['userId', 'purchasedCourses'] },
            StringEqualsIfExists: { 'dynamodb:ReturnValues': ['NONE', 'UPDATED_OLD', 'UPDATED_NEW'] },
          },
        },
      ]);
    }
  });

  it('gives the sync function what its paths call: the scans, the index, the user read and the courses update, no backup', () => {
    expect(actions(functions().sync)).toEqual([...LOGS, ...FULL_READ, 'dynamodb:UpdateItem'].sort());
  });

  it('reads payments only by scan and through the index: no item reads of payments in any role of a full run', () => {
    for (const fn of [functions().sync, functions().validate]) {
      const statements = statementsOf(template(), logicalId(fn.role));
      const getItem = statements.filter((statement) => [statement.Action].flat().includes('dynamodb:GetItem'));
      expect(getItem.map((statement) => statement.Resource)).toEqual([{ 'Fn::GetAtt': [logicalId(stack().tables.users), 'Arn'] }]);
    }
  });

  it('keeps the validate function read-only: no write of any kind in any statement', () => {
    const statements = statementsOf(template(), logicalId(functions().validate.role));
    expect(actionsOf(statements)).toEqual([...LOGS, ...FULL_READ].sort());
    const tableActions = statements.flatMap((statement) => [statement.Action].flat()).filter((action) => !LOGS.includes(action));
    expect(tableActions.length).toBeGreaterThan(0);
    for (const action of tableActions) {
      expect(action).toMatch(/^dynamodb:/);
      expect(action).not.toMatch(/\*|Put|Update|Delete|Write|Create|Restore|Transact|Import|PartiQL|Execute/i);
    }
  });

  it('gives the health function describe calls, queue attributes and metric reads', () => {
    expect(actions(functions().health)).toEqual(
      [...LOGS, 'cloudwatch:GetMetricData', 'cloudwatch:GetMetricStatistics', 'dynamodb:DescribeTable', 'sqs:GetQueueAttributes'].sort(),
    );
  });

  it('attaches no managed policy to any role (no AWSLambdaBasicExecutionRole logs:* on *)', () => {
    template().allResourcesProperties('AWS::IAM::Role', { ManagedPolicyArns: Match.absent() });
  });
});

describe('schedules (EventBridge Scheduler)', () => {
  it.each([
    ['sync', 'cron(0 * * * ? *)'],
    ['validate', 'cron(30 2 * * ? *)'],
    ['health', 'rate(15 minutes)'],
  ] as const)('runs %s on %s in Asia/Jakarta, with Scheduler’s own event', (name, expression) => {
    const scheduleRole = new Capture();
    template().hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: expression,
      ScheduleExpressionTimezone: 'Asia/Jakarta',
      State: 'ENABLED',
      FlexibleTimeWindow: { Mode: 'OFF' },
      Target: {
        Arn: { 'Fn::GetAtt': [logicalId(functions()[name].function), 'Arn'] },
        RoleArn: { 'Fn::GetAtt': [scheduleRole, 'Arn'] },
        Input: Match.absent(),
        RetryPolicy: { MaximumRetryAttempts: 2, MaximumEventAgeInSeconds: 3600 },
      },
    });
    expect(actionsOf(statementsOf(template(), scheduleRole.asString()))).toEqual(['lambda:InvokeFunction']);
    template().hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: logicalId(functions()[name].function) },
      MaximumRetryAttempts: 0,
    });
  });

  it('has exactly the three schedules', () => {
    template().resourceCountIs('AWS::Scheduler::Schedule', 3);
  });
});

describe('alarms', () => {
  const alarms = () => template().findResources('AWS::CloudWatch::Alarm');

  it('sends every alarm, and its recovery, to the encrypted alarm topic', () => {
    const topic = logicalId(stack().monitoring.topic);
    expect(Object.keys(alarms())).toHaveLength(11);
    for (const alarm of Object.values(alarms())) {
      expect(alarm.Properties.AlarmActions).toEqual([{ Ref: topic }]);
      expect(alarm.Properties.OKActions).toEqual([{ Ref: topic }]);
    }
    template().hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: { 'Fn::GetAtt': [Match.anyValue(), 'Arn'] } });
    template().hasResourceProperties('AWS::KMS::Key', {
      EnableKeyRotation: true,
      KeyPolicy: {
        Statement: Match.arrayWith([
          Match.objectLike({ Principal: { Service: 'cloudwatch.amazonaws.com' }, Action: ['kms:Decrypt', 'kms:GenerateDataKey*'] }),
        ]),
      },
    });
    template().resourceCountIs('AWS::SNS::Subscription', 0);
  });

  it('watches the stream: errors, iterator age and the failure queue', () => {
    const stream = { Ref: logicalId(functions().stream.function) };
    template().hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/Lambda',
      MetricName: 'Errors',
      Dimensions: [{ Name: 'FunctionName', Value: stream }],
      Threshold: 1,
    });
    template().hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'IteratorAge',
      Statistic: 'Maximum',
      Dimensions: [{ Name: 'FunctionName', Value: stream }],
      Threshold: 5 * 60_000,
    });
    template().hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [logicalId(stack().realtime.failureQueue), 'QueueName'] } }],
      Threshold: 1,
    });
  });

  it('alarms on errors of the sync, validate and health functions', () => {
    for (const fn of [functions().sync, functions().validate, functions().health]) {
      template().hasResourceProperties('AWS::CloudWatch::Alarm', {
        MetricName: 'Errors',
        Dimensions: [{ Name: 'FunctionName', Value: { Ref: logicalId(fn.function) } }],
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        Threshold: 1,
      });
    }
  });

  it('fires when no scheduled sync completed within two sync periods, missing data included', () => {
    template().hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'PaymentSync',
      MetricName: 'RunCompleted',
      Dimensions: Match.arrayEquals([
        { Name: 'mode', Value: 'cron-sync' },
        { Name: 'service', Value: 'payment-sync' },
      ]),
      Statistic: 'Sum',
      Period: 3600,
      EvaluationPeriods: 2,
      ComparisonOperator: 'LessThanThreshold',
      Threshold: 1,
      TreatMissingData: 'breaching',
    });
  });

  it('fires when full runs find more issues of the watched kinds than the threshold', () => {
    const expression = new Capture();
    template().hasResourceProperties('AWS::CloudWatch::Alarm', {
      ComparisonOperator: 'GreaterThanThreshold',
      Threshold: 10,
      Metrics: Match.arrayWith([
        Match.objectLike({ Expression: expression, ReturnData: true }),
        ...['missing', 'duplicate'].map((kind) =>
          Match.objectLike({
            MetricStat: {
              Metric: {
                Namespace: 'PaymentSync',
                MetricName: 'IssuesFound',
                Dimensions: Match.arrayEquals([
                  { Name: 'kind', Value: kind },
                  { Name: 'service', Value: 'payment-sync' },
                ]),
              },
              Period: 3600,
              Stat: 'Sum',
            },
          }),
        ),
      ]),
    });
    expect(expression.asString()).toBe('SUM([k0, k1])');
  });

  it('fires on capped and incomplete runs and on an unhealthy (or silent) health check', () => {
    for (const metric of ['RunCapped', 'RunIncomplete']) {
      template().hasResourceProperties('AWS::CloudWatch::Alarm', { Namespace: 'PaymentSync', MetricName: metric, Threshold: 1 });
    }
    template().hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'PaymentSync',
      MetricName: 'HealthStatus',
      Statistic: 'Maximum',
      Period: 900,
      Threshold: 2,
      TreatMissingData: 'breaching',
    });
  });
});

describe('dashboard', () => {
  it('shows the product metrics: grants, revocations, issues by kind, run durations, lag', () => {
    const body = new Capture();
    template().hasResourceProperties('AWS::CloudWatch::Dashboard', { DashboardBody: { 'Fn::Join': ['', body] } });
    // The body is JSON with references spliced in; stand a placeholder in for each of them.
    const parts = body.asArray().map((part) => (typeof part === 'string' ? part : 'REF'));
    const widgets = (JSON.parse(parts.join('')) as { widgets: Array<{ properties: { metrics?: string[][] } }> }).widgets;
    const plotted = widgets.flatMap((widget) => widget.properties.metrics ?? []);
    const productMetrics = plotted.filter((metric) => metric[0] === 'PaymentSync').map((metric) => metric[1]);
    expect(new Set(productMetrics)).toEqual(
      new Set([
        ...Object.values(STREAM_METRICS),
        'RunCompleted',
        'RunIncomplete',
        'RunCapped',
        'UsersFixed',
        'CoursesAdded',
        'CoursesRemoved',
        'DuplicatesRemoved',
        'RunDurationMs',
        'IssuesFound',
        'HealthStatus',
      ]),
    );
    const issueKinds = plotted.filter((metric) => metric[1] === 'IssuesFound').map((metric) => metric[3]);
    expect(issueKinds).toEqual([...ISSUE_KINDS]);
    expect(plotted.some((metric) => metric[0] === 'AWS/Lambda' && metric[1] === 'IteratorAge')).toBe(true);
  });
});

describe('outputs', () => {
  it('names what operators invoke and watch', () => {
    expect(Object.keys(template().findOutputs('*')).sort()).toEqual(
      [
        'AlarmTopicArn',
        'DashboardName',
        'FailureQueueUrl',
        'HealthFunctionName',
        'PaymentsTableName',
        'StreamFunctionName',
        'SyncFunctionName',
        'UsersTableName',
        'ValidateFunctionName',
      ].sort(),
    );
    template().hasOutput('SyncFunctionName', { Value: { Ref: logicalId(functions().sync.function) } });
  });
});

describe('cdk-nag (AWS Solutions)', () => {
  it('reports no unacknowledged finding', () => {
    const report = new AwsSolutionsChecks().validateScope(synthesized.app);
    expect(report.violations.map((violation) => `${violation.ruleName} ${violation.violatingResources.map((r) => r.constructPath)}`)).toEqual([]);
  });

  it('acknowledges only the expected findings, each with its reason, written into the template', () => {
    type Acknowledged = { Metadata?: { cdk_nag?: { rules_to_suppress: Array<{ id: string; reason: string }> } } };
    const resources = Object.values(template().toJSON().Resources as Record<string, Acknowledged>);
    const acknowledged = resources.flatMap((resource) => resource.Metadata?.cdk_nag?.rules_to_suppress ?? []);
    for (const { reason } of acknowledged) expect(reason.length).toBeGreaterThan(40);
    // Written on every resource under the acknowledged construct (a role and its policy, say).
    expect(new Set(acknowledged.map(({ id }) => id.replace(/<\w+\.Arn>/, '<function>')))).toEqual(
      new Set([
        'AwsSolutions-IAM5[Resource::*]', // stream role (dynamodb:ListStreams), health role (CloudWatch metric reads)
        'AwsSolutions-IAM5[Resource::<function>:*]', // the scheduler roles: invoke the function's versions
        'AwsSolutions-SQS3', // the failure queue is itself the dead end
      ]),
    );
  });

  it('fails the synth of the app when a finding is not acknowledged', () => {
    // No bundling (an empty list of stacks to bundle): cdk-nag reads the template, not the assets.
    const app = new App({ context: { ...CONTEXT, [BUNDLING_STACKS]: [] }, outdir: mkdtempSync(join(tmpdir(), 'payment-sync-cdk-')) });
    const built = addPaymentSync(app);
    new sqs.Queue(built, 'QueueWithoutSslPolicy');
    try {
      expect(() => app.synth()).toThrow(/AwsSolutions-SQS4/);
    } finally {
      rmSync(app.outdir, { recursive: true, force: true });
    }
  });
});
