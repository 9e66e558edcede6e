import type { PaymentAttributes } from '../config';
import { readText, readTextList, type WireItem } from './attribute-values';

export type PaymentClass = 'paid' | 'revoked' | 'pending' | 'failed' | 'unknown';

export interface StatusRules {
  readonly paidStatuses: readonly string[];
  readonly revokedStatuses: readonly string[];
}

/** Midtrans words whose meaning does not depend on configuration. */
const PENDING = new Set(['pending', 'authorize']);
const FAILED = new Set(['deny', 'cancel', 'expire', 'failure']);
/** The customer got part of the money back and keeps the course, unless the operator lists these as revoking. */
const PARTIAL_REVERSALS = new Set(['partial_refund', 'partial_chargeback']);

/**
 * Midtrans notification semantics: `capture` is only money in hand when the fraud screen
 * accepted it (or ran none); `challenge` waits for a merchant decision, `deny` is a refusal.
 */
export function classifyStatus(status: string | undefined, fraudStatus: string | undefined, rules: StatusRules): PaymentClass {
  const word = status?.trim().toLowerCase();
  if (!word) return 'unknown';
  if (word === 'capture') {
    const fraud = fraudStatus?.trim().toLowerCase();
    if (!fraud || fraud === 'accept') return 'paid';
    if (fraud === 'challenge') return 'pending';
    if (fraud === 'deny') return 'failed';
    return 'unknown';
  }
  if (rules.paidStatuses.includes(word)) return 'paid';
  if (rules.revokedStatuses.includes(word)) return 'revoked';
  if (PARTIAL_REVERSALS.has(word)) return 'paid';
  if (PENDING.has(word)) return 'pending';
  if (FAILED.has(word)) return 'failed';
  return 'unknown';
}

export interface Payment {
  readonly orderId: string;
  readonly userId: string;
  readonly courseIds: readonly string[];
  readonly status: string;
  readonly classification: PaymentClass;
  /** Epoch milliseconds of the last change, when the item says. */
  readonly updatedAt: number | undefined;
}

export type PaymentReading =
  | { readonly ok: true; readonly payment: Payment }
  | { readonly ok: false; readonly orderId: string; readonly userId: string | undefined; readonly problem: string };

/** Reads a payment item through the attribute mapping; a payment it cannot act on is a problem, not an exception. */
export function readPayment(item: WireItem, attributes: PaymentAttributes, rules: StatusRules): PaymentReading {
  const orderId = readText(item[attributes.id]);
  const userId = readText(item[attributes.user]);
  const courseIds = readTextList(item[attributes.course]);
  const problems: string[] = [];
  // Without an order id nothing the sync writes or reports could be traced back to the payment.
  if (!orderId) problems.push(`no ${attributes.id}`);
  if (!userId) problems.push(`no ${attributes.user}`);
  if (!courseIds) problems.push(`no ${attributes.course}`);
  if (!orderId || !userId || !courseIds) return { ok: false, orderId: orderId ?? '(no order id)', userId, problem: problems.join(', ') };
  const status = readText(item[attributes.status]) ?? '';
  const updatedText = readText(item[attributes.updated]);
  const updatedAt = updatedText === undefined ? undefined : Date.parse(updatedText);
  return {
    ok: true,
    payment: {
      orderId,
      userId,
      courseIds: [...new Set(courseIds)],
      status,
      classification: classifyStatus(status, readText(item[attributes.fraud]), rules),
      updatedAt: updatedAt === undefined || Number.isNaN(updatedAt) ? undefined : updatedAt,
    },
  };
}

/**
 * In flight: changed so recently that the stream may still be delivering it. A time further
 * in the future than the window (clock skew, a local time read as UTC) counts as old, so a bad
 * stamp cannot hide a payment from every run.
 */
export function isInFlight(payment: Payment, now: number, graceMinutes: number): boolean {
  return payment.updatedAt !== undefined && Math.abs(now - payment.updatedAt) < graceMinutes * 60_000;
}
