import { emptyCounts, emptyIssueCounts, type RunCounts, type RunSummary } from '../../report/report';
import { ISSUE_KINDS } from '../../rules/plan';
import type { RunStorage } from '../../storage/run-storage';
import type { PlanBucketResult } from './plan-result';
import type { RepairResult } from './repair-batch';
import { runFolderKey, runLayout, type ReportKind } from './layout';
import type { SyncDeps } from '../../deps';
import type { BackupReceipt } from '../../store/users-backup';
import type { RunStatus, RunTrigger } from '../../runs/run-records';
import type { CandidateSources, CollectResult } from './collect-changes';
import { parseRunRequest, type CaughtError, type ChangeWindow, type PreparedRun, type RunRequest, type RunTaskContext } from './run-request';
import type { SnapshotResult } from './snapshot-tasks';

/** How a full run ended: finalize closes every run, a failed one too. */
export type FinalStatus = Extract<RunStatus, 'completed' | 'failed'>;

/** The `--json` summary of a full run: the contract's keys and the full run's own. */
export interface FullRunResult extends RunSummary {
  readonly status: FinalStatus;
  readonly trigger: RunTrigger;
  /** The change cap stopped the run's writes; what it did not fix is in the report. */
  readonly capped: boolean;
  readonly revocationCapReached: boolean;
  /** A hold made this scheduled fix report-only. */
  readonly held: boolean;
  /** Payments changed within the grace window, left to the stream. */
  readonly inFlight: number;
  /** Read capacity the snapshot consumed (0 for an export). */
  readonly consumedCapacity: number;
  /** When the snapshot was taken: what a validation's findings describe. */
  readonly snapshotAt: string;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly durationMs: number;
  /** Why a failed run failed: the failing state's error. */
  readonly error?: string;
  /** An hourly sync that read only what changed: its window and where its candidates came from. */
  readonly changes?: CandidateSources & {
    readonly from: string;
    readonly to: string;
    readonly sinceRunId: string;
    readonly validationRunId: string | null;
    readonly candidates: number;
  };
  /** An hourly sync that ran in full, and why. */
  readonly fullBecause?: string;
  /** A migration's backup of the users table, taken before it wrote (a file's location is a key of the run storage). */
  readonly backup?: BackupReceipt;
}

interface SummaryInput {
  readonly run: PreparedRun;
  readonly status: FinalStatus;
  readonly consumedCapacity: number;
  readonly finishedAt: number;
  readonly plans: readonly PlanBucketResult[];
  readonly repairs: readonly RepairResult[];
  readonly error?: string;
  readonly backup?: BackupReceipt;
}

/** The run's figures from its stages' answers. */
export function summarize(task: SummaryInput): FullRunResult {
  const { run } = task;
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
    // An hourly sync reads nothing but its candidates: what they cost is what it scanned.
    if (run.snapshotMode === 'changes') {
      counts.usersScanned += repair.users;
      counts.paymentsScanned += repair.paymentsRead;
    }
    counts.usersFixed += repair.usersFixed;
    counts.coursesAdded += repair.coursesAdded;
    counts.coursesRemoved += repair.coursesRemoved;
    counts.duplicatesRemoved += repair.duplicatesRemoved;
    for (const kind of ISSUE_KINDS) issues[kind] += repair.issues[kind];
  }
  return {
    runId: run.runId,
    mode: run.mode,
    dryRun: run.dryRun,
    counts,
    issues,
    status: task.status,
    trigger: run.trigger,
    capped: task.repairs.some((repair) => repair.capped),
    revocationCapReached: task.repairs.some((repair) => repair.revocationCapReached),
    held: run.held,
    inFlight,
    consumedCapacity: task.consumedCapacity,
    snapshotAt: new Date(run.snapshotAt).toISOString(),
    startedAt: new Date(run.startedAt).toISOString(),
    finishedAt: new Date(task.finishedAt).toISOString(),
    durationMs: task.finishedAt - run.startedAt,
    ...(task.error ? { error: task.error } : {}),
    ...(run.changes ? { changes: changesOf(run.changes, task.plans) } : {}),
    ...(run.fullBecause ? { fullBecause: run.fullBecause } : {}),
    ...(task.backup ? { backup: task.backup } : {}),
  };
}

function changesOf(window: ChangeWindow, plans: readonly PlanBucketResult[]): NonNullable<FullRunResult['changes']> {
  const collected = plans.find((plan): plan is CollectResult => 'fromPayments' in plan);
  return {
    from: new Date(window.fromSeconds * 1000).toISOString(),
    to: new Date(window.toSeconds * 1000).toISOString(),
    sinceRunId: window.sinceRunId,
    validationRunId: window.validationRunId,
    candidates: collected?.candidates ?? 0,
    fromPayments: collected?.fromPayments ?? 0,
    fromUsers: collected?.fromUsers ?? 0,
    fromValidation: collected?.fromValidation ?? 0,
    fromFailures: collected?.fromFailures ?? 0,
    unreadableFailures: collected?.unreadableFailures ?? 0,
    changeLines: collected?.changeLines ?? 0,
  };
}

