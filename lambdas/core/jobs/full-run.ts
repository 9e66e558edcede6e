import type { SyncDeps } from '../deps';
import { forEachConcurrently } from '../backoff';
import { isInFlight, type Payment } from '../rules/payment';
import { collectEvidence, planUser, type CourseEvidence, type Issue, type PlanScope, type UserPlan } from '../rules/plan';
import {
  emptyCounts,
  emptyIssueCounts,
  type ReportSink,
  type RunCounts,
  type RunMode,
  type RunSummary,
} from '../report/report';
import type { ScanCursor } from '../store/payments-store';
import type { UserSnapshot } from '../store/users-store';
import { orphanIssues, planPolicy, readPayments } from './policy';
import { changeLine } from './user-reconcile';

export interface FullRunOptions {
  readonly runId: string;
  readonly mode: RunMode;
  readonly dryRun: boolean;
  /** Also judge every listed course's origin (`unbacked`): one index query per user with courses. */
  readonly deep: boolean;
  readonly segments: number;
  /** Segments worked on at once, per table: bounds the read rate against the tables. */
  readonly concurrency: number;
  /** Users a run may change before it stops writing; undefined = no cap (a person chose the run). */
  readonly maxUserChanges: number | undefined;
  /** Epoch ms after which segments stop at the next page and the run ends `incomplete`. */
  readonly deadline?: number;
  readonly pageSize?: number;
  readonly onProgress?: (progress: RunProgress) => void;
}

export interface RunProgress {
  readonly paymentsScanned: number;
  readonly usersScanned: number;
  readonly segmentsDone: number;
  readonly segmentsTotal: number;
}

export type RunStatus = 'completed' | 'incomplete';

export interface FullRunResult extends RunSummary {
  readonly status: RunStatus;
  /** The change cap stopped the run's writes; what it did not fix is in the report. */
  readonly capped: boolean;
  readonly revocationCapReached: boolean;
  readonly inFlight: number;
  readonly consumedCapacity: number;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly durationMs: number;
}

const GRANT_ONLY: PlanScope = { grant: true, dedupe: false, revoke: false, unbacked: false };
const REVOKE_ONLY: PlanScope = { grant: false, dedupe: false, revoke: true, unbacked: false };
const USER_LIST_ONLY: PlanScope = { grant: false, dedupe: true, revoke: false, unbacked: false };
const USER_LIST_DEEP: PlanScope = { grant: false, dedupe: true, revoke: false, unbacked: true };
const NO_EVIDENCE: CourseEvidence = collectEvidence([], { complete: false });
/** Users handled at once within one page. */
const USERS_PER_PAGE_CONCURRENCY = 8;

/** Mutable state of one run, shared by its segments (they run in one process here). */
class RunState {
  readonly counts: RunCounts = emptyCounts();
  readonly issues = emptyIssueCounts();
  readonly startedAt: number;
  readonly writes: boolean;
  private readonly reported = new Set<string>();
  /** Users this run changed: `usersFixed`, and what the change cap counts. */
  private readonly changedUsers = new Set<string>();
  private changesInFlight = 0;
  private revocationsClaimed = 0;
  capped = false;
  revocationCapReached = false;
  incomplete = false;
  inFlight = 0;
  consumedCapacity = 0;
  segmentsDone = 0;

  constructor(
    readonly deps: SyncDeps,
    readonly options: FullRunOptions,
    readonly sink: ReportSink,
  ) {
    this.startedAt = deps.now();
    this.writes = !options.dryRun && options.mode !== 'validate' && options.mode !== 'cron-validate';
  }

  pastDeadline(): boolean {
    return this.options.deadline !== undefined && this.deps.now() >= this.options.deadline;
  }

  /** `missing` and `revoked` can be seen from several pages of payments: one line each. */
  report(issue: Issue, applied: boolean): void {
    if (issue.kind === 'missing' || issue.kind === 'revoked') {
      const key = `${issue.kind}\u0000${issue.userId}\u0000${issue.courseId}`;
      if (this.reported.has(key)) return;
      this.reported.add(key);
    }
    this.issues[issue.kind]++;
    this.sink.issue({ ...issue, runId: this.options.runId, applied });
  }

