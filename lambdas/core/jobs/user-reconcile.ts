import type { SyncDeps } from '../deps';
import { forEachConcurrently } from '../backoff';
import { debugEnabled, logger } from '../observability';
import { collectEvidence, FULL_SCOPE, planUser, type Issue, type UserPlan } from '../rules/plan';
import { emptyCounts, emptyIssueCounts, type ChangeLine, type RunMode, type RunSummary } from '../report/report';
import type { UserSnapshot } from '../store/users-store';
import { orphanIssues, planPolicy, readPayments } from './plan-inputs';

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
  /** Full runs only: payments changed within the grace window are left to the stream. */
  readonly grace?: boolean;
  /** Full runs only: the run's change and revocation caps. */
  readonly limits?: RunLimits;
}

/**
 * A run's blast-radius limits. Claims are made before writing and released when a write does
 * not happen, so users reconciled concurrently can never overshoot a cap.
 */
export class RunLimits {
  capped = false;
  revocationCapReached = false;

  constructor(
    /** Users the run may still change; undefined = no cap (a person chose the run). */
    private changesLeft: number | undefined,
    private revocationsLeft: number,
  ) {}

  claimChange(): boolean {
    if (this.changesLeft === undefined) return true;
    if (this.changesLeft <= 0) {
      this.capped = true;
      return false;
    }
    this.changesLeft--;
    return true;
  }

  releaseChange(): void {
    if (this.changesLeft !== undefined) this.changesLeft++;
  }

  claimRevocations(count: number): boolean {
    if (count > this.revocationsLeft) {
      this.revocationCapReached = true;
      return false;
    }
    this.revocationsLeft -= count;
    return true;
  }

  releaseRevocations(count: number): void {
    this.revocationsLeft += count;
  }
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
 * `syncUserPayments(userId)`, and the confirm-and-repair step of a full run. A fresh
 * consistent read and a complete index query, so a stale snapshot can never write a wrong list.
 */
export async function reconcileUser(deps: SyncDeps, userId: string, options: UserReconcileOptions): Promise<UserReconcileResult> {
  const items = await deps.payments.queryByUser(userId);
  const paymentsRead = items.length;
  const { payments, problems } = readPayments(items, deps.config);
  const now = deps.now();
  const evidence = collectEvidence(payments, { complete: true, grace: options.grace ? { now, graceMinutes: deps.config.graceMinutes } : undefined });
  const { limits } = options;
  let revocationsClaimed = 0;
  // Under a revocation cap a plan that would revoke past it is made again without revoking.
  const planner = (snapshot: UserSnapshot): UserPlan => {
    const plan = planUser(userId, snapshot.courses, evidence, FULL_SCOPE, planPolicy(deps.config, now));
    const more = plan.removed.length - revocationsClaimed;
    if (!limits || more <= 0 || limits.claimRevocations(more)) {
      revocationsClaimed = Math.max(revocationsClaimed, plan.removed.length);
      return plan;
    }
    return planUser(userId, snapshot.courses, evidence, FULL_SCOPE, planPolicy(deps.config, now, false));
  };
  const notFound = (): UserReconcileResult => {
    limits?.releaseRevocations(revocationsClaimed);
    return { result: answer(userId, 'not-found', undefined, [...problems, ...orphanIssues(userId, payments)]), change: undefined, paymentsRead };
  };
  const unwritten = (status: UserStatus, plan: UserPlan): UserReconcileResult => {
    limits?.releaseRevocations(revocationsClaimed);
    return { result: answer(userId, status, plan, [...problems, ...plan.issues]), change: undefined, paymentsRead };
  };

  const snapshot = await deps.users.get(userId);
  if (!snapshot.exists) return notFound();
  const first = planner(snapshot);
  if (!first.next) return unwritten('in-sync', first);
  if (options.dryRun || (limits && !limits.claimChange())) return unwritten('would-fix', first);

  const outcome = await deps.users.update(userId, planner, snapshot);
  if (outcome.kind !== 'changed') limits?.releaseChange();
  if (outcome.kind === 'not-found') return notFound();
  if (outcome.kind === 'unchanged') return unwritten('in-sync', outcome.plan);
  const { plan } = outcome;
  limits?.releaseRevocations(revocationsClaimed - plan.removed.length);
  return {
    result: answer(userId, 'fixed', plan, [...problems, ...plan.issues]),
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

/** A user's failure as a report line's reason: what DynamoDB said, and which tables a missing resource can be. */
function describeFailure(deps: SyncDeps, error: unknown): string {
  const { name, message } = error as Error;
  if (name === 'ResourceNotFoundException') {
    const { paymentsTable, paymentsUserIndex, usersTable } = deps.config;
    return `${name}: ${message} (one of: table ${usersTable}, table ${paymentsTable}, its index ${paymentsUserIndex})`;
  }
  return name && name !== 'Error' ? `${name}: ${message}` : message;
}

/** Many users, a few at a time; one user's failure is that user's `error` status and line, not the call's. */
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
      const reason = describeFailure(deps, error);
      const line: Issue = { kind: 'error', userId, orderIds: [], fix: 'none', detail: reason };
      results.set(userId, {
        result: { ...answer(userId, 'error', undefined, [line]), error: reason },
        change: undefined,
        paymentsRead: 0,
      });
    }
    debugUserPlan(options.runId, results.get(userId) as UserReconcileResult);
  });
  return unique.map((userId) => results.get(userId) as UserReconcileResult);
}

/** DEBUG: one line per user, what the plan changes and the order ids behind each issue; built only when debug is on. */
function debugUserPlan(runId: string, { result, paymentsRead }: UserReconcileResult): void {
  if (!debugEnabled()) return;
  logger.debug('user plan', {
    runId,
    userId: result.userId,
    status: result.status,
    paymentsRead,
    added: result.added,
    removed: result.removed,
    duplicatesRemoved: result.duplicatesRemoved,
    issues: result.issues.map(({ kind, courseId, orderIds, fix }) => ({ kind, courseId, orderIds, fix })),
    ...(result.error ? { error: result.error } : {}),
  });
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
