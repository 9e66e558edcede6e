import { repairBatchTask, type RepairTaskInput } from '../core/jobs/full-run/repair-batch';
import { createRunTaskContext, taskHandler } from './task-context';

const context = createRunTaskContext();

/** Confirm and repair one candidate file through the per-user reconcile. The only run task that writes users. */
export const handler = taskHandler((input: RepairTaskInput) => repairBatchTask(context, input));
