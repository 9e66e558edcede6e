import { DEFAULT_PAID_STATUSES, DEFAULT_REVOKED_STATUSES } from '../core/config';

/** Midtrans' card status whose meaning depends on the fraud status: the handler decides, so it passes. */
const CAPTURE_STATUS = 'capture';
/** Midtrans reverses some settlements by moving them to `deny`: evidence for a revocation. */
const REVERSAL_STATUS = 'deny';
/** Lambda's limit on one filter pattern. */
const MAX_PATTERN_LENGTH = 4096;

/** The statuses would not fit in one Lambda filter pattern. */
export class FilterPatternTooLongError extends Error {
  override readonly name = 'FilterPatternTooLongError';
  constructor(readonly length: number) {
    super(`The stream filter pattern is ${length} characters; Lambda accepts at most ${MAX_PATTERN_LENGTH}`);
  }
}

/**
 * Lambda filters compare strings case-sensitively, and the webhook stores statuses as
 * Midtrans or the app wrote them: lower case, UPPER case or Capitalized.
 */
function caseVariants(status: string): string[] {
  const lower = status.toLowerCase();
  return [...new Set([lower, lower.toUpperCase(), lower.charAt(0).toUpperCase() + lower.slice(1)])];
}

/**
 * Event source mapping filter patterns: only INSERT and MODIFY records whose NEW status is
 * one that can change access (paid, capture, revoked, or the paid → deny reversal) reach the
 * function. Everything else (pending, expire, REMOVE, ...) never writes, so it is not worth
 * an invocation. Whether a kept record actually grants or revokes is the handler's decision.
 */
export function streamFilterPatterns(
  paidStatuses: string[],
  revokedStatuses: string[],
  statusAttr: string,
): Array<Record<string, unknown>> {
  const statuses = [...new Set([...paidStatuses, CAPTURE_STATUS, ...revokedStatuses, REVERSAL_STATUS].map((s) => s.toLowerCase()))];
  const pattern = {
    eventName: ['INSERT', 'MODIFY'],
    dynamodb: { NewImage: { [statusAttr]: { S: statuses.flatMap(caseVariants) } } },
  };
  const length = JSON.stringify(pattern).length;
  if (length > MAX_PATTERN_LENGTH) throw new FilterPatternTooLongError(length);
  return [pattern];
}

/** The patterns for the contract's defaults (PAID_STATUSES, REVOKED_STATUSES, PAYMENT_STATUS_ATTR unset). */
export const STREAM_FILTER_PATTERNS = streamFilterPatterns(
  [...DEFAULT_PAID_STATUSES],
  [...DEFAULT_REVOKED_STATUSES],
  'status',
);
