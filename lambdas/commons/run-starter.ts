import { SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import type { SyncConfig } from '../core/config';
import { ConfigError } from '../core/errors';
import { isReadOnlyMode, type RunRequest } from '../core/jobs/full-run/run-request';
import { logger } from '../core/observability';
import { newRunId, type RunMode } from '../core/report/report';
import type { RunRecords, RunTrigger } from '../core/runs/run-records';

/** What an entry point answers when asked for a full run: the execution it started, or why not. */
export type StartAnswer =
  | { readonly status: 'started'; readonly runId: string; readonly mode: RunMode; readonly executionArn: string; readonly held: boolean }
  | { readonly status: 'skipped'; readonly runId: string; readonly mode: RunMode; readonly runningRunId: string; readonly runningSince: string };

export interface StartOptions {
  readonly mode: RunMode;
  readonly trigger: RunTrigger;
  readonly dryRun?: boolean;
  readonly maxUserChanges?: number;
}

/**
 * The entry points' half of a full run: look at the lock and the hold, then start the state
 * machine with the run's request (its name is the run id). Prepare takes the lock for real;
 * this early look answers a schedule at once instead of starting an execution to skip.
 */
export async function startFullRun(sfn: SFNClient, runs: RunRecords, stateMachineArn: string | undefined, options: StartOptions): Promise<StartAnswer> {
  if (!stateMachineArn) throw new ConfigError(['the state machine ARN is not set (SYNC_STATE_MACHINE_ARN / VALIDATION_STATE_MACHINE_ARN; the stack sets them)']);
  const runId = newRunId(options.mode);
  const lock = await runs.readHeldLock();
  if (lock) {
    logger.warn('a full run is in progress: not starting another', { runId, running: lock });
    return { status: 'skipped', runId, mode: options.mode, runningRunId: lock.runId, runningSince: lock.acquiredAt };
  }
  const held = options.trigger === 'schedule' && !isReadOnlyMode(options.mode) && (await runs.readHold()) !== undefined;
  const request: RunRequest = {
    runId,
    mode: options.mode,
    trigger: options.trigger,
    dryRun: options.dryRun ?? false,
    ...(options.maxUserChanges !== undefined ? { maxUserChanges: options.maxUserChanges } : {}),
  };
  const { executionArn } = await sfn.send(new StartExecutionCommand({ stateMachineArn, name: runId, input: JSON.stringify({ run: request }) }));
  logger.info('full run started', { runId, mode: options.mode, trigger: options.trigger, executionArn, held });
  return { status: 'started', runId, mode: options.mode, executionArn: executionArn ?? '', held };
}

export function createSfnClient(config: SyncConfig): SFNClient {
  return new SFNClient({ region: config.region });
}
