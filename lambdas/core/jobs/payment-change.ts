import type { SyncDeps } from '../deps';
import type { WireItem, WireValue } from '../rules/attribute-values';
import { readPayment, type Payment, type PaymentClass } from '../rules/payment';
import { collectEvidence, GRANT_ONLY_SCOPE, planUser, REVOKE_ONLY_SCOPE } from '../rules/plan';
import { planPolicy, readPayments } from './plan-inputs';

export interface PaymentChange {
  readonly eventName: 'INSERT' | 'MODIFY' | 'REMOVE';
  readonly oldImage?: WireItem | undefined;
  readonly newImage?: WireItem | undefined;
}

/** The user's list before and after a write: the audit trail, and what undoing it takes. */
export interface ListChange {
  readonly before: WireValue | null;
  readonly after: WireValue;
}

export type PaymentChangeOutcome =
  | ({ readonly kind: 'granted'; readonly userId: string; readonly orderId: string; readonly courseIds: readonly string[] } & ListChange)
  | ({ readonly kind: 'revoked'; readonly userId: string; readonly orderId: string; readonly courseIds: readonly string[] } & ListChange)
  | { readonly kind: 'revoke-skipped-by-policy'; readonly userId: string; readonly orderId: string; readonly courseIds: readonly string[] }
  | { readonly kind: 'no-change'; readonly userId: string; readonly orderId: string; readonly reason: string }
  | { readonly kind: 'orphan-payment'; readonly userId: string; readonly orderId: string }
  | { readonly kind: 'malformed-payment'; readonly userId: string | undefined; readonly orderId: string; readonly reason: string }
  | { readonly kind: 'unknown-status'; readonly userId: string; readonly orderId: string; readonly reason: string }
  | { readonly kind: 'ignored'; readonly orderId: string | undefined; readonly reason: string };

/**
 * The real-time decision for one stream record. Into `paid` → grant every course of the
 * payment; into `revoked`, or `paid` → `deny` (a Midtrans reversal) → revoke by evidence
 * and policy; anything else writes nothing. Idempotent: a replayed record changes nothing.
 * Throws only for transient failures (throttling past retries, a write conflict that outlasts
 * its retries), which the caller reports for redelivery.
 */
export async function applyPaymentChange(deps: SyncDeps, change: PaymentChange): Promise<PaymentChangeOutcome> {
  const { config } = deps;
  if (change.eventName === 'REMOVE' || !change.newImage) {
    return { kind: 'ignored', orderId: undefined, reason: 'payment deleted: access is decided by refunds, not deletions' };
  }
  const reading = readPayment(change.newImage, config.payment, config);
  if (!reading.ok) return { kind: 'malformed-payment', userId: reading.userId, orderId: reading.orderId, reason: reading.problem };
  const payment = reading.payment;
  const before = change.oldImage ? readPayment(change.oldImage, config.payment, config) : undefined;
  const previous: PaymentClass | undefined = before?.ok ? before.payment.classification : undefined;
  const { orderId, userId } = payment;

  if (payment.classification === 'paid' && previous !== 'paid') return grant(deps, payment);
  const reversal = previous === 'paid' && payment.status.trim().toLowerCase() === 'deny';
  if ((payment.classification === 'revoked' && previous !== 'revoked') || reversal) return revoke(deps, payment, reversal);
  if (payment.classification === 'unknown') {
    return { kind: 'unknown-status', userId, orderId, reason: `status "${payment.status}" is not one the sync knows` };
  }
  return { kind: 'no-change', userId, orderId, reason: `${previous ?? 'new'} → ${payment.classification} needs no change` };
}

async function grant(deps: SyncDeps, payment: Payment): Promise<PaymentChangeOutcome> {
  const { orderId, userId } = payment;
  const evidence = collectEvidence([payment], { complete: false });
  const outcome = await deps.users.update(userId, (snapshot) =>
    planUser(userId, snapshot.courses, evidence, GRANT_ONLY_SCOPE, planPolicy(deps.config, deps.now())),
  );
  if (outcome.kind === 'not-found') return { kind: 'orphan-payment', userId, orderId };
  if (outcome.kind === 'unchanged') {
    const { courses } = outcome.snapshot;
    // Nothing can be added to a list that is not a list: say what it is, so the log is not misread as in sync.
    const reason = courses.state === 'unsupported' ? `the courses attribute is not a list (${Object.keys(courses.raw).join(', ')}); nothing granted, left as is` : 'every course already listed';
    return { kind: 'no-change', userId, orderId, reason };
  }
  return { kind: 'granted', userId, orderId, courseIds: outcome.plan.added, before: outcome.before.raw ?? null, after: outcome.after };
}

async function revoke(deps: SyncDeps, payment: Payment, reversal: boolean): Promise<PaymentChangeOutcome> {
  const { orderId, userId } = payment;
  // The index is eventually consistent: the record's own image is the truth for this order.
  const { payments } = readPayments(await deps.payments.queryByUser(userId), deps.config);
  const evidence = collectEvidence([...payments.filter((other) => other.orderId !== orderId), payment], {
    complete: true,
    reversedOrderIds: reversal ? [orderId] : [],
  });
  const outcome = await deps.users.update(userId, (snapshot) =>
    planUser(userId, snapshot.courses, evidence, REVOKE_ONLY_SCOPE, planPolicy(deps.config, deps.now())),
  );
  if (outcome.kind === 'not-found') return { kind: 'no-change', userId, orderId, reason: 'user does not exist' };
  if (outcome.kind === 'changed') {
    return { kind: 'revoked', userId, orderId, courseIds: outcome.plan.removed, before: outcome.before.raw ?? null, after: outcome.after };
  }
  const reported = outcome.plan.issues.filter((issue) => issue.kind === 'revoked').flatMap((issue) => (issue.courseId ? [issue.courseId] : []));
  if (reported.length > 0) return { kind: 'revoke-skipped-by-policy', userId, orderId, courseIds: reported };
  return { kind: 'no-change', userId, orderId, reason: 'courses still covered by another paid order, or not listed' };
}
