import type { Context } from 'aws-lambda';
import { loadConfig } from '../core/config';
import { createSyncDeps } from '../core/deps';
import { reconcileUsers, type UserResult } from '../core/jobs/user-reconcile';
import type { FullRunResult } from '../core/jobs/full-run';
import { newRunId } from '../core/report/report';
import { logger, metrics } from '../core/observability';
import { isScheduledEvent, ManualSyncEventSchema, parseEvent } from '../commons/events';
import { runInLambda } from '../commons/scheduled-run';

const deps = createSyncDeps(loadConfig());

export interface ManualSyncAnswer {
  readonly runId: string;
  readonly dryRun: boolean;
  readonly results: readonly UserResult[];
}

/** Manual `{ userIds, dryRun? }` → per-user answers; an EventBridge schedule → the hourly full sync. */
export const handler = async (event: unknown, context: Context): Promise<ManualSyncAnswer | FullRunResult> => {
  logger.addContext(context);
  try {
    if (isScheduledEvent(event)) return await runInLambda(deps, context, 'cron-sync', { dryRun: false, deep: false, scheduled: true });
    const request = parseEvent(ManualSyncEventSchema, event);
    const runId = newRunId('fix');
    const dryRun = request.dryRun ?? false;
    const outcomes = await reconcileUsers(deps, request.userIds, { dryRun, runId });
    for (const { change } of outcomes) if (change) logger.info('change', { report: 'change', ...change });
    return { runId, dryRun, results: outcomes.map(({ result }) => result) };
  } finally {
    metrics.publishStoredMetrics();
  }
};