async function assemble(storage: RunStorage, partKeys: readonly string[], kind: ReportKind, target: string): Promise<void> {
  const texts: string[] = [];
  for (const key of partKeys.filter((part) => part.includes(`.${kind}.`))) texts.push((await storage.getText(key)) ?? '');
  await storage.put(target, texts.join(''));
}

async function readResults<T>(storage: RunStorage, keys: readonly string[]): Promise<T[]> {
  const results: T[] = [];
  for (const key of keys) results.push(JSON.parse((await storage.getText(key)) ?? 'null') as T);
  return results;
}

export interface FinalizeInput {
  /** The prepared run; only the request when prepare itself failed. */
  readonly run: PreparedRun | RunRequest;
  readonly snapshot?: SnapshotResult;
  readonly error?: CaughtError;
}

/** What a failed prepare leaves: the request, settled as prepare would have settled it. */
function settledRun(deps: SyncDeps, storage: RunStorage, run: PreparedRun | RunRequest): PreparedRun {
  if ('folder' in run) return run;
  const now = deps.now();
  const request = parseRunRequest(run);
  return { ...request, folder: runFolderKey(storage, request.runId), writes: false, dryRun: true, held: false, maxUserChanges: null, snapshotMode: deps.config.snapshotMode, changes: null, fullBecause: null, snapshotAt: now, startedAt: now, segments: 0, buckets: 0, joinConcurrency: 1, repairConcurrency: 1, taskBudgetMs: null, pageSize: null };
}

/**
 * Finalize, which every run reaches (a failure too, through the state machine's catches): the
 * stages' report parts become the run's `issues.jsonl` and `changes.jsonl`, `summary.json` is
 * written (a folder with a summary is a finished report), the run record closed, a scheduled
 * run that reached a cap holds later scheduled fixes, and the lock is released.
 */
export async function finalizeRun({ deps, storage, runs }: RunTaskContext, input: FinalizeInput): Promise<FullRunResult> {
  const run = settledRun(deps, storage, input.run);
  const layout = runLayout(run.folder);
  const partKeys = await storage.list(layout.parts);
  await assemble(storage, partKeys, 'issues', layout.issues);
  await assemble(storage, partKeys, 'changes', layout.changes);
  await storage.deletePrefix(layout.parts);
  const resultKeys = await storage.list(layout.results);
  const error = input.error ? `${input.error.Error}: ${describeCause(input.error.Cause)}` : undefined;
  const summary = summarize({
    run,
    status: error ? 'failed' : 'completed',
    consumedCapacity: input.snapshot?.consumedCapacity ?? 0,
    finishedAt: deps.now(),
    plans: await readResults<PlanBucketResult>(storage, resultKeys.filter((key) => key.includes('/plan-'))),
    repairs: await readResults<RepairResult>(storage, resultKeys.filter((key) => key.includes('/repair-'))),
    error,
    backup: await readBackup(storage, layout.backup),
  });
  await storage.put(layout.summary, `${JSON.stringify(summary, null, 2)}\n`);
  const { runId, mode, trigger, dryRun, held, status, counts, issues, consumedCapacity, capped, snapshotAt, startedAt, finishedAt } = summary;
  await runs.finishRun({ runId, mode, trigger, dryRun, held, status, counts, issues, consumedCapacity, capped: capped || summary.revocationCapReached, snapshotAt, startedAt, finishedAt, ...(error ? { error } : {}) });
  if (trigger === 'schedule' && (capped || summary.revocationCapReached)) {
    await runs.setHold(runId, capped ? 'the run reached MAX_USER_CHANGES_PER_RUN and stopped writing' : 'the run reached MAX_REVOCATIONS_PER_RUN and stopped revoking');
  }
  await runs.releaseLock(runId);
  return summary;
}

async function readBackup(storage: RunStorage, key: string): Promise<BackupReceipt | undefined> {
  const text = await storage.getText(key);
  return text === undefined ? undefined : (JSON.parse(text) as BackupReceipt);
}

/** A Lambda failure's cause is its error as JSON; the message is what a person reads. */
function describeCause(cause: string | undefined): string {
  if (!cause) return 'no cause given';
  try {
    const parsed = JSON.parse(cause) as { errorMessage?: unknown };
    if (typeof parsed.errorMessage === 'string') return parsed.errorMessage;
  } catch {
    // Not JSON: the cause is the message itself.
  }
  return cause;
}
