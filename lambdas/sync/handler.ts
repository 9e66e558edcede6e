import type { Context } from 'aws-lambda';
import { loadConfig } from '../core/config';
import { createSyncDeps } from '../core/deps';
import type { FullRunResult } from '../core/jobs/full-run/finalize';
import { logger, metrics } from '../core/observability';
import { isScheduledEvent, ManualSyncEventSchema, parseEvent } from '../commons/events';
import { answerUsers, type ManualAnswer } from '../commons/manual-run';
import { runInLambda } from '../commons/scheduled-run';

const deps = createSyncDeps(loadConfig());

/** Manual `{ userIds, dryRun? }` → per-user answers; a schedule → the hourly full sync. */
export const handler = async (event: unknown, context: Context): Promise<ManualAnswer | FullRunResult> => {
  logger.addContext(context);
  try {
    if (isScheduledEvent(event)) return await runInLambda(deps, context, 'cron-sync', { dryRun: false, scheduled: true });
    const request = parseEvent(ManualSyncEventSchema, event);
    return await answerUsers(deps, request.userIds, request.dryRun ?? false, 'fix');
  } finally {
    metrics.publishStoredMetrics();
  }
};