  /** Claims `count` revocations against the run's cap; claims are made before writing, so concurrent users cannot overshoot it. */
  claimRevocations(count: number): boolean {
    if (this.revocationsClaimed + count > this.deps.config.maxRevocationsPerRun) {
      this.revocationCapReached = true;
      return false;
    }
    this.revocationsClaimed += count;
    return true;
  }

  releaseRevocations(count: number): void {
    this.revocationsClaimed -= count;
  }

  /** Claims a change of `userId` against the change cap; a user already changed by this run is free. */
  claimChange(userId: string): boolean {
    const cap = this.options.maxUserChanges;
    if (this.changedUsers.has(userId) || cap === undefined) return true;
    if (this.changedUsers.size + this.changesInFlight >= cap) {
      this.capped = true;
      return false;
    }
    this.changesInFlight++;
    return true;
  }

  settleChange(userId: string, claimed: boolean, changed: boolean): void {
    if (claimed && this.options.maxUserChanges !== undefined && !this.changedUsers.has(userId)) this.changesInFlight--;
    if (changed && !this.changedUsers.has(userId)) {
      this.changedUsers.add(userId);
      this.counts.usersFixed++;
    }
  }

  progress(): void {
    this.options.onProgress?.({
      paymentsScanned: this.counts.paymentsScanned,
      usersScanned: this.counts.usersScanned,
      segmentsDone: this.segmentsDone,
      segmentsTotal: this.options.segments * 2,
    });
  }
}

/**
 * Plans one user and, when the run writes, applies the plan through the one write path.
 * Report lines say whether the run applied each fix.
 */
async function reconcile(run: RunState, userId: string, snapshot: UserSnapshot | undefined, evidence: CourseEvidence, scope: PlanScope): Promise<void> {
  const { deps } = run;
  let revocationsClaimed = 0;
  const planner = (current: UserSnapshot): UserPlan => {
    const plan = planUser(userId, current.courses, evidence, scope, planPolicy(deps.config, run.startedAt));
    const more = plan.removed.length - revocationsClaimed;
    if (more <= 0 || run.claimRevocations(more)) {
      revocationsClaimed = Math.max(revocationsClaimed, plan.removed.length);
      return plan;
    }
    return planUser(userId, current.courses, evidence, scope, planPolicy(deps.config, run.startedAt, false));
  };
  const current = snapshot ?? (await deps.users.get(userId));
  if (!current.exists) return;
  const first = planner(current);
  if (!first.next || !run.writes || !run.claimChange(userId)) {
    // A dry run keeps its claims, so that it reports what a real run would do at the cap.
    if (run.writes) run.releaseRevocations(revocationsClaimed);
    for (const issue of first.issues) run.report(issue, false);
    return;
  }
  const outcome = await deps.users.update(userId, planner, current);
  run.settleChange(userId, true, outcome.kind === 'changed');
  if (outcome.kind !== 'changed') {
    run.releaseRevocations(revocationsClaimed);
    if (outcome.kind === 'unchanged') for (const issue of outcome.plan.issues) run.report(issue, false);
    return;
  }
  const { plan } = outcome;
  run.releaseRevocations(revocationsClaimed - plan.removed.length);
  run.counts.coursesAdded += plan.added.length;
  run.counts.coursesRemoved += plan.removed.length;
  run.counts.duplicatesRemoved += plan.duplicatesRemoved.length;
  for (const issue of plan.issues) run.report(issue, issue.fix !== 'none');
  run.sink.change(changeLine(run.options.runId, userId, outcome.before.raw, outcome.after, plan, deps.now()));
}

