import { Duration, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { healthEnvironment, type DeployConfig } from '../config';
import type { PaymentTables } from './payment-tables';
import { SyncFunction, type SharedFunctionProps } from './sync-function';

export interface HealthCheckProps {
  readonly config: DeployConfig;
  readonly tables: PaymentTables;
  readonly failureQueue: sqs.IQueue;
  /** The run records health reads (last sync, last validation, lock, hold). */
  readonly runTable: dynamodb.ITable;
  readonly functionDefaults: SharedFunctionProps;
}

/**
 * The health function, on demand and on a schedule: describes both tables, looks at the
 * stream's failure queue and reads recent metrics; its HealthStatus metric feeds an alarm.
 */
export class HealthCheck extends Construct {
  readonly handler: SyncFunction;

  constructor(scope: Construct, id: string, props: HealthCheckProps) {
    super(scope, id);
    const { config, tables, failureQueue } = props;

    this.handler = new SyncFunction(this, 'HealthFunction', {
      ...props.functionDefaults,
      environment: healthEnvironment(config, tables.names, failureQueue.queueUrl, props.runTable.tableName),
      handler: 'health',
      description: 'payment-sync: health check (tables, stream failures, recent runs)',
      memorySize: 256,
      timeout: Duration.seconds(30),
    });
    const role = this.handler.role;
    tables.grantDescribe(role);
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({ sid: 'PointInTimeRecovery', actions: ['dynamodb:DescribeContinuousBackups'], resources: [tables.payments.tableArn, tables.users.tableArn] }),
    );
    role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'ReadRunRecords', actions: ['dynamodb:GetItem'], resources: [props.runTable.tableArn] }));
    failureQueue.grant(role, 'sqs:GetQueueAttributes');
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ReadMetrics',
        actions: ['cloudwatch:GetMetricStatistics'],
        resources: ['*'],
      }),
    );
    Validations.of(role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: 'cloudwatch:GetMetricStatistics supports no resource-level permissions; read-only metric access (the stream\'s processing lag).',
    });

    this.handler.addSchedule('Schedule', {
      expression: config.schedules.health,
      timeZone: config.schedules.timeZone,
      description: 'payment-sync: periodic health check',
    });
  }
}
