import type { Context } from 'aws-lambda';
import { loadConfig } from '../core/config';
import { createSyncDeps } from '../core/deps';
import type { FullRunResult } from '../core/jobs/full-run/finalize';
import { logger, metrics } from '../core/observability';
import { isScheduledEvent, ManualValidateEventSchema, parseEvent } from '../commons/events';
import { answerUsers, type ManualAnswer } from '../commons/manual-run';
import { runInLambda } from '../commons/scheduled-run';

const deps = createSyncDeps(loadConfig());

/**
 * Read-only by construction (every path is a dry run) and by its IAM role. Manual
 * `{ userIds?, deep? }`: the named users, or a full validation; a schedule: the daily one.
 */
export const handler = async (event: unknown, context: Context): Promise<ManualAnswer | FullRunResult> => {
  logger.addContext(context);
  try {
    if (isScheduledEvent(event)) return await runInLambda(deps, context, 'cron-validate', { dryRun: true, scheduled: true });
    const request = parseEvent(ManualValidateEventSchema, event);
    if (!request.userIds) return await runInLambda(deps, context, 'validate', { dryRun: true, scheduled: false });
    return await answerUsers(deps, request.userIds, true, 'validate');
  } finally {
    metrics.publishStoredMetrics();
  }
};
