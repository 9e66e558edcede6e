import { Capture, Match } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { streamFilterPatterns } from '../../lambdas/stream/filter-criteria';
import { RUN_STATES } from '../../lib/constructs/run-definition';
import {
  actionsOf,
  allowing,
  definitionOf,
  logicalId,
  removeOutput,
  resourcesAllowed,
  roleIdsOf,
  statementsOf,
  statesOf,
  synthesize,
  type SynthesizedStack,
  type TokenNamer,
} from './stack-fixture';

const STREAM_ARN = 'arn:aws:dynamodb:ap-southeast-1:123456789012:table/lms-payments/stream/2024-05-01T00:00:00.000';
const PAYMENTS_ARN = 'arn:aws:dynamodb:ap-southeast-1:123456789012:table/lms-payments';
const USERS_ARN = 'arn:aws:dynamodb:ap-southeast-1:123456789012:table/lms-users';
const IMPORTED_TABLES = {
  mode: 'import',
  paymentsTableName: 'lms-payments',
  usersTableName: 'lms-users',
  paymentsStreamArn: STREAM_ARN,
  paymentsUserIndex: 'byUser-index',
};

/**
 * A prod stack next to the LMS's existing tables, configured the way DEPLOY.md shows: the
 * prod overlay imports the tables, the attribute mapping differs from the defaults, and one
 * setting comes from the command line.
 */
const CONTEXT = {
  stage: 'prod',
  paymentSync: {
    tables: { mode: 'create' },
    attributes: { userKey: 'id', userCourses: 'courses', paymentStatus: 'transactionStatus' },
    statuses: { paid: ['settlement', 'lunas'] },
    schedules: { timeZone: 'Asia/Makassar', sync: 'rate(30 minutes)', validate: 'cron(0 3 * * ? *)', health: 'rate(5 minutes)' },
    reports: { retentionDays: 400 },
    stages: {
      prod: {
        tables: IMPORTED_TABLES,
        alarms: { email: 'ops@example.com' },
      },
    },
  },
  'paymentSync.alarms.issuesThreshold': '25',
};

let synthesized: SynthesizedStack;
beforeAll(() => {
  synthesized = synthesize(CONTEXT);
});
afterAll(() => removeOutput(synthesized));

const template = () => synthesized.template;
const stack = () => synthesized.stack;
const reconciliation = () => stack().reconciliation;
const tasks = () => reconciliation().tasks;
/** The ARNs a role may use an action on, as text (the partition reads `aws`). */
const resourcesOf = (roleConstruct: IConstruct, action: string) => resourcesAllowed(statementsOf(template(), logicalId(roleConstruct)), action).map(arnText);
/** What every function that reads the snapshot mode also reads: the run records. */
const TASK_ENVIRONMENT_KEYS = ['SNAPSHOT_MODE', 'RUNS_TABLE'];

/** An ARN as text: the partition reads `aws`, a reference to a resource of the stack `<LogicalId.Attribute>`. */
function arnText(value: unknown): string {
  if (typeof value === 'string') return value;
  const object = value as { Ref?: string; 'Fn::Join'?: [string, unknown[]]; 'Fn::GetAtt'?: [string, string] };
  if (object.Ref === 'AWS::Partition') return 'aws';
  if (object.Ref) return `<${object.Ref}>`;
  if (object['Fn::GetAtt']) return `<${object['Fn::GetAtt'].join('.')}>`;
  if (object['Fn::Join']) return object['Fn::Join'][1].map(arnText).join(object['Fn::Join'][0]);
  throw new Error(`not an ARN: ${JSON.stringify(value)}`);
}

/** In an imported stack the run definition names the tables by ARN; functions and the bucket stay references. */
const nameToken: TokenNamer = (token) => {
  const text = JSON.stringify(token);
  if (text === JSON.stringify({ Ref: 'AWS::Partition' })) return 'aws';
  if (text === JSON.stringify({ Ref: logicalId(reconciliation().reports) })) return '«bucket»';
  if (Object.values(tasks()).some((task) => text === JSON.stringify({ 'Fn::GetAtt': [logicalId(task.function), 'Arn'] }))) return '«function»';
  throw new Error(`a reference the run definition should not hold: ${text}`);
};

