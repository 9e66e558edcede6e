import { Duration, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { healthEnvironment, type DeployConfig } from '../config';
import type { PaymentTables } from './payment-tables';
import { SyncFunction, type SharedFunctionProps } from './sync-function';

export interface HealthCheckProps {
  readonly config: DeployConfig;
  readonly tables: PaymentTables;
  readonly failureQueue: sqs.IQueue;
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
      environment: healthEnvironment(config, tables.names, failureQueue.queueUrl),
      handler: 'health',
      description: 'payment-sync: health check (tables, stream failures, recent runs)',
      memorySize: 256,
      timeout: Duration.seconds(30),
    });
    const role = this.handler.role;
    tables.grantDescribe(role);
    failureQueue.grant(role, 'sqs:GetQueueAttributes');
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ReadMetrics',
        actions: ['cloudwatch:GetMetricData', 'cloudwatch:GetMetricStatistics'],
        resources: ['*'],
      }),
    );
    Validations.of(role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: 'cloudwatch:GetMetricData and GetMetricStatistics support no resource-level permissions; read-only metric access.',
    });

    this.handler.addSchedule('Schedule', {
      expression: config.schedules.health,
      timeZone: config.schedules.timeZone,
      description: 'payment-sync: periodic health check',
    });
  }
}
