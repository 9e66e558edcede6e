import { Capture, Match } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { streamFilterPatterns } from '../../lambdas/stream/filter-criteria';
import { actionsOf, logicalId, removeOutput, statementsOf, synthesize, type SynthesizedStack } from './stack-fixture';

const STREAM_ARN = 'arn:aws:dynamodb:ap-southeast-1:123456789012:table/lms-payments/stream/2024-05-01T00:00:00.000';

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
    stages: {
      prod: {
        tables: {
          mode: 'import',
          paymentsTableName: 'lms-payments',
          usersTableName: 'lms-users',
          paymentsStreamArn: STREAM_ARN,
          paymentsUserIndex: 'byUser-index',
        },
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
/** The ARNs a role may use an action on, as text (the partition reads `aws`). */
const resourcesOf = (roleConstruct: Parameters<typeof logicalId>[0], action: string) =>
  statementsOf(template(), logicalId(roleConstruct))
    .filter((statement) => [statement.Action].flat().includes(action))
    .flatMap((statement) => [statement.Resource].flat())
    .map(arnText);

function arnText(value: unknown): string {
  if (typeof value === 'string') return value;
  const object = value as { Ref?: string; 'Fn::Join'?: [string, unknown[]] };
  if (object.Ref === 'AWS::Partition') return 'aws';
  if (object['Fn::Join']) return object['Fn::Join'][1].map(arnText).join(object['Fn::Join'][0]);
  throw new Error(`not a literal ARN: ${JSON.stringify(value)}`);
}

describe('import mode (prod)', () => {
  it('creates no table and deploys to the account and region of the payments stream', () => {
    template().resourceCountIs('AWS::DynamoDB::Table', 0);
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
    expect(Object.keys(functions)).toHaveLength(4);
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
    const { realtime, reconciliation, health } = stack();
    const usersArn = 'arn:aws:dynamodb:ap-southeast-1:123456789012:table/lms-users';
    const paymentsArn = 'arn:aws:dynamodb:ap-southeast-1:123456789012:table/lms-payments';
    expect(resourcesOf(realtime.handler.role, 'dynamodb:Query')).toEqual([`${paymentsArn}/index/byUser-index`]);
    expect(resourcesOf(realtime.handler.role, 'dynamodb:UpdateItem')).toEqual([usersArn]);
    expect(resourcesOf(realtime.handler.role, 'dynamodb:GetRecords')).toEqual([STREAM_ARN]);
    expect(resourcesOf(reconciliation.validate.role, 'dynamodb:Scan').sort()).toEqual([paymentsArn, usersArn].sort());
    expect(resourcesOf(reconciliation.sync.role, 'dynamodb:Query')).toEqual([`${paymentsArn}/index/byUser-index`]);
    expect(resourcesOf(reconciliation.sync.role, 'dynamodb:GetItem')).toEqual([usersArn]);
    expect(resourcesOf(reconciliation.sync.role, 'dynamodb:CreateBackup')).toEqual([]);
    expect(resourcesOf(health.handler.role, 'dynamodb:DescribeTable').sort()).toEqual([paymentsArn, usersArn].sort());
  });

  it('limits the courses update to the mapped key and courses attributes', () => {
    for (const fn of [stack().realtime.handler, stack().reconciliation.sync]) {
      const update = statementsOf(template(), logicalId(fn.role)).find((statement) => statement.Action === 'dynamodb:UpdateItem');
      expect(update?.Condition?.['ForAllValues:StringEquals']).toEqual({ 'dynamodb:Attributes': ['id', 'courses'] });
    }
    expect(actionsOf(statementsOf(template(), logicalId(stack().reconciliation.validate.role)))).not.toContain('dynamodb:UpdateItem');
  });

  it('keeps prod logs a year and keeps them (and the alarm key) when the stack goes', () => {
    template().allResources('AWS::Logs::LogGroup', { DeletionPolicy: 'Retain', Properties: { RetentionInDays: 365 } });
    template().hasResource('AWS::KMS::Key', { DeletionPolicy: 'Retain' });
  });

  it('e-mails the alarms to the configured address', () => {
    template().hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'ops@example.com',
      TopicArn: { Ref: logicalId(stack().monitoring.topic) },
    });
  });

  it('schedules in the configured time zone and sizes alarm periods to the schedules', () => {
    for (const expression of ['rate(30 minutes)', 'cron(0 3 * * ? *)', 'rate(5 minutes)']) {
      template().hasResourceProperties('AWS::Scheduler::Schedule', { ScheduleExpression: expression, ScheduleExpressionTimezone: 'Asia/Makassar' });
    }
    template().hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'RunCompleted', Period: 1800, EvaluationPeriods: 2 });
    template().hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'HealthStatus', Period: 300 });
    template().hasResourceProperties('AWS::CloudWatch::Alarm', {
      Threshold: 25,
      Metrics: Match.arrayWith([Match.objectLike({ MetricStat: Match.objectLike({ Period: 1800 }) })]),
    });
  });

  it('is cdk-nag clean', () => {
    expect(new AwsSolutionsChecks().validateScope(synthesized.app).violations).toEqual([]);
  });
});
