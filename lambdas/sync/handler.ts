import { S3Client } from '@aws-sdk/client-s3';
import type { Context } from 'aws-lambda';
import { loadConfig } from '../core/config';
import { createSyncDeps } from '../core/deps';
import { ConfigError } from '../core/errors';
import { runFolderKey } from '../core/jobs/full-run/layout';
import { undoRun, type UndoResult } from '../core/jobs/undo';
import { logger, metrics } from '../core/observability';
import { RunRecords, type RunHold } from '../core/runs/run-records';
import { S3Storage } from '../core/storage/s3-storage';
import {
  isScheduledEvent,
  ManualRunEventSchema,
  ManualSyncEventSchema,
  ManualUndoEventSchema,
  parseEvent,
  ReleaseHoldEventSchema,
  ScheduleInputSchema,
} from '../commons/events';
import { answerUsers, type ManualAnswer } from '../commons/manual-run';
import { createSfnClient, startFullRun, type StartAnswer } from '../commons/run-starter';

const config = loadConfig();
const deps = createSyncDeps(config);
const runs = new RunRecords(deps.client, config.runsTable);
const sfn = createSfnClient(config);
const s3 = new S3Client({ region: config.region });

type SyncAnswer = ManualAnswer | StartAnswer | UndoResult | { readonly released: RunHold | null };

async function undo(event: unknown): Promise<UndoResult> {
  const request = parseEvent(ManualUndoEventSchema, event);
  if (!config.reportsBucket) throw new ConfigError(['REPORTS_BUCKET is required to undo a run (its change log is there)']);
  const storage = new S3Storage(s3, config.reportsBucket);
  return undoRun(deps, storage, { folder: runFolderKey(storage, request.undo), runId: request.undo, dryRun: request.dryRun ?? false });
}

/**
 * The sync entry point. A schedule starts the hourly sync (or, with `{ "scheduled":
 * "weekly-fix" }`, the weekly full fix) as a state machine run; by hand: `{ userIds, dryRun? }`
 * fixes those users now, `{ run, dryRun?, maxChanges? }` starts a full run, `{ undo, dryRun? }`
 * undoes a run, `{ releaseHold: true }` lifts the hold a capped scheduled run set.
 */
export const handler = async (event: unknown, context: Context): Promise<SyncAnswer> => {
  logger.addContext(context);
  try {
    if (isScheduledEvent(event)) return await startFullRun(sfn, runs, config.syncStateMachineArn, { mode: 'cron-sync', trigger: 'schedule' });
    const fields = typeof event === 'object' && event !== null ? event : {};
    if ('scheduled' in fields) {
      parseEvent(ScheduleInputSchema, event);
      return await startFullRun(sfn, runs, config.syncStateMachineArn, { mode: 'fix', trigger: 'schedule' });
    }
    if ('run' in fields) {
      const request = parseEvent(ManualRunEventSchema, event);
      return await startFullRun(sfn, runs, config.syncStateMachineArn, { mode: request.run, trigger: 'manual', dryRun: request.dryRun, maxUserChanges: request.maxChanges });
    }
    if ('undo' in fields) return await undo(event);
    if ('releaseHold' in fields) {
      parseEvent(ReleaseHoldEventSchema, event);
      const released = (await runs.releaseHold()) ?? null;
      logger.info(released ? 'hold released: scheduled fixes write again' : 'no hold was in force', { released });
      return { released };
    }
    const request = parseEvent(ManualSyncEventSchema, event);
    return await answerUsers(deps, request.userIds, request.dryRun ?? false, 'fix');
  } finally {
    metrics.publishStoredMetrics();
  }
};
