import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Context } from 'aws-lambda';
import type { SyncDeps } from '../core/deps';
import type { FullRunResult } from '../core/jobs/full-run/finalize';
import { runLayout } from '../core/jobs/full-run/layout';
import { runFullReconciliation } from '../core/jobs/full-run/local-run';
import { newRunId, type RunMode } from '../core/report/report';
import { logger } from '../core/observability';
import { FolderStorage } from '../core/storage/folder-storage';
import { publishRunMetrics } from './run-metrics';

/** Time kept back from the Lambda timeout to finish the page in hand, log and flush metrics. */
const BUDGET_MARGIN_MS = 60_000;
/** The function's ephemeral storage holds the run's snapshot and the join's spill files. */
const RUNS_DIR = join(tmpdir(), 'payment-sync-runs');

/**
 * A full reconciliation inside one invocation, within its time budget, on the function's
 * ephemeral storage. A run that runs out of time ends `incomplete` with a metric; the next
 * scheduled run starts over (every stage is idempotent). The run's report lines go to the
 * logs, the audit trail of a run inside Lambda.
 */
export async function runInLambda(deps: SyncDeps, context: Context, mode: RunMode, options: { dryRun: boolean; scheduled: boolean }): Promise<FullRunResult> {
  const runId = newRunId(mode);
  logger.appendKeys({ runId });
  const storage = new FolderStorage(RUNS_DIR);
  const deadline = deps.now() + Math.max(0, context.getRemainingTimeInMillis() - BUDGET_MARGIN_MS);
  try {
    const result = await runFullReconciliation(deps, storage, {
      runId,
      mode,
      dryRun: options.dryRun,
      segments: deps.config.scanSegments,
      buckets: deps.config.joinBuckets,
      maxUserChanges: options.scheduled ? deps.config.maxUserChangesPerRun : undefined,
      deadline,
      tempDirectory: RUNS_DIR,
    });
    const layout = runLayout(runId);
    for (const [report, key] of [['issue', layout.issues], ['change', layout.changes]] as const) {
      for (const line of ((await storage.getText(key)) ?? '').split('\n')) if (line) logger.info(report, { report, ...JSON.parse(line) });
    }
    publishRunMetrics(result);
    if (result.status === 'incomplete') logger.warn('run stopped at its time budget; the next scheduled run starts over', { result });
    else if (result.capped || result.revocationCapReached) logger.error('run reached its change cap and stopped writing; check the report before raising the cap', { result });
    else logger.info('run finished', { result });
    return result;
  } finally {
    await storage.deletePrefix(runId);
    logger.removeKeys(['runId']);
  }
}
