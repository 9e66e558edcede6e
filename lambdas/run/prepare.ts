import { prepareRun } from '../core/jobs/full-run/prepare';
import { createRunTaskContext, taskHandler } from './task-context';

const context = createRunTaskContext();

/** Prepare: lock, hold, run record, backup before a migration; `{ run }` → the run's state or `skipped`. */
export const handler = taskHandler((input: { run: { runId: string } }) => prepareRun(context, input));
