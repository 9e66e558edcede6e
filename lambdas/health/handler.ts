import { CloudWatchClient, GetMetricStatisticsCommand } from '@aws-sdk/client-cloudwatch';
import { GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';
import { loadConfig } from '../core/config';
import { createSyncDeps } from '../core/deps';
import { checkHealth, type CompletedRunsReader, type HealthReport, type HealthStatus, type QueueDepthReader } from '../core/jobs/health';
import { logger, metrics, METRICS_NAMESPACE, SERVICE_NAME } from '../core/observability';
import { RUN_COMPLETED_METRIC } from '../commons/run-metrics';

const deps = createSyncDeps(loadConfig());
const failureQueueUrl = process.env.FAILURE_QUEUE_URL?.trim() || undefined;

function queueDepthReader(sqs: SQSClient, queueUrl: string): QueueDepthReader {
  return async () => {
    const answer = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages'] }));
    return Number(answer.Attributes?.ApproximateNumberOfMessages ?? 0);
  };
}

const failureQueueDepth = failureQueueUrl ? queueDepthReader(new SQSClient({ region: deps.config.region }), failureQueueUrl) : undefined;

/** Sum of `RunCompleted{mode=cron-sync}` over the window: the metric the missed-sync alarm watches. */
function completedSyncsReader(cloudwatch: CloudWatchClient): CompletedRunsReader {
  return async (minutes) => {
    const end = new Date();
    const answer = await cloudwatch.send(
      new GetMetricStatisticsCommand({
        Namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? METRICS_NAMESPACE,
        MetricName: RUN_COMPLETED_METRIC,
        Dimensions: [
          { Name: 'service', Value: process.env.POWERTOOLS_SERVICE_NAME ?? SERVICE_NAME },
          { Name: 'mode', Value: 'cron-sync' },
        ],
        StartTime: new Date(end.getTime() - minutes * 60_000),
        EndTime: end,
        Period: minutes * 60,
        Statistics: ['Sum'],
      }),
    );
    return (answer.Datapoints ?? []).reduce((sum, point) => sum + (point.Sum ?? 0), 0);
  };
}

const syncIntervalMinutes = Number(process.env.SYNC_INTERVAL_MINUTES ?? '');
const completedSyncs =
  Number.isInteger(syncIntervalMinutes) && syncIntervalMinutes > 0
    ? { read: completedSyncsReader(new CloudWatchClient({ region: deps.config.region })), intervalMinutes: syncIntervalMinutes }
    : undefined;

const STATUS_VALUE: Record<HealthStatus, number> = { healthy: 0, degraded: 1, unhealthy: 2 };

/** Any event → `{ status, checks }`; the `HealthStatus` metric feeds an alarm. */
export const handler = async (_event: unknown, context: Context): Promise<HealthReport> => {
  logger.addContext(context);
  const report = await checkHealth(deps, { expectStream: true, failureQueueDepth, completedSyncs });
  metrics.addMetric('HealthStatus', MetricUnit.Count, STATUS_VALUE[report.status]);
  metrics.publishStoredMetrics();
  (report.status === 'healthy' ? logger.info : logger.warn).call(logger, 'health', { ...report });
  return report;
};
