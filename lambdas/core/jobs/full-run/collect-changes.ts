import { emptyIssueCounts, type IssueLine } from '../../report/report';
import { touchedUserIds } from '../../snapshot/incremental-export';
import { logger } from '../../observability';
import { CANDIDATES_PER_FILE, type PlanBucketResult, type PlanTaskResult } from './plan-result';
import { runFolderKey, runLayout } from './layout';
import type { PreparedRun, RunTaskContext } from './run-request';

export interface CollectTaskInput {
  readonly run: PreparedRun;
  /** What the two incremental exports answered, payments first. */
  readonly changes: readonly { readonly manifest: string }[];
}

/** Where an hourly sync's candidates came from (its summary says it too). */
export interface CandidateSources {
  readonly fromPayments: number;
  readonly fromUsers: number;
  readonly fromValidation: number;
  readonly fromFailures: number;
  /** Failure-queue messages whose records the stream no longer holds (older than 24 hours). */
  readonly unreadableFailures: number;
  readonly changeLines: number;
}

/** The hourly sync's own figures, next to the plan's. */
export interface CollectResult extends PlanBucketResult, CandidateSources {
  readonly malformedChangeLines: number;
}

/** The stage name of the hourly sync's collect step among the plan results finalize adds up. */
export const COLLECT_STAGE = 'plan-changes';

/** Users a validation flagged with something a fix would do, and the run did not apply. */
async function unfixedFindings(ctx: RunTaskContext, validationRunId: string): Promise<string[]> {
  const text = await ctx.storage.getText(runLayout(runFolderKey(ctx.storage, validationRunId)).issues);
  if (text === undefined) {
    logger.warn('the last validation\'s report is gone (expired?): its findings are not candidates', { validationRunId });
    return [];
  }
  const users = new Set<string>();
  for (const line of text.split('\n')) {
    if (!line) continue;
    const issue = JSON.parse(line) as IssueLine;
    if (issue.userId && issue.fix !== 'none' && !issue.applied) users.add(issue.userId);
  }
  return [...users];
}

/**
 * The hourly sync's candidates: every user a write to either table touched in the window (a
 * payment's old and new user both; a users-table write too, since the LMS's own code can
 * overwrite a list with a stale copy), the unfixed findings of a validation since the last
 * sync, and the users the stream's failure-queue records name. They go to candidate files for the repair, which confirms each from a fresh read.
 */
export async function collectChanges(ctx: RunTaskContext, input: CollectTaskInput): Promise<PlanTaskResult[]> {
  const { run } = input;
  const { config } = ctx.deps;
  const [paymentsExport, usersExport] = input.changes;
  if (!run.changes || !paymentsExport || !usersExport) throw new Error('an hourly sync by changes needs its window and both tables\' incremental exports');
  const payments = await touchedUserIds(ctx.storage, paymentsExport.manifest, { table: 'payments', userAttr: config.payment.user });
  const users = await touchedUserIds(ctx.storage, usersExport.manifest, { table: 'users', userAttr: config.user.key });
  const flagged = run.changes.validationRunId ? await unfixedFindings(ctx, run.changes.validationRunId) : [];
  const failed = ctx.streamFailures ? await ctx.streamFailures.usersNamed(config.payment.user) : undefined;
  if (failed && failed.unreadable > 0) {
    logger.warn('some failure-queue messages name records the stream no longer holds: the weekly full fix covers their users; purge the queue once it ran', { unreadable: failed.unreadable });
  }
  const candidates = [...new Set([...payments.userIds, ...users.userIds, ...flagged, ...(failed?.userIds ?? [])])].sort();

  const layout = runLayout(run.folder);
  const candidateKeys: string[] = [];
  for (let part = 0; part * CANDIDATES_PER_FILE < candidates.length; part++) {
    const key = layout.candidateFile(0, part);
    await ctx.storage.put(key, JSON.stringify(candidates.slice(part * CANDIDATES_PER_FILE, (part + 1) * CANDIDATES_PER_FILE)));
    candidateKeys.push(key);
  }
  const result: CollectResult = {
    bucket: 0,
    paymentsScanned: 0,
    usersScanned: 0,
    inFlight: 0,
    issues: emptyIssueCounts(),
    candidates: candidates.length,
    candidateKeys,
    fromPayments: payments.userIds.length,
    fromUsers: users.userIds.length,
    fromValidation: flagged.length,
    fromFailures: failed?.userIds.length ?? 0,
    unreadableFailures: failed?.unreadable ?? 0,
    changeLines: payments.lines + users.lines,
    malformedChangeLines: payments.malformed + users.malformed,
  };
  await ctx.storage.put(layout.result(COLLECT_STAGE), JSON.stringify(result));
  logger.debug('hourly sync: candidates from the changes', { ...result, candidateKeys: undefined });
  return [{ bucket: 0, candidateKeys, usersScanned: 0, candidates: candidates.length }];
}
