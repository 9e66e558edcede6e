import type { SyncDeps } from '../deps';
import { forEachConcurrently } from '../backoff';
import { collectEvidence, FULL_SCOPE, planUser, type Issue, type UserPlan } from '../rules/plan';
import { emptyCounts, emptyIssueCounts, type ChangeLine, type RunMode, type RunSummary } from '../report/report';
import type { UserSnapshot } from '../store/users-store';
import { orphanIssues, planPolicy, readPayments } from './policy';

export type UserStatus = 'in-sync' | 'fixed' | 'would-fix' | 'not-found' | 'error';

/** The per-user answer of the public contract. */
export interface UserResult {
  readonly userId: string;
  readonly status: UserStatus;
  readonly added: readonly string[];
  readonly removed: readonly string[];
  readonly duplicatesRemoved: readonly string[];
  readonly issues: readonly Issue[];
  readonly error?: string;
}

export interface UserReconcileOptions {
  /** Plan and report only; the seed's `validateUserData`. */
  readonly dryRun: boolean;
  readonly runId: string;
}

export interface UserReconcileResult {
  readonly result: UserResult;
  readonly change: ChangeLine | undefined;
  readonly paymentsRead: number;
}

function answer(userId: string, status: UserStatus, plan: UserPlan | undefined, issues: readonly Issue[]): UserResult {
  return {
    userId,
    status,
    added: plan?.added ?? [],
    removed: plan?.removed ?? [],
    duplicatesRemoved: plan?.duplicatesRemoved ?? [],
    issues,
  };
}

/**
 * Validates (dry run) or fixes one user against all of their payments: the seed's
 * `syncUserPayments(userId)`. A person asked for this user, so no grace window applies.
 */
export async function reconcileUser(deps: SyncDeps, userId: string, options: UserReconcileOptions): Promise<UserReconcileResult> {
  const items = await deps.payments.queryByUser(userId);
  const paymentsRead = items.length;
  const { payments, malformed } = readPayments(items, deps.config);
  const evidence = collectEvidence(payments, { complete: true });
  const planner = (snapshot: UserSnapshot): UserPlan =>
    planUser(userId, snapshot.courses, evidence, FULL_SCOPE, planPolicy(deps.config, deps.now()));

  if (options.dryRun) {
    const snapshot = await deps.users.get(userId);
    if (!snapshot.exists) return { result: answer(userId, 'not-found', undefined, [...malformed, ...orphanIssues(userId, payments)]), change: undefined, paymentsRead };
    const plan = planner(snapshot);
    return { result: answer(userId, plan.next ? 'would-fix' : 'in-sync', plan, [...malformed, ...plan.issues]), change: undefined, paymentsRead };
  }

  const outcome = await deps.users.update(userId, planner);
  if (outcome.kind === 'not-found') {
    return { result: answer(userId, 'not-found', undefined, [...malformed, ...orphanIssues(userId, payments)]), change: undefined, paymentsRead };
  }
  if (outcome.kind === 'unchanged') return { result: answer(userId, 'in-sync', outcome.plan, [...malformed, ...outcome.plan.issues]), change: undefined, paymentsRead };
  const { plan } = outcome;
  return {
    result: answer(userId, 'fixed', plan, [...malformed, ...plan.issues]),
    change: changeLine(options.runId, userId, outcome.before.raw, outcome.after, plan, deps.now()),
    paymentsRead,
  };
}

export function changeLine(runId: string, userId: string, before: ChangeLine['before'] | undefined, after: ChangeLine['after'], plan: UserPlan, now: number): ChangeLine {
  return {
    runId,
    userId,
    at: new Date(now).toISOString(),
    added: plan.added,
    removed: plan.removed,
    duplicatesRemoved: plan.duplicatesRemoved,
    orderIds: [...new Set(plan.issues.flatMap((issue) => (issue.fix === 'none' ? [] : issue.orderIds)))],
    before: before ?? null,
    after,
  };
}

/** Many users, a few at a time; one user's failure is that user's `error` line, not the call's. */
export async function reconcileUsers(
  deps: SyncDeps,
  userIds: readonly string[],
  options: UserReconcileOptions,
  concurrency = 8,
): Promise<UserReconcileResult[]> {
  const unique = [...new Set(userIds)];
  const results = new Map<string, UserReconcileResult>();
  await forEachConcurrently(unique, concurrency, async (userId) => {
    try {
      results.set(userId, await reconcileUser(deps, userId, options));
    } catch (error) {
      results.set(userId, {
        result: { ...answer(userId, 'error', undefined, []), error: (error as Error).message },
        change: undefined,
        paymentsRead: 0,
      });
    }
  });
  return unique.map((userId) => results.get(userId) as UserReconcileResult);
}

/** The contract's summary for a per-user run, so `--user` runs report like full ones. */
export function summarizeUsers(runId: string, mode: RunMode, dryRun: boolean, outcomes: readonly UserReconcileResult[]): RunSummary {
  const counts = emptyCounts();
  const issues = emptyIssueCounts();
  for (const { result, paymentsRead } of outcomes) {
    counts.paymentsScanned += paymentsRead;
    counts.usersScanned++;
    if (result.status === 'fixed') counts.usersFixed++;
    if (!dryRun) {
      counts.coursesAdded += result.added.length;
      counts.coursesRemoved += result.removed.length;
      counts.duplicatesRemoved += result.duplicatesRemoved.length;
    }
    for (const issue of result.issues) issues[issue.kind]++;
  }
  return { runId, mode, dryRun, counts, issues };
}
