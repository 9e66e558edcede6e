import { planBucketTask, type PlanTaskInput } from '../core/jobs/full-run/plan-bucket';
import { createRunTaskContext, taskHandler } from './task-context';

const context = createRunTaskContext();

/** Join and plan one bucket in DuckDB; its data files are downloaded to /tmp and removed after. */
export const handler = taskHandler(async (input: PlanTaskInput) => {
  try {
    return await planBucketTask(context, input);
  } finally {
    await context.storage.clearDownloads();
  }
});
