import { Duration, type RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { ISSUE_KINDS } from '../../lambdas/core/rules/plan';
import { METRICS_NAMESPACE, SERVICE_NAME, scheduleIntervalMinutes, type DeployConfig } from '../config';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import type { SyncFunction } from './sync-function';

export interface MonitoringProps {
  readonly config: DeployConfig;
  readonly stream: SyncFunction;
  readonly failureQueue: sqs.IQueue;
  readonly sync: SyncFunction;
  readonly validate: SyncFunction;
  /** The full-run state machines: a failed execution is a run finalize closed as failed. */
  readonly runMachines: readonly sfn.StateMachine[];
  readonly health: SyncFunction;
  /** Of the alarm topic's key: kept in prod, removed with a dev stack. */
  readonly removalPolicy: RemovalPolicy;
}

/** The product's own metrics, as the Lambdas publish them with Powertools (EMF). */
function productMetric(metricName: string, options: { dimensions?: Record<string, string>; statistic?: string; period?: Duration } = {}) {
  return new cloudwatch.Metric({
    namespace: METRICS_NAMESPACE,
    metricName,
    dimensionsMap: { service: SERVICE_NAME, ...options.dimensions },
    statistic: options.statistic ?? cloudwatch.Stats.SUM,
    period: options.period ?? Duration.minutes(5),
  });
}

/**
 * Alarms to an encrypted SNS topic (with an optional e-mail subscription) and a dashboard
 * of the product's metrics: grants, revocations, issues by kind, run durations and lag.
 */
export class Monitoring extends Construct {
  readonly topic: sns.Topic;
  readonly alarms: cloudwatch.Alarm[] = [];
  readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    const { config } = props;
    const syncPeriod = Duration.minutes(scheduleIntervalMinutes(config.schedules.sync)!);
    const healthPeriod = Duration.minutes(scheduleIntervalMinutes(config.schedules.health)!);

    // CloudWatch can only publish to an encrypted topic through a customer managed key
    // whose policy lets it; the AWS managed SNS key cannot be shared that way.
    const key = new kms.Key(this, 'AlarmTopicKey', {
      description: 'payment-sync: encrypts the alarm topic',
      enableKeyRotation: true,
      removalPolicy: props.removalPolicy,
    });
    key.addToResourcePolicy(
      new iam.PolicyStatement({
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account } },
      }),
    );
    this.topic = new sns.Topic(this, 'AlarmTopic', { displayName: 'payment-sync alarms', masterKey: key, enforceSSL: true });
    if (config.alarms.email) this.topic.addSubscription(new subscriptions.EmailSubscription(config.alarms.email));

    const above = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD;
    const functionErrors = (fn: SyncFunction, what: string) =>
      this.alarm(`${fn.node.id}Errors`, {
        metric: fn.function.metricErrors({ period: Duration.minutes(5) }),
        threshold: 1,
        comparisonOperator: above,
        alarmDescription: `The ${what} function failed (see its log group).`,
      });

    functionErrors(props.stream, 'stream');
    this.alarm('StreamIteratorAge', {
      metric: props.stream.function.metric('IteratorAge', { statistic: cloudwatch.Stats.MAXIMUM, period: Duration.minutes(5) }),
      threshold: config.alarms.iteratorAgeMinutes * 60_000,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      alarmDescription: `Payment changes wait more than ${config.alarms.iteratorAgeMinutes} minutes in the stream: grants are late.`,
    });
    this.alarm('StreamFailures', {
      metric: props.failureQueue.metricApproximateNumberOfMessagesVisible({ statistic: cloudwatch.Stats.MAXIMUM, period: Duration.minutes(5) }),
      threshold: 1,
      comparisonOperator: above,
      alarmDescription: 'Stream batches gave up and landed in the failure queue; the next sync repairs them, but find out why.',
    });
    functionErrors(props.sync, 'sync');
    functionErrors(props.validate, 'validate');
    functionErrors(props.health, 'health');
    for (const machine of props.runMachines) {
      this.alarm(`${machine.node.id}Failed`, {
        metric: machine.metricFailed({ period: Duration.minutes(5) }),
        threshold: 1,
        comparisonOperator: above,
        alarmDescription: `A ${machine.node.id} execution failed: finalize closed the run as failed and released the lock (its summary.json says which state failed).`,
      });
    }

    this.alarm('SyncMissed', {
      metric: productMetric('RunCompleted', { dimensions: { mode: 'cron-sync' }, period: syncPeriod }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      evaluationPeriods: 2,
      // No datapoint at all is exactly the failure this alarm looks for.
      treatMissingData: cloudwatch.TreatMissingData.BREACHING,
      alarmDescription: 'No scheduled sync completed within two sync periods.',
    });
    const kinds = config.alarms.issueKinds;
    this.alarm('IssuesFound', {
      metric: new cloudwatch.MathExpression({
        expression: `SUM([${kinds.map((_, index) => `k${index}`).join(', ')}])`,
        usingMetrics: Object.fromEntries(
          kinds.map((kind, index) => [`k${index}`, productMetric('IssuesFound', { dimensions: { kind }, period: syncPeriod })]),
        ),
        label: `IssuesFound (${kinds.join(', ')})`,
        period: syncPeriod,
      }),
      threshold: config.alarms.issuesThreshold,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      alarmDescription: `Full runs found more than ${config.alarms.issuesThreshold} issues (${kinds.join(', ')}) in one sync period: the real-time path is missing changes.`,
    });
    this.alarm('RunCapped', {
      metric: productMetric('RunCapped', { period: syncPeriod }),
      threshold: 1,
      comparisonOperator: above,
      alarmDescription: 'A run reached its change cap and stopped changing users (a scheduled one set the hold): check the attribute mapping, then run payment-fix by hand.',
    });
    this.alarm('RunHeld', {
      metric: productMetric('RunHeld', { period: syncPeriod }),
      threshold: 1,
      comparisonOperator: above,
      alarmDescription: 'Scheduled fixes only report: a capped run set the hold. Read its report, then release the hold (npm run payment-release-hold, or the sync function with {"releaseHold": true}).',
    });
    this.alarm('Unhealthy', {
      metric: productMetric('HealthStatus', { statistic: cloudwatch.Stats.MAXIMUM, period: healthPeriod }),
      threshold: 2,
      comparisonOperator: above,
      // A health check that stopped reporting is as bad as one reporting unhealthy.
      treatMissingData: cloudwatch.TreatMissingData.BREACHING,
      alarmDescription: 'The health check reports unhealthy (2), or did not report within its period.',
    });

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', { defaultInterval: Duration.days(1) });
    this.addDashboardWidgets(props, syncPeriod);
  }

  /** An alarm on one period (unless told otherwise) that notifies the topic when it fires and when it clears. */
  private alarm(id: string, props: Omit<cloudwatch.AlarmProps, 'evaluationPeriods'> & { evaluationPeriods?: number }): cloudwatch.Alarm {
    const alarm = new cloudwatch.Alarm(this, id, {
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      ...props,
      evaluationPeriods: props.evaluationPeriods ?? 1,
    });
    alarm.addAlarmAction(new SnsAction(this.topic));
    alarm.addOkAction(new SnsAction(this.topic));
    this.alarms.push(alarm);
    return alarm;
  }

  private addDashboardWidgets(props: MonitoringProps, syncPeriod: Duration): void {
    const functions = [props.stream, props.sync, props.validate, props.health];
    const graph = (title: string, left: cloudwatch.IMetric[], extra: Partial<cloudwatch.GraphWidgetProps> = {}) =>
      new cloudwatch.GraphWidget({ title, left, width: 8, height: 6, ...extra });
    const runMetric = (name: string, statistic?: string) => productMetric(name, { period: syncPeriod, ...(statistic && { statistic }) });

    this.dashboard.addWidgets(
      graph('Real time: grants and revocations', ['GrantsApplied', 'RevocationsApplied', 'RevocationsSkippedByPolicy'].map((name) => productMetric(name))),
      graph('Real time: records set aside or retried', ['OrphanPayments', 'MalformedRecords', 'RecordsRejected', 'RecordsFailed'].map((name) => productMetric(name))),
      graph('Lag: payment change to grant', [
        productMetric('ProcessingLagMs', { statistic: cloudwatch.Stats.p(50) }),
        productMetric('ProcessingLagMs', { statistic: cloudwatch.Stats.p(99) }),
        props.stream.function.metric('IteratorAge', { statistic: cloudwatch.Stats.MAXIMUM, period: Duration.minutes(5) }),
      ]),
    );
    this.dashboard.addWidgets(
      graph('Full runs', [
        productMetric('RunCompleted', { dimensions: { mode: 'cron-sync' }, period: syncPeriod }),
        productMetric('RunCompleted', { dimensions: { mode: 'cron-validate' }, period: syncPeriod }),
        runMetric('RunCapped'),
        runMetric('RunHeld'),
        runMetric('RunFailed'),
      ]),
      graph('Full runs: repairs', ['UsersFixed', 'CoursesAdded', 'CoursesRemoved', 'DuplicatesRemoved'].map((name) => runMetric(name))),
      graph('Full runs: duration (ms)', [runMetric('RunDurationMs', cloudwatch.Stats.MAXIMUM)]),
    );
    this.dashboard.addWidgets(
      graph(
        'Issues found by kind',
        ISSUE_KINDS.map((kind) => productMetric('IssuesFound', { dimensions: { kind }, period: syncPeriod })),
        { stacked: true, width: 12 },
      ),
      graph('Health (0 healthy, 1 degraded, 2 unhealthy)', [productMetric('HealthStatus', { statistic: cloudwatch.Stats.MAXIMUM })], {
        leftYAxis: { min: 0, max: 2 },
        width: 6,
      }),
      graph('Stream failure queue', [props.failureQueue.metricApproximateNumberOfMessagesVisible({ statistic: cloudwatch.Stats.MAXIMUM })], {
        width: 6,
      }),
    );
    this.dashboard.addWidgets(
      graph('Function errors', functions.map((fn) => fn.function.metricErrors({ label: fn.node.id })), { width: 12 }),
      graph('Function duration (max)', functions.map((fn) => fn.function.metricDuration({ label: fn.node.id, statistic: cloudwatch.Stats.MAXIMUM })), {
        width: 12,
      }),
    );
    this.dashboard.addWidgets(new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: this.alarms, width: 24 }));
  }
}
