import { CfnOutput, RemovalPolicy, Stack, type StackProps, Tags } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { lambdaEnvironment, type DeployConfig } from './config';
import { HealthCheck } from './constructs/health-check';
import { Monitoring } from './constructs/monitoring';
import { PaymentTables } from './constructs/payment-tables';
import { RealtimeSync } from './constructs/realtime-sync';
import { Reconciliation } from './constructs/reconciliation';
import type { SharedFunctionProps } from './constructs/sync-function';

export interface PaymentSyncStackProps extends StackProps {
  readonly config: DeployConfig;
}

/** payment-sync for one stage: tables (imported or created), real-time path, full runs, health, monitoring. */
export class PaymentSyncStack extends Stack {
  readonly tables: PaymentTables;
  readonly realtime: RealtimeSync;
  readonly reconciliation: Reconciliation;
  readonly health: HealthCheck;
  readonly monitoring: Monitoring;

  constructor(scope: Construct, id: string, props: PaymentSyncStackProps) {
    super(scope, id, props);
    const { config } = props;
    Tags.of(this).add('project', 'payment-sync');
    Tags.of(this).add('stage', config.stage);

    // A dev stack cleans up after itself; prod keeps its audit logs and keys.
    const disposable = config.stage === 'prod' ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;
    this.tables = new PaymentTables(this, 'Tables', config);
    const functionDefaults: SharedFunctionProps = {
      environment: lambdaEnvironment(config, this.tables.names),
      logRetention: config.logging.retentionDays,
      logRemovalPolicy: disposable,
    };

    this.realtime = new RealtimeSync(this, 'Realtime', { config, tables: this.tables, functionDefaults });
    this.reconciliation = new Reconciliation(this, 'Reconciliation', { config, tables: this.tables, functionDefaults, removalPolicy: disposable, failureQueue: this.realtime.failureQueue });
    this.health = new HealthCheck(this, 'Health', {
      config,
      tables: this.tables,
      failureQueue: this.realtime.failureQueue,
      runTable: this.reconciliation.runTable,
      functionDefaults,
    });
    this.monitoring = new Monitoring(this, 'Monitoring', {
      config,
      stream: this.realtime.handler,
      failureQueue: this.realtime.failureQueue,
      sync: this.reconciliation.sync,
      validate: this.reconciliation.validate,
      runMachines: [this.reconciliation.syncRun, this.reconciliation.validationRun],
      health: this.health.handler,
      removalPolicy: disposable,
    });

    // What operators need by name: DEPLOY.md reads these with `aws cloudformation describe-stacks`.
    const outputs: Record<string, [string, string]> = {
      StreamFunctionName: [this.realtime.handler.function.functionName, 'Stream Lambda (real-time grants and revocations)'],
      SyncFunctionName: [this.reconciliation.sync.function.functionName, 'Invoke with {"userIds":[...],"dryRun":true|false}, {"run":"fix"}, {"undo":"<run id>"} or {"releaseHold":true}'],
      ValidateFunctionName: [this.reconciliation.validate.function.functionName, 'Invoke with {"userIds":[...]} or {} (a validation run; read-only)'],
      SyncRunStateMachineArn: [this.reconciliation.syncRun.stateMachineArn, 'Full sync runs (start-execution input: {"run":{...}})'],
      ValidationRunStateMachineArn: [this.reconciliation.validationRun.stateMachineArn, 'Full validation runs (read-only)'],
      ReportsBucketName: [this.reconciliation.reports.bucketName, 'Run reports under runs/<run id>/'],
      RunTableName: [this.reconciliation.runTable.tableName, 'Run records, the run lock and the hold'],
      HealthFunctionName: [this.health.handler.function.functionName, 'Invoke with {}'],
      FailureQueueUrl: [this.realtime.failureQueue.queueUrl, 'Stream batches that could not be processed'],
      AlarmTopicArn: [this.monitoring.topic.topicArn, 'Subscribe more endpoints here'],
      DashboardName: [this.monitoring.dashboard.dashboardName, 'CloudWatch dashboard'],
      PaymentsTableName: [this.tables.payments.tableName, 'Payments table in use'],
      UsersTableName: [this.tables.users.tableName, 'Users table in use'],
    };
    for (const [id, [value, description]] of Object.entries(outputs)) new CfnOutput(this, id, { value, description });
  }
}
