import { GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';
import { loadConfig } from '../core/config';
import { createSyncDeps } from '../core/deps';
import { checkHealth, type HealthReport, type HealthStatus, type QueueDepthReader } from '../core/jobs/health';
import { logger, metrics } from '../core/observability';

const deps = createSyncDeps(loadConfig());
const failureQueueUrl = process.env.FAILURE_QUEUE_URL?.trim() || undefined;

function queueDepthReader(sqs: SQSClient, queueUrl: string): QueueDepthReader {
  return async () => {
    const answer = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages'] }));
    return Number(answer.Attributes?.ApproximateNumberOfMessages ?? 0);
  };
}

const failureQueueDepth = failureQueueUrl ? queueDepthReader(new SQSClient({ region: deps.config.region }), failureQueueUrl) : undefined;

const STATUS_VALUE: Record<HealthStatus, number> = { healthy: 0, degraded: 1, unhealthy: 2 };

/** Any event → `{ status, checks }`; the `HealthStatus` metric feeds an alarm. */
export const handler = async (_event: unknown, context: Context): Promise<HealthReport> => {
  logger.addContext(context);
  const report = await checkHealth(deps, { expectStream: true, failureQueueDepth });
  metrics.addMetric('HealthStatus', MetricUnit.Count, STATUS_VALUE[report.status]);
  metrics.publishStoredMetrics();
  (report.status === 'healthy' ? logger.info : logger.warn).call(logger, 'health', { ...report });
  return report;
};