async function handlePaymentsPage(run: RunState, payments: readonly Payment[]): Promise<void> {
  const { deps } = run;
  const grace = { now: run.startedAt, graceMinutes: deps.config.graceMinutes };
  const byUser = new Map<string, Payment[]>();
  for (const payment of payments) {
    if (isInFlight(payment, grace.now, grace.graceMinutes)) {
      run.inFlight++;
      continue;
    }
    if (payment.classification !== 'paid' && payment.classification !== 'revoked') continue;
    const userPayments = byUser.get(payment.userId);
    if (userPayments) userPayments.push(payment);
    else byUser.set(payment.userId, [payment]);
  }
  if (byUser.size === 0) return;
  const snapshots = await deps.users.batchGet([...byUser.keys()]);
  await forEachConcurrently([...byUser], USERS_PER_PAGE_CONCURRENCY, async ([userId, userPayments]) => {
    const snapshot = snapshots.get(userId) as UserSnapshot;
    if (!snapshot.exists) {
      for (const issue of orphanIssues(userId, userPayments)) run.report(issue, false);
      return;
    }
    const pagePaid = userPayments.filter((payment) => payment.classification === 'paid');
    if (pagePaid.length > 0) await reconcile(run, userId, snapshot, collectEvidence(pagePaid, { complete: false, grace }), GRANT_ONLY);
    if (pagePaid.length === userPayments.length) return;
    // A refund decides nothing alone: every payment of the user is needed to know what still covers a course.
    const all = readPayments(await deps.payments.queryByUser(userId), deps.config).payments;
    await reconcile(run, userId, undefined, collectEvidence(all, { complete: true, grace }), REVOKE_ONLY);
  });
}

async function handleUsersPage(run: RunState, users: readonly UserSnapshot[]): Promise<void> {
  const { deps } = run;
  const grace = { now: run.startedAt, graceMinutes: deps.config.graceMinutes };
  await forEachConcurrently(users, USERS_PER_PAGE_CONCURRENCY, async (snapshot) => {
    const hasEntries = snapshot.courses.state === 'list' && snapshot.courses.entries.length > 0;
    if (run.options.deep && hasEntries) {
      const all = readPayments(await deps.payments.queryByUser(snapshot.userId), deps.config).payments;
      await reconcile(run, snapshot.userId, snapshot, collectEvidence(all, { complete: true, grace }), USER_LIST_DEEP);
    } else {
      await reconcile(run, snapshot.userId, snapshot, NO_EVIDENCE, USER_LIST_ONLY);
    }
  });
}

/** Works one segment page by page (memory bounded by a page) until it ends or the deadline nears. */
async function runSegment(run: RunState, table: 'payments' | 'users', segment: number): Promise<void> {
  const { deps, options } = run;
  let cursor: ScanCursor | undefined;
  do {
    if (run.pastDeadline()) {
      run.incomplete = true;
      return;
    }
    const position = { segment, totalSegments: options.segments, cursor, pageSize: options.pageSize };
    if (table === 'payments') {
      const page = await deps.payments.scanPage(position);
      run.consumedCapacity += page.consumedCapacity;
      run.counts.paymentsScanned += page.items.length;
      const { payments, malformed } = readPayments(page.items, deps.config);
      for (const issue of malformed) run.report(issue, false);
      await handlePaymentsPage(run, payments);
      cursor = page.cursor;
    } else {
      const page = await deps.users.scanPage(position);
      run.consumedCapacity += page.consumedCapacity;
      run.counts.usersScanned += page.items.length;
      await handleUsersPage(run, page.items);
      cursor = page.cursor;
    }
    run.progress();
  } while (cursor);
  run.segmentsDone++;
  run.progress();
}

/**
 * A full reconciliation in one process: parallel scan segments of both tables. Payments
 * segments grant (grants are additive and commute, so segments need no coordination) and
 * decide refunds; users segments drop duplicates and report malformed entries.
 */
export async function runFullReconciliation(deps: SyncDeps, options: FullRunOptions, sink: ReportSink): Promise<FullRunResult> {
  const run = new RunState(deps, options, sink);
  const work = Array.from({ length: options.segments }, (_, segment) => segment).flatMap((segment) => [
    { table: 'payments' as const, segment },
    { table: 'users' as const, segment },
  ]);
  await forEachConcurrently(work, options.concurrency * 2, ({ table, segment }) => runSegment(run, table, segment));
  const finishedAt = deps.now();
  return {
    runId: options.runId,
    mode: options.mode,
    dryRun: !run.writes,
    counts: run.counts,
    issues: run.issues,
    status: run.incomplete ? 'incomplete' : 'completed',
    capped: run.capped,
    revocationCapReached: run.revocationCapReached,
    inFlight: run.inFlight,
    consumedCapacity: run.consumedCapacity,
    startedAt: new Date(run.startedAt).toISOString(),
    finishedAt: new Date(finishedAt).toISOString(),
    durationMs: finishedAt - run.startedAt,
  };
}
