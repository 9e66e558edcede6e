import { finishSnapshot, type SnapshotTaskInput } from '../core/jobs/full-run/snapshot-tasks';
import { createRunTaskContext, taskHandler } from './task-context';

const context = createRunTaskContext();

/** The snapshot's manifests (a scan's) or keys (an export's). */
export const handler = taskHandler((input: SnapshotTaskInput) => finishSnapshot(context, input));
