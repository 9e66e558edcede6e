import type { CoursesFormat } from '../config';
import { entryFormat, newEntry, type CourseEntry, type CoursesList } from './courses-list';
import { isInFlight, type Payment } from './payment';

export const ISSUE_KINDS = [
  'missing',
  'duplicate',
  'revoked',
  'unbacked',
  'malformed-entry',
  'orphan-payment',
  'malformed-payment',
  'unknown-status',
  'error',
] as const;
export type IssueKind = (typeof ISSUE_KINDS)[number];

/** What fixing an issue does; `none` is report-only (by nature, or by policy). */
export type IssueFix = 'grant' | 'remove-duplicate' | 'revoke' | 'none';

/** One report line. Every grant and every issue names the order ids behind it. */
export interface Issue {
  readonly kind: IssueKind;
  readonly userId: string | undefined;
  readonly courseId?: string;
  readonly orderIds: readonly string[];
  readonly fix: IssueFix;
  readonly detail: string;
}

/** What a user's payments say about each course, as order ids. */
export interface CourseEvidence {
  readonly paid: ReadonlyMap<string, readonly string[]>;
  readonly revoked: ReadonlyMap<string, readonly string[]>;
  /** Pending, failed and unknown payments: they neither grant nor take away. */
  readonly other: ReadonlyMap<string, readonly string[]>;
  /** Courses with a payment that changed within the grace window: no decision yet. */
  readonly inFlight: ReadonlyMap<string, readonly string[]>;
  /** True when these are all of the user's payments; only then can a course's origin be judged. */
  readonly complete: boolean;
}

export interface EvidenceOptions {
  readonly complete: boolean;
  /** Set for full runs: payments changed since `now - graceMinutes` are in flight. */
  readonly grace?: { readonly now: number; readonly graceMinutes: number };
  /** Order ids whose paid → deny reversal the stream saw: evidence for revocation. */
  readonly reversedOrderIds?: readonly string[];
}

function addTo(map: Map<string, string[]>, courseId: string, orderId: string): void {
  const orderIds = map.get(courseId);
  if (!orderIds) map.set(courseId, [orderId]);
  else if (!orderIds.includes(orderId)) orderIds.push(orderId);
}

export function collectEvidence(payments: readonly Payment[], options: EvidenceOptions): CourseEvidence {
  const paid = new Map<string, string[]>();
  const revoked = new Map<string, string[]>();
  const other = new Map<string, string[]>();
  const inFlight = new Map<string, string[]>();
  const reversed = new Set(options.reversedOrderIds ?? []);
  for (const payment of payments) {
    const flying = options.grace !== undefined && isInFlight(payment, options.grace.now, options.grace.graceMinutes);
    for (const courseId of payment.courseIds) {
      if (flying) addTo(inFlight, courseId, payment.orderId);
      else if (payment.classification === 'paid') addTo(paid, courseId, payment.orderId);
      else if (payment.classification === 'revoked' || reversed.has(payment.orderId)) addTo(revoked, courseId, payment.orderId);
      else addTo(other, courseId, payment.orderId);
    }
  }
  return { paid, revoked, other, inFlight, complete: options.complete };
}

/** Which rules a job applies: each job owns part of the reconciliation. */
export interface PlanScope {
  readonly grant: boolean;
  /** Drop duplicates and report malformed entries: the list's own hygiene, owned by one job per run. */
  readonly dedupe: boolean;
  /** Report `revoked` courses and, under the policy, remove them. Needs complete evidence. */
  readonly revoke: boolean;
  /** Report `unbacked` courses. Needs complete evidence. */
  readonly unbacked: boolean;
}

/** Per-user and full runs: every rule. */
export const FULL_SCOPE: PlanScope = { grant: true, dedupe: true, revoke: true, unbacked: true };
/** The real-time path: a payment that became paid grants its courses, and nothing else. */
export const GRANT_ONLY_SCOPE: PlanScope = { grant: true, dedupe: false, revoke: false, unbacked: false };
/** The real-time path: a refund, chargeback or reversal revokes by evidence and policy, and nothing else. */
export const REVOKE_ONLY_SCOPE: PlanScope = { grant: false, dedupe: false, revoke: true, unbacked: false };

