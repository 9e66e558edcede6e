import type { Context } from 'aws-lambda';
import type { SyncDeps } from '../core/deps';
import { runFullReconciliation, type FullRunResult } from '../core/jobs/full-run';
import { LogSink } from '../core/report/log-sink';
import { newRunId, type RunMode } from '../core/report/report';
import { logger } from '../core/observability';
import { publishRunMetrics } from './run-metrics';

/** Time kept back from the Lambda timeout to finish the page in hand, log and flush metrics. */
const BUDGET_MARGIN_MS = 60_000;

/**
 * A full reconciliation inside one invocation, within its time budget. A run that runs out of
 * time ends `incomplete` with a metric; the next scheduled run starts over (grants are idempotent).
 */
export async function runInLambda(deps: SyncDeps, context: Context, mode: RunMode, options: { dryRun: boolean; deep: boolean; scheduled: boolean }): Promise<FullRunResult> {
  const runId = newRunId(mode);
  logger.appendKeys({ runId });
  const deadline = deps.now() + Math.max(0, context.getRemainingTimeInMillis() - BUDGET_MARGIN_MS);
  const result = await runFullReconciliation(
    deps,
    {
      runId,
      mode,
      dryRun: options.dryRun,
      deep: options.deep,
      segments: deps.config.scanSegments,
      concurrency: deps.config.scanSegments,
      maxUserChanges: options.scheduled ? deps.config.maxUserChangesPerRun : undefined,
      deadline,
    },
    new LogSink(logger),
  );
  publishRunMetrics(result);
  if (result.status === 'incomplete') logger.warn('run stopped at its time budget; the next run resumes the work', { result });
  else if (result.capped || result.revocationCapReached) logger.error('run reached its change cap and stopped writing; check the report before raising the cap', { result });
  else logger.info('run finished', { result });
  logger.removeKeys(['runId']);
  return result;
}
