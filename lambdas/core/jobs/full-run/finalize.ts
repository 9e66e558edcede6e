import { emptyCounts, emptyIssueCounts, type RunCounts, type RunMode, type RunSummary } from '../../report/report';
import { ISSUE_KINDS } from '../../rules/plan';
import type { RunStorage } from '../../storage/run-storage';
import type { PlanBucketResult } from './plan-bucket';
import type { RepairResult } from './repair-batch';
import { runLayout, type ReportKind } from './layout';

/** `incomplete`: a time budget ran out before the run planned every user. */
export type RunStatus = 'completed' | 'incomplete';

/** The `--json` summary of a full run: the contract's keys and the full run's own. */
export interface FullRunResult extends RunSummary {
  readonly status: RunStatus;
  /** The change cap stopped the run's writes; what it did not fix is in the report. */
  readonly capped: boolean;
  readonly revocationCapReached: boolean;
  /** Payments changed within the grace window, left to the stream. */
  readonly inFlight: number;
  /** Read capacity the snapshot consumed (0 for an export). */
  readonly consumedCapacity: number;
  /** When the snapshot was taken: what a validation's findings describe. */
  readonly snapshotAt: string;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly durationMs: number;
}

export interface FinalizeTask {
  readonly runId: string;
  readonly mode: RunMode;
  readonly folder: string;
  readonly dryRun: boolean;
  readonly status: RunStatus;
  readonly consumedCapacity: number;
  readonly snapshotAt: number;
  readonly startedAt: number;
  readonly finishedAt: number;
  readonly plans: readonly PlanBucketResult[];
  readonly repairs: readonly RepairResult[];
}

/** The run's figures from its stages' answers. */
export function summarize(task: FinalizeTask): FullRunResult {
  const counts: RunCounts = emptyCounts();
  const issues = emptyIssueCounts();
  let inFlight = 0;
  for (const plan of task.plans) {
    counts.paymentsScanned += plan.paymentsScanned;
    counts.usersScanned += plan.usersScanned;
    inFlight += plan.inFlight;
    for (const kind of ISSUE_KINDS) issues[kind] += plan.issues[kind];
  }
  for (const repair of task.repairs) {
    counts.usersFixed += repair.usersFixed;
    counts.coursesAdded += repair.coursesAdded;
    counts.coursesRemoved += repair.coursesRemoved;
    counts.duplicatesRemoved += repair.duplicatesRemoved;
    for (const kind of ISSUE_KINDS) issues[kind] += repair.issues[kind];
  }
  return {
    runId: task.runId,
    mode: task.mode,
    dryRun: task.dryRun,
    counts,
    issues,
    status: task.status,
    capped: task.repairs.some((repair) => repair.capped),
    revocationCapReached: task.repairs.some((repair) => repair.revocationCapReached),
    inFlight,
    consumedCapacity: task.consumedCapacity,
    snapshotAt: new Date(task.snapshotAt).toISOString(),
    startedAt: new Date(task.startedAt).toISOString(),
    finishedAt: new Date(task.finishedAt).toISOString(),
    durationMs: task.finishedAt - task.startedAt,
  };
}

async function assemble(storage: RunStorage, partKeys: readonly string[], kind: ReportKind, target: string): Promise<void> {
  const texts: string[] = [];
  for (const key of partKeys.filter((part) => part.includes(`.${kind}.`))) texts.push((await storage.getText(key)) ?? '');
  await storage.put(target, texts.join(''));
}

/**
 * Finalize: the stages' report parts become the run's `issues.jsonl` and `changes.jsonl`, then
 * `summary.json` is written last, so a folder with a summary is a finished report.
 */
export async function finalizeRun(storage: RunStorage, task: FinalizeTask): Promise<FullRunResult> {
  const layout = runLayout(task.folder);
  const partKeys = await storage.list(layout.parts);
  await assemble(storage, partKeys, 'issues', layout.issues);
  await assemble(storage, partKeys, 'changes', layout.changes);
  await storage.deletePrefix(layout.parts);
  const summary = summarize(task);
  await storage.put(layout.summary, `${JSON.stringify(summary, null, 2)}\n`);
  return summary;
}
