import type { SyncDeps } from '../../deps';
import { logger } from '../../observability';
import { emptyIssueCounts, type ChangeLine, type IssueCounts, type IssueLine } from '../../report/report';
import type { RunStorage } from '../../storage/run-storage';
import { reconcileUsers, RunLimits } from '../user-reconcile';
import { PartWriter, runLayout } from './layout';
import type { PreparedRun, RunTaskContext } from './run-request';

export interface RepairTask {
  readonly runId: string;
  readonly folder: string;
  readonly candidateKey: string;
  /** Confirm and report only (an hourly sync under a hold). */
  readonly dryRun: boolean;
  /** What is left of the run's caps when this batch starts. */
  readonly changesLeft: number | undefined;
  readonly revocationsLeft: number;
}

export interface RepairResult {
  /** Candidates this batch confirmed. */
  readonly users: number;
  readonly paymentsRead: number;
  readonly usersFixed: number;
  readonly coursesAdded: number;
  readonly coursesRemoved: number;
  readonly duplicatesRemoved: number;
  readonly issues: IssueCounts;
  readonly capped: boolean;
  readonly revocationCapReached: boolean;
}

/** Users repaired at once in one batch: the write rate one worker puts on the users table. */
const REPAIR_CONCURRENCY = 8;

/**
 * Confirm and repair one candidate file: each user through the per-user reconcile (fresh
 * consistent read, complete index query, conditional write) with the grace window and the
 * run's caps. A user that fails is that user's `error` line; the batch carries on.
 */
export async function repairBatch(deps: SyncDeps, storage: RunStorage, task: RepairTask): Promise<RepairResult> {
  const layout = runLayout(task.folder);
  const text = await storage.getText(task.candidateKey);
  if (text === undefined) throw new Error(`candidate file ${task.candidateKey} does not exist`);
  const userIds = JSON.parse(text) as string[];
  const limits = new RunLimits(task.changesLeft, task.revocationsLeft);
  const outcomes = await reconcileUsers(deps, userIds, { dryRun: task.dryRun, runId: task.runId, grace: true, limits }, REPAIR_CONCURRENCY);

  const stage = layout.repairStage(task.candidateKey);
  const issueLines = new PartWriter<IssueLine>(storage, (part) => layout.part(stage, 'issues', part));
  const changeLines = new PartWriter<ChangeLine>(storage, (part) => layout.part(stage, 'changes', part));
  const issues = emptyIssueCounts();
  let paymentsRead = 0;
  let usersFixed = 0;
  let coursesAdded = 0;
  let coursesRemoved = 0;
  let duplicatesRemoved = 0;
  for (const { result, change, paymentsRead: read } of outcomes) {
    paymentsRead += read;
    const fixed = result.status === 'fixed';
    for (const issue of result.issues) {
      issues[issue.kind]++;
      await issueLines.add({ ...issue, runId: task.runId, applied: fixed && issue.fix !== 'none' });
    }
    if (!fixed || !change) continue;
    usersFixed++;
    coursesAdded += result.added.length;
    coursesRemoved += result.removed.length;
    duplicatesRemoved += result.duplicatesRemoved.length;
    await changeLines.add(change);
  }
  await issueLines.close();
  await changeLines.close();
  logger.debug('repair: batch done', { runId: task.runId, candidateKey: task.candidateKey, users: userIds.length, usersFixed, coursesAdded, coursesRemoved, duplicatesRemoved, capped: limits.capped, revocationCapReached: limits.revocationCapReached });
  return { users: userIds.length, paymentsRead, usersFixed, coursesAdded, coursesRemoved, duplicatesRemoved, issues, capped: limits.capped, revocationCapReached: limits.revocationCapReached };
}

export interface RepairTaskInput {
  readonly run: PreparedRun;
  readonly candidateKey: string;
}

/**
 * The repair task of one candidate file. Under a cap the run's batches go one at a time
 * (prepare sets the Map's concurrency to 1), each starting from what the run record says
 * earlier batches used, and adding its own use when done.
 */
export async function repairBatchTask({ deps, storage, runs }: RunTaskContext, input: RepairTaskInput): Promise<{ readonly users: number; readonly usersFixed: number }> {
  const { run, candidateKey } = input;
  const record = await runs.getRun(run.runId);
  const changesUsed = record?.changesUsed ?? 0;
  const revocationsUsed = record?.revocationsUsed ?? 0;
  const result = await repairBatch(deps, storage, {
    runId: run.runId,
    folder: run.folder,
    candidateKey,
    dryRun: !run.writes,
    changesLeft: run.maxUserChanges === null ? undefined : Math.max(0, run.maxUserChanges - changesUsed),
    revocationsLeft: Math.max(0, deps.config.maxRevocationsPerRun - revocationsUsed),
  });
  await runs.addUsage(run.runId, result.usersFixed, result.coursesRemoved);
  const layout = runLayout(run.folder);
  await storage.put(layout.result(layout.repairStage(candidateKey)), JSON.stringify(result));
  return { users: result.users, usersFixed: result.usersFixed };
}
