import { Duration, Validations } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { DynamoEventSource, SqsDlq } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { STREAM_EVENT_SOURCE_SETTINGS as SETTINGS } from '../../lambdas/stream/event-source-settings';
import { streamFilterPatterns } from '../../lambdas/stream/filter-criteria';
import type { DeployConfig } from '../config';
import type { PaymentTables } from './payment-tables';
import { SyncFunction, type SharedFunctionProps } from './sync-function';

export interface RealtimeSyncProps {
  readonly config: DeployConfig;
  readonly tables: PaymentTables;
  readonly functionDefaults: SharedFunctionProps;
}

/**
 * Real-time grants and revocations: the payments table's stream feeds the stream function.
 * Batches that keep failing (after bisecting, bounded retries, or when records grow too
 * old) are recorded in an encrypted failure queue; the hourly sync repairs what they missed.
 */
export class RealtimeSync extends Construct {
  readonly handler: SyncFunction;
  readonly failureQueue: sqs.Queue;

  constructor(scope: Construct, id: string, props: RealtimeSyncProps) {
    super(scope, id);
    const { config, tables } = props;

    this.failureQueue = new sqs.Queue(this, 'FailureQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    Validations.of(this.failureQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason: 'This queue is itself the dead end: the on-failure destination of the stream mapping, alarmed on and read by operators.',
    });

    this.handler = new SyncFunction(this, 'StreamFunction', {
      ...props.functionDefaults,
      handler: 'stream',
      description: 'payment-sync: grants and revokes courses as payments change (DynamoDB stream)',
      memorySize: 512,
      timeout: Duration.minutes(1),
    });
    tables.grantPaymentsByUserQuery(this.handler.role);
    tables.grantUserGet(this.handler.role);
    tables.grantUserCoursesUpdate(this.handler.role);

    // Only changes that can grant or revoke reach the function (filters defined by the stream code).
    const filters = streamFilterPatterns(config.statuses.paid, config.statuses.revoked, config.attributes.paymentStatus).map(
      (pattern) => lambda.FilterCriteria.filter(pattern),
    );
    // The settings are shared with the local stream delivery, so local tests run what deploys.
    this.handler.function.addEventSource(
      new DynamoEventSource(tables.payments, {
        // Nothing the stream still holds is skipped, also on the first deploy (grants are idempotent).
        startingPosition: lambda.StartingPosition.TRIM_HORIZON,
        batchSize: SETTINGS.batchSize,
        maxBatchingWindow: Duration.seconds(SETTINGS.maximumBatchingWindowInSeconds),
        reportBatchItemFailures: SETTINGS.reportBatchItemFailures,
        bisectBatchOnError: SETTINGS.bisectBatchOnFunctionError,
        retryAttempts: SETTINGS.maximumRetryAttempts,
        maxRecordAge: Duration.seconds(SETTINGS.maximumRecordAgeInSeconds),
        onFailure: new SqsDlq(this.failureQueue),
        filters,
      }),
    );
    Validations.of(this.handler.role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: 'dynamodb:ListStreams has no resource-level permissions; granted by the stream event source. Stream reads are limited to the payments stream.',
    });
  }
}