describe('import mode (prod)', () => {
  it('creates no payments or users table, only the run table, and deploys to the account and region of the payments stream', () => {
    const tables = template().findResources('AWS::DynamoDB::Table');
    expect(Object.keys(tables)).toEqual([logicalId(reconciliation().runTable)]);
    expect(stack().stackName).toBe('PaymentSync-prod');
    expect(stack().account).toBe('123456789012');
    expect(stack().region).toBe('ap-southeast-1');
  });

  it('maps the existing payments stream, filtered on the configured status attribute and words', () => {
    const pattern = new Capture();
    template().hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: STREAM_ARN,
      StartingPosition: 'TRIM_HORIZON',
      FilterCriteria: { Filters: [{ Pattern: pattern }] },
    });
    expect(JSON.parse(pattern.asString())).toEqual(streamFilterPatterns(['settlement', 'lunas'], ['refund', 'chargeback'], 'transactionStatus')[0]);
  });

  it('passes the existing names and the attribute mapping to every function', () => {
    const functions = template().findResources('AWS::Lambda::Function');
    expect(Object.keys(functions)).toHaveLength(11);
    for (const fn of Object.values(functions)) {
      expect(fn.Properties.Environment.Variables).toMatchObject({
        DYNAMODB_PAYMENTS_TABLE: 'lms-payments',
        DYNAMODB_USERS_TABLE: 'lms-users',
        PAYMENTS_USER_INDEX: 'byUser-index',
        USER_KEY_ATTR: 'id',
        USER_COURSES_ATTR: 'courses',
        PAYMENT_STATUS_ATTR: 'transactionStatus',
        PAID_STATUSES: 'settlement,lunas',
      });
    }
  });

  it('scopes every grant to the named tables, the index and the stream', () => {
    const { realtime, health } = stack();
    const { sync, validate } = reconciliation();
    expect(resourcesOf(realtime.handler.role, 'dynamodb:Query')).toEqual([`${PAYMENTS_ARN}/index/byUser-index`]);
    expect(resourcesOf(realtime.handler.role, 'dynamodb:UpdateItem')).toEqual([USERS_ARN]);
    expect(resourcesOf(realtime.handler.role, 'dynamodb:GetRecords')).toEqual([STREAM_ARN]);
    expect(resourcesOf(tasks().collectChanges.role, 'dynamodb:GetRecords')).toEqual([STREAM_ARN]);
    expect(resourcesOf(tasks().scanSegment.role, 'dynamodb:Scan').sort()).toEqual([PAYMENTS_ARN, USERS_ARN].sort());
    for (const role of [sync.role, validate.role, tasks().repairBatch.role]) {
      expect(resourcesOf(role, 'dynamodb:Query')).toEqual([`${PAYMENTS_ARN}/index/byUser-index`]);
    }
    expect(resourcesOf(tasks().repairBatch.role, 'dynamodb:UpdateItem')[0]).toBe(USERS_ARN);
    expect(resourcesOf(sync.role, 'dynamodb:GetItem')).toContain(USERS_ARN);
    expect(resourcesOf(sync.role, 'dynamodb:CreateBackup')).toEqual([]);
    expect(resourcesOf(tasks().prepare.role, 'dynamodb:CreateBackup')).toEqual([USERS_ARN]);
    expect(resourcesOf(health.handler.role, 'dynamodb:DescribeTable').sort()).toEqual([PAYMENTS_ARN, USERS_ARN].sort());
    for (const machine of [reconciliation().syncRun, reconciliation().validationRun]) {
      expect(resourcesOf(machine.role, 'dynamodb:ExportTableToPointInTime')).toEqual([PAYMENTS_ARN, USERS_ARN]);
      expect(resourcesOf(machine.role, 'dynamodb:DescribeExport')).toEqual([`${PAYMENTS_ARN}/export/*`, `${USERS_ARN}/export/*`]);
    }
  });

  it('exports the named tables in the run definitions', () => {
    for (const machine of [reconciliation().syncRun, reconciliation().validationRun]) {
      const states = statesOf(definitionOf(template(), logicalId(machine), nameToken));
      expect(states.get(RUN_STATES.startPaymentsExport)?.Parameters).toMatchObject({ TableArn: PAYMENTS_ARN, S3Bucket: '«bucket»' });
      expect(states.get(RUN_STATES.startUsersExport)?.Parameters).toMatchObject({ TableArn: USERS_ARN, S3Bucket: '«bucket»' });
    }
  });

  it('limits the courses update to the mapped key and courses attributes; validation cannot update users', () => {
    for (const fn of [stack().realtime.handler, reconciliation().sync, tasks().repairBatch]) {
      const updates = allowing(statementsOf(template(), logicalId(fn.role)), 'dynamodb:UpdateItem', (resource) => arnText(resource) === USERS_ARN);
      expect(updates).toHaveLength(1);
      expect(updates[0]?.Condition?.['ForAllValues:StringEquals']).toEqual({ 'dynamodb:Attributes': ['id', 'courses'] });
    }
    const updaters = roleIdsOf(template()).filter((role) => allowing(statementsOf(template(), role), 'dynamodb:UpdateItem', (resource) => resource === '*' || arnText(resource) === USERS_ARN).length > 0);
    expect(updaters.sort()).toEqual([stack().realtime.handler, reconciliation().sync, tasks().repairBatch].map((fn) => logicalId(fn.role)).sort());
    expect(actionsOf(statementsOf(template(), logicalId(reconciliation().validate.role)))).not.toContain('dynamodb:UpdateItem');
  });

  it('keeps prod logs a year and keeps them, the alarm key, the run table and the reports bucket when the stack goes', () => {
    template().allResources('AWS::Logs::LogGroup', { DeletionPolicy: 'Retain', Properties: { RetentionInDays: 365 } });
    template().hasResource('AWS::KMS::Key', { DeletionPolicy: 'Retain' });
    const resources = template().toJSON().Resources;
    expect(resources[logicalId(reconciliation().runTable)].DeletionPolicy).toBe('Retain');
    expect(resources[logicalId(reconciliation().reports)].DeletionPolicy).toBe('Retain');
  });

  it('expires run folders after the configured retention', () => {
    const rules = template().toJSON().Resources[logicalId(reconciliation().reports)].Properties.LifecycleConfiguration.Rules as unknown[];
    expect(rules).toContainEqual(expect.objectContaining({ Prefix: 'runs/', ExpirationInDays: 400, Status: 'Enabled' }));
  });

  it('e-mails the alarms to the configured address', () => {
    template().hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'ops@example.com',
      TopicArn: { Ref: logicalId(stack().monitoring.topic) },
    });
  });

  it('schedules in the configured time zone (the weekly full fix on its default) and sizes alarm periods to the schedules', () => {
    template().resourceCountIs('AWS::Scheduler::Schedule', 4);
    for (const expression of ['rate(30 minutes)', 'cron(0 3 * * ? *)', 'rate(5 minutes)', 'cron(0 3 ? * SUN *)']) {
      template().hasResourceProperties('AWS::Scheduler::Schedule', { ScheduleExpression: expression, ScheduleExpressionTimezone: 'Asia/Makassar' });
    }
    template().hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'RunCompleted', Period: 1800, EvaluationPeriods: 2 });
    template().hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'HealthStatus', Period: 300 });
    template().hasResourceProperties('AWS::CloudWatch::Alarm', {
      Threshold: 25,
      Metrics: Match.arrayWith([Match.objectLike({ MetricStat: Match.objectLike({ Period: 1800 }) })]),
    });
  });

  it('snapshots by scan by default (imported tables may lack point-in-time recovery): SNAPSHOT_MODE=scan in every task function and health', () => {
    for (const [name, fn] of Object.entries({ ...tasks(), health: stack().health.handler })) {
      const variables = template().toJSON().Resources[logicalId(fn.function)].Properties.Environment.Variables;
      expect([name, variables.SNAPSHOT_MODE]).toEqual([name, 'scan']);
    }
  });

  it('is cdk-nag clean', () => {
    expect(new AwsSolutionsChecks().validateScope(synthesized.app).violations).toEqual([]);
  });
});

