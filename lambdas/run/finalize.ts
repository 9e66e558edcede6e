import { publishRunMetrics } from '../commons/run-metrics';
import { finalizeRun, type FinalizeInput } from '../core/jobs/full-run/finalize';
import { logger } from '../core/observability';
import { createRunTaskContext, taskHandler } from './task-context';

const context = createRunTaskContext();

/** Finalize: report, summary, run record, hold, lock released, metrics; every run ends here. */
export const handler = taskHandler(async (input: FinalizeInput & { run: { runId: string } }) => {
  const result = await finalizeRun(context, input);
  publishRunMetrics(result);
  if (result.status === 'failed') logger.error('run failed; the lock is released and the next run starts over', { result });
  else if (result.capped || result.revocationCapReached) {
    logger.error(result.trigger === 'schedule' ? 'run reached its cap and stopped writing; scheduled fixes are held until a person releases the hold' : 'run reached its cap and stopped writing', { result });
  }
  else logger.info('run finished', { result });
  return result;
});
