import type { SyncDeps } from '../core/deps';
import { reconcileUsers, type UserResult } from '../core/jobs/user-reconcile';
import { newRunId, type RunMode } from '../core/report/report';
import { logger } from '../core/observability';

/** The answer to a manual per-user invoke: the contract's per-user objects, under the run's id. */
export interface ManualAnswer {
  readonly runId: string;
  readonly dryRun: boolean;
  readonly results: readonly UserResult[];
}

/** Reconciles the named users; every write is logged with its before and after list. */
export async function answerUsers(deps: SyncDeps, userIds: readonly string[], dryRun: boolean, mode: RunMode): Promise<ManualAnswer> {
  const runId = newRunId(mode);
  const outcomes = await reconcileUsers(deps, userIds, { dryRun, runId });
  for (const { change } of outcomes) if (change) logger.info('change', { report: 'change', ...change });
  return { runId, dryRun, results: outcomes.map(({ result }) => result) };
}