describe('import mode with paymentSync.sync.snapshotMode export', () => {
  let exporting: SynthesizedStack | undefined;
  beforeAll(() => {
    // The template only: no asset is bundled.
    exporting = synthesize({ ...CONTEXT, 'paymentSync.sync.snapshotMode': 'export' }, { bundle: false });
  });
  afterAll(() => removeOutput(exporting));

  it('sets SNAPSHOT_MODE=export in every task function and health, and only there', () => {
    const { stack: built, template: exportingTemplate } = exporting!;
    const resources = exportingTemplate.toJSON().Resources;
    const taskIds = [...Object.values(built.reconciliation.tasks), built.health.handler].map((fn) => logicalId(fn.function));
    expect(taskIds).toHaveLength(8);
    for (const id of taskIds) expect(resources[id].Properties.Environment.Variables.SNAPSHOT_MODE).toBe('export');
    for (const [id, fn] of Object.entries(exportingTemplate.findResources('AWS::Lambda::Function'))) {
      if (!taskIds.includes(id)) expect([id, fn.Properties.Environment.Variables.SNAPSHOT_MODE]).toEqual([id, undefined]);
      else for (const key of TASK_ENVIRONMENT_KEYS) expect([id, key, fn.Properties.Environment.Variables[key]]).toEqual([id, key, expect.anything()]);
    }
    expect(new AwsSolutionsChecks().validateScope(exporting!.app).violations).toEqual([]);
  });
});