export interface PlanPolicy {
  readonly revokeOnRefund: boolean;
  readonly format: CoursesFormat;
  /** ISO time stamped on new object entries. */
  readonly now: string;
}

export interface UserPlan {
  readonly issues: readonly Issue[];
  /** The list to write, or undefined when nothing changes. */
  readonly next: readonly CourseEntry[] | undefined;
  readonly added: readonly string[];
  readonly removed: readonly string[];
  /** One course id per duplicate entry dropped. */
  readonly duplicatesRemoved: readonly string[];
}

function describe(raw: unknown): string {
  const text = JSON.stringify(raw);
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

/**
 * The fix plan for one user's list: grant what payments entitle, drop duplicates keeping the
 * first entry, remove a course only on evidence of a refund or reversal and only under the
 * policy. Entries it does not decide on, malformed ones included, are kept as they are.
 */
export function planUser(
  userId: string,
  list: CoursesList,
  evidence: CourseEvidence,
  scope: PlanScope,
  policy: PlanPolicy,
): UserPlan {
  const issues: Issue[] = [];
  if (list.state === 'unsupported') {
    if (scope.dedupe) issues.push({
      kind: 'malformed-entry',
      userId,
      orderIds: [],
      fix: 'none',
      detail: `the courses attribute is not a list: ${describe(list.raw)}`,
    });
    return { issues, next: undefined, added: [], removed: [], duplicatesRemoved: [] };
  }

  const kept: CourseEntry[] = [];
  const listed = new Set<string>();
  const duplicatesRemoved: string[] = [];
  for (const entry of list.state === 'list' ? list.entries : []) {
    if (entry.kind === 'malformed') {
      if (scope.dedupe) issues.push({ kind: 'malformed-entry', userId, orderIds: [], fix: 'none', detail: `entry left as is: ${describe(entry.raw)}` });
      kept.push(entry);
    } else if (listed.has(entry.courseId) && scope.dedupe) {
      issues.push({
        kind: 'duplicate',
        userId,
        courseId: entry.courseId,
        orderIds: evidence.paid.get(entry.courseId) ?? [],
        fix: 'remove-duplicate',
        detail: 'listed more than once; the first entry is kept',
      });
      duplicatesRemoved.push(entry.courseId);
    } else {
      listed.add(entry.courseId);
      kept.push(entry);
    }
  }

  const removed = new Set<string>();
  if (evidence.complete) {
    for (const courseId of listed) {
      if (evidence.paid.has(courseId) || evidence.inFlight.has(courseId)) continue;
      const refunds = evidence.revoked.get(courseId);
      if (refunds && scope.revoke) {
        issues.push({
          kind: 'revoked',
          userId,
          courseId,
          orderIds: refunds,
          fix: policy.revokeOnRefund ? 'revoke' : 'none',
          detail: policy.revokeOnRefund ? 'refunded or reversed, no other paid order: removed' : 'refunded or reversed, no other paid order; revoke policy is off',
        });
        if (policy.revokeOnRefund) removed.add(courseId);
      } else if (!refunds && scope.unbacked) {
        const others = evidence.other.get(courseId) ?? [];
        issues.push({
          kind: 'unbacked',
          userId,
          courseId,
          orderIds: others,
          fix: 'none',
          detail: others.length > 0 ? 'no paid order; only unpaid ones' : 'no payment at all (manual grant, free course or older purchase)',
        });
      }
    }
  }

  const added: string[] = [];
  if (scope.grant) {
    for (const [courseId, orderIds] of [...evidence.paid].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      if (listed.has(courseId)) continue;
      issues.push({ kind: 'missing', userId, courseId, orderIds, fix: 'grant', detail: 'paid but not in the list' });
      added.push(courseId);
    }
  }

  if (added.length === 0 && removed.size === 0 && duplicatesRemoved.length === 0) {
    return { issues, next: undefined, added, removed: [], duplicatesRemoved };
  }
  const format = entryFormat(list, policy.format);
  const next = [
    ...kept.filter((entry) => entry.kind === 'malformed' || !removed.has(entry.courseId)),
    ...added.map((courseId) => newEntry(courseId, format, evidence.paid.get(courseId)?.[0], policy.now)),
  ];
  return { issues, next, added, removed: [...removed], duplicatesRemoved };
}

