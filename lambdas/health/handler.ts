import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';
import { loadConfig } from '../core/config';
import { createSyncDeps } from '../core/deps';
import { checkHealth, createHealthReaders, HEALTH_STATUS_VALUE, type HealthReport } from '../core/jobs/health';
import { logger, metrics } from '../core/observability';

// The environment is read here once, by loadConfig: a bad SYNC_INTERVAL_MINUTES or FAILURE_QUEUE_URL fails the cold start.
const config = loadConfig();
const deps = createSyncDeps(config);
const { readers } = createHealthReaders(config);

/** Any event → `{ status, checks }`; the `HealthStatus` metric (0 healthy, 1 degraded, 2 unhealthy) feeds the `Unhealthy` alarm. */
export const handler = async (_event: unknown, context: Context): Promise<HealthReport> => {
  logger.addContext(context);
  const report = await checkHealth(deps, { expectStream: true, ...readers });
  metrics.addMetric('HealthStatus', MetricUnit.Count, HEALTH_STATUS_VALUE[report.status]);
  metrics.publishStoredMetrics();
  (report.status === 'healthy' ? logger.info : logger.warn).call(logger, 'health', { ...report });
  return report;
};
