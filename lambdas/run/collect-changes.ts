import { collectChanges, type CollectTaskInput } from '../core/jobs/full-run/collect-changes';
import { createRunTaskContext, taskHandler } from './task-context';

const context = createRunTaskContext();

/** The hourly sync's candidates: users the window's writes touched, and a later validation's unfixed findings. */
export const handler = taskHandler((input: CollectTaskInput) => collectChanges(context, input));
