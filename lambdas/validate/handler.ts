import type { Context } from 'aws-lambda';
import { loadConfig } from '../core/config';
import { createSyncDeps } from '../core/deps';
import { reconcileUsers, type UserResult } from '../core/jobs/user-reconcile';
import type { FullRunResult } from '../core/jobs/full-run';
import { newRunId } from '../core/report/report';
import { logger, metrics } from '../core/observability';
import { isScheduledEvent, ManualValidateEventSchema, parseEvent } from '../commons/events';
import { runInLambda } from '../commons/scheduled-run';

const deps = createSyncDeps(loadConfig());

export interface ManualValidateAnswer {
  readonly runId: string;
  readonly dryRun: true;
  readonly results: readonly UserResult[];
}

/**
 * Read-only by construction (every path is a dry run) and by its IAM role. Manual
 * `{ userIds?, deep? }`: the named users, or a full validation; a schedule: the daily one.
 */
export const handler = async (event: unknown, context: Context): Promise<ManualValidateAnswer | FullRunResult> => {
  logger.addContext(context);
  try {
    if (isScheduledEvent(event)) return await runInLambda(deps, context, 'cron-validate', { dryRun: true, deep: false, scheduled: true });
    const request = parseEvent(ManualValidateEventSchema, event);
    if (!request.userIds) return await runInLambda(deps, context, 'validate', { dryRun: true, deep: request.deep ?? false, scheduled: false });
    const runId = newRunId('validate');
    const outcomes = await reconcileUsers(deps, request.userIds, { dryRun: true, runId });
    return { runId, dryRun: true, results: outcomes.map(({ result }) => result) };
  } finally {
    metrics.publishStoredMetrics();
  }
};
