import type { Context } from 'aws-lambda';
import { loadConfig } from '../core/config';
import { createSyncDeps } from '../core/deps';
import { logger, metrics } from '../core/observability';
import { RunRecords } from '../core/runs/run-records';
import { isScheduledEvent, ManualValidateEventSchema, parseEvent } from '../commons/events';
import { answerUsers, type ManualAnswer } from '../commons/manual-run';
import { createSfnClient, startFullRun, type StartAnswer } from '../commons/run-starter';

const config = loadConfig();
const deps = createSyncDeps(config);
const runs = new RunRecords(deps.client, config.runsTable);
const sfn = createSfnClient(config);

/**
 * Read-only by construction (every path is a dry run) and by its IAM role, which may start the
 * validation state machine only. Manual `{ userIds?, deep? }`: the named users now, or a full
 * validation run; a schedule: the daily one.
 */
export const handler = async (event: unknown, context: Context): Promise<ManualAnswer | StartAnswer> => {
  logger.addContext(context);
  try {
    if (isScheduledEvent(event)) return await startFullRun(sfn, runs, config.validationStateMachineArn, { mode: 'cron-validate', trigger: 'schedule' });
    const request = parseEvent(ManualValidateEventSchema, event);
    if (!request.userIds) return await startFullRun(sfn, runs, config.validationStateMachineArn, { mode: 'validate', trigger: 'manual', dryRun: true });
    return await answerUsers(deps, request.userIds, true, 'validate');
  } finally {
    metrics.publishStoredMetrics();
  }
};
