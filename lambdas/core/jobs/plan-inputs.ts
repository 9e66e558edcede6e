import type { SyncConfig } from '../config';
import { readPayment, type Payment } from '../rules/payment';
import type { WireItem } from '../rules/attribute-values';
import type { Issue, PlanPolicy } from '../rules/plan';

/**
 * What every job hands the one decision function (`planUser`) besides the user's list, and
 * the report lines that come from the payments alone: payment items read through the
 * attribute mapping (with `malformed-payment` and `unknown-status` lines), the policy a job
 * plans under, and `orphan-payment` lines for a user who does not exist.
 */

/** The plan policy a job runs under; `revokeOnRefund` may be narrowed by a run's revocation cap. */
export function planPolicy(config: SyncConfig, now: number, revokeOnRefund = config.revokeOnRefund): PlanPolicy {
  return { revokeOnRefund, format: config.coursesFormat, now: new Date(now).toISOString() };
}

export interface ReadPayments {
  readonly payments: Payment[];
  /** Report-only lines about the payments themselves: `malformed-payment` and `unknown-status`. */
  readonly problems: Issue[];
}

/** Names the value no rule knows: the status, or for `capture` the fraud status that decides it. */
function unknownStatusDetail(item: WireItem, config: SyncConfig): string {
  const status = item[config.payment.status];
  if (status?.S?.trim().toLowerCase() === 'capture') {
    return `status "capture" with ${config.payment.fraud} ${JSON.stringify(item[config.payment.fraud] ?? null)}, which the rules do not know (accept, challenge, deny); the payment grants nothing`;
  }
  return `status ${JSON.stringify(status ?? null)} is not one the rules know; the payment grants nothing`;
}

/**
 * Reads payment items through the mapping; the unreadable ones become `malformed-payment`
 * lines, and a status no rule knows an `unknown-status` line (the payment grants nothing).
 */
export function readPayments(items: readonly WireItem[], config: SyncConfig): ReadPayments {
  const payments: Payment[] = [];
  const problems: Issue[] = [];
  for (const item of items) {
    const reading = readPayment(item, config.payment, config);
    if (reading.ok) {
      payments.push(reading.payment);
      const { payment } = reading;
      if (payment.classification === 'unknown') {
        problems.push({
          kind: 'unknown-status',
          userId: payment.userId,
          orderIds: [payment.orderId],
          fix: 'none',
          detail: unknownStatusDetail(item, config),
        });
      }
    } else {
      problems.push({
        kind: 'malformed-payment',
        userId: reading.userId,
        orderIds: [reading.orderId],
        fix: 'none',
        detail: reading.problem,
      });
    }
  }
  return { payments, problems };
}

/** `orphan-payment` lines: paid payments whose user item does not exist. No user is ever created. */
export function orphanIssues(userId: string, payments: readonly Payment[]): Issue[] {
  return payments
    .filter((payment) => payment.classification === 'paid')
    .map((payment) => ({
      kind: 'orphan-payment' as const,
      userId,
      orderIds: [payment.orderId],
      fix: 'none' as const,
      detail: `paid for ${payment.courseIds.join(', ')} but the user does not exist`,
    }));
}
