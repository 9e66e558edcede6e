import { scanSegmentTurn, type ScanTurn } from '../core/jobs/full-run/snapshot-tasks';
import { createRunTaskContext, taskHandler } from './task-context';

const context = createRunTaskContext();

/** One turn of a scan worker: pages until the segment ends or the invocation's time runs short. */
export const handler = taskHandler((input: ScanTurn, lambda) => scanSegmentTurn(context, input, { remainingMs: lambda.getRemainingTimeInMillis() }));
