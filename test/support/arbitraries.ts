/**
 * fast-check arbitraries and small builders for the pure rules: DynamoDB wire values, payments
 * (as items and as read payments), `purchasedCourses` entries in both formats plus malformed
 * ones and unknown fields, whole user lists, and the plan's inputs.
 */
import fc from 'fast-check';
import { DEFAULT_PAID_STATUSES, DEFAULT_REVOKED_STATUSES, type CoursesFormat } from '../../lambdas/core/config';
import type { WireItem, WireValue } from '../../lambdas/core/rules/attribute-values';
import { classifyStatus, type Payment, type StatusRules } from '../../lambdas/core/rules/payment';
import type { EvidenceOptions, PlanPolicy, PlanScope } from '../../lambdas/core/rules/plan';

export const DEFAULT_RULES: StatusRules = { paidStatuses: DEFAULT_PAID_STATUSES, revokedStatuses: DEFAULT_REVOKED_STATUSES };

/** A fixed clock for plans and the grace window. */
export const NOW = Date.parse('2025-03-01T12:00:00.000Z');
export const NOW_ISO = new Date(NOW).toISOString();
export const GRACE_MINUTES = 5;

// ---------------------------------------------------------------- words and ids

/** A small pool so that generated payments and lists collide on courses (duplicates, refunds, grants). */
export const COURSE_POOL = ['c1', 'c2', 'c3', 'c4', 'c5', 'kelas-ä', '42', ' padded '] as const;
export const courseIdArb = fc.constantFrom(...COURSE_POOL);

export const PAID_WORDS = ['settlement', 'success', 'paid', 'completed'] as const;
export const REVOKED_WORDS = ['refund', 'chargeback'] as const;
export const PENDING_WORDS = ['pending', 'authorize'] as const;
export const FAILED_WORDS = ['deny', 'cancel', 'expire', 'failure'] as const;
/** Partial reversals: the customer keeps the course (counted as paid) unless listed as revoking. */
export const PARTIAL_WORDS = ['partial_refund', 'partial_chargeback'] as const;
/** Words no default list knows: reported as `unknown`, never acted on. */
export const UNKNOWN_WORDS = ['refunded', 'settled', 'lunas', 'capture_pending', 'partial', ''] as const;

/** A word spelled as a webhook might: any letter case, blanks around it. */
export function spelledArb(word: string): fc.Arbitrary<string> {
  return fc
    .tuple(fc.array(fc.boolean(), { minLength: word.length, maxLength: word.length }), fc.constantFrom('', ' ', '\t', '  '), fc.constantFrom('', ' ', '\n'))
    .map(([upper, before, after]) => before + [...word].map((ch, i) => (upper[i] ? ch.toUpperCase() : ch.toLowerCase())).join('') + after);
}

/** A status word and its spelling. */
export const statusWordArb = fc.constantFrom(
  ...PAID_WORDS,
  ...REVOKED_WORDS,
  ...PENDING_WORDS,
  ...FAILED_WORDS,
  ...PARTIAL_WORDS,
  ...UNKNOWN_WORDS,
  'capture',
  'capture',
);
export const fraudWordArb = fc.constantFrom<string | undefined>(undefined, 'accept', 'challenge', 'deny', '', 'review');

// ---------------------------------------------------------------- wire values

const fieldNameArb = fc.oneof(
  fc.constantFrom('purchasedAt', 'orderId', 'price', 'progress', 'meta', 'title', 'source', 'grantedBy', 'CourseId', 'courseid'),
  fc.string({ minLength: 1, maxLength: 8 }).filter((name) => name !== '__proto__'),
);

/** Any DynamoDB attribute value, nested lists and maps included. */
export const wireValueArb: fc.Arbitrary<WireValue> = fc.letrec<{ value: WireValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.string({ maxLength: 10 }).map((S) => ({ S })),
    fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true })).map((n) => ({ N: String(n) })),
    fc.boolean().map((BOOL) => ({ BOOL })),
    fc.constant({ NULL: true }),
    fc.uniqueArray(fc.string({ minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 3 }).map((SS) => ({ SS })),
    fc.uniqueArray(fc.integer().map(String), { minLength: 1, maxLength: 3 }).map((NS) => ({ NS })),
    fc.uint8Array({ maxLength: 4 }).map((B) => ({ B })),
    fc.array(tie('value'), { maxLength: 3 }).map((L) => ({ L })),
    fc.dictionary(fieldNameArb, tie('value'), { maxKeys: 3 }).map((M) => ({ M })),
  ),
})).value;

/** Fields the sync does not own, never `courseId`. */
export const unknownFieldsArb: fc.Arbitrary<Record<string, WireValue>> = fc.dictionary(
  fieldNameArb.filter((name) => name !== 'courseId'),
  wireValueArb,
  { maxKeys: 4 },
);

// ---------------------------------------------------------------- list entries

export const idEntryArb: fc.Arbitrary<WireValue> = courseIdArb.map((S) => ({ S }));

/** `{ courseId, purchasedAt?, orderId?, ...unknown }`, courseId anywhere among the keys. */
export const objectEntryArb: fc.Arbitrary<WireValue> = fc
  .record({
    courseId: courseIdArb,
    purchasedAt: fc.option(fc.constantFrom('2024-01-02T03:04:05.000Z', '2023-12-31', '1700000000'), { nil: undefined }),
    orderId: fc.option(fc.constantFrom('ord-legacy-1', 'ord-legacy-2', ''), { nil: undefined }),
    unknown: unknownFieldsArb,
    courseFirst: fc.boolean(),
  })
  .map(({ courseId, purchasedAt, orderId, unknown, courseFirst }) => {
    const own: Record<string, WireValue> = {};
    if (purchasedAt !== undefined) own.purchasedAt = { S: purchasedAt };
    if (orderId !== undefined) own.orderId = { S: orderId };
    const M = courseFirst ? { courseId: { S: courseId }, ...own, ...unknown } : { ...unknown, ...own, courseId: { S: courseId } };
    return { M };
  });

/** Entries that are neither a course id string nor a map with a course id string. */
export const malformedEntryArb: fc.Arbitrary<WireValue> = fc.oneof(
  fc.integer().map((n) => ({ N: String(n) })),
  fc.constantFrom({ S: '' }, { S: '   ' }, { S: '\t\n' }, { NULL: true }, { BOOL: true }, { BOOL: false }),
  unknownFieldsArb.map((M) => ({ M })),
  fc.integer({ min: 1, max: 99 }).map((n) => ({ M: { courseId: { N: String(n) } } })),
  fc.constantFrom({ M: { courseId: { S: '' } } }, { M: { courseId: { S: '  ' } } }, { M: { courseId: { NULL: true } } }),
  courseIdArb.map((id) => ({ M: { courseId: { L: [{ S: id }] } } })),
  courseIdArb.map((id) => ({ M: { CourseId: { S: id } } })),
  fc.array(idEntryArb, { maxLength: 3 }).map((L) => ({ L })),
  fc.uniqueArray(courseIdArb, { minLength: 1, maxLength: 2 }).map((SS) => ({ SS: [...SS] })),
  fc.uint8Array({ maxLength: 3 }).map((B) => ({ B })),
);

export const listEntryArb: fc.Arbitrary<WireValue> = fc.oneof(
  { arbitrary: idEntryArb, weight: 4 },
  { arbitrary: objectEntryArb, weight: 4 },
  { arbitrary: malformedEntryArb, weight: 2 },
);

/** A `purchasedCourses` list value: strings, maps, mixed, with malformed entries. */
export const coursesListArb: fc.Arbitrary<WireValue> = fc.oneof(
  fc.array(idEntryArb, { maxLength: 8 }).map((L) => ({ L })),
  fc.array(objectEntryArb, { maxLength: 8 }).map((L) => ({ L })),
  fc.array(listEntryArb, { maxLength: 10 }).map((L) => ({ L })),
);

/** The attribute as an item may carry it: absent, NULL or a list. */
export const coursesAttributeArb: fc.Arbitrary<WireValue | undefined> = fc.oneof(
  { arbitrary: fc.constant(undefined), weight: 1 },
  { arbitrary: fc.constant<WireValue>({ NULL: true }), weight: 1 },
  { arbitrary: coursesListArb, weight: 8 },
);

/** Values that are there but are no list: never rewritten. */
export const unsupportedAttributeArb: fc.Arbitrary<WireValue> = fc.oneof(
  courseIdArb.map((S) => ({ S })),
  fc.uniqueArray(courseIdArb, { minLength: 1, maxLength: 3 }).map((SS) => ({ SS: [...SS] })),
  unknownFieldsArb.map((M) => ({ M })),
  fc.constantFrom<WireValue>({ N: '1' }, { BOOL: true }, { NULL: false }, { SS: ['c1'] }),
);

// ---------------------------------------------------------------- payments

export interface PaymentSpec {
  readonly courseIds?: readonly string[];
  readonly status?: string;
  readonly fraud?: string;
  readonly updatedAt?: number;
  readonly userId?: string;
}

/** A read payment, classified with the default rules exactly as readPayment would. */
export function payment(orderId: string, courseIds: string | readonly string[], status: string, spec: Omit<PaymentSpec, 'courseIds' | 'status'> = {}): Payment {
  return {
    orderId,
    userId: spec.userId ?? 'u1',
    courseIds: typeof courseIds === 'string' ? [courseIds] : [...courseIds],
    status,
    classification: classifyStatus(status, spec.fraud, DEFAULT_RULES),
    updatedAt: spec.updatedAt,
  };
}

/** Minutes before NOW: within GRACE_MINUTES the payment is in flight. */
const updatedAtArb = fc.option(
  fc.oneof(fc.integer({ min: 0, max: GRACE_MINUTES * 60 - 1 }), fc.integer({ min: GRACE_MINUTES * 60, max: 30 * 24 * 3600 })).map((seconds) => NOW - seconds * 1000),
  { nil: undefined },
);

const paymentSpecArb = fc.record({
  courseIds: fc.uniqueArray(courseIdArb, { minLength: 1, maxLength: 3 }),
  status: fc.oneof({ arbitrary: fc.constantFrom(...PAID_WORDS, 'capture'), weight: 3 }, { arbitrary: fc.constantFrom(...REVOKED_WORDS), weight: 3 }, { arbitrary: statusWordArb, weight: 2 }),
  fraud: fraudWordArb,
  updatedAt: updatedAtArb,
});

/** One user's payments with distinct order ids `ord-0`, `ord-1`, ... */
export const paymentsArb: fc.Arbitrary<Payment[]> = fc
  .array(paymentSpecArb, { maxLength: 7 })
  .map((specs) => specs.map((spec, i) => payment(`ord-${i}`, spec.courseIds, spec.status, { fraud: spec.fraud, updatedAt: spec.updatedAt })));

/** A payment item on the wire: course as a string, a list of strings or a string set. */
export const paymentItemArb: fc.Arbitrary<{ item: WireItem; courseIds: string[] }> = fc
  .record({
    orderId: fc.stringMatching(/^ord-[0-9a-f]{6}$/),
    userId: fc.stringMatching(/^user-[0-9a-z]{1,8}$/),
    courses: fc.uniqueArray(fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/), { minLength: 1, maxLength: 4 }),
    shape: fc.constantFrom('S', 'L', 'SS'),
    duplicate: fc.boolean(),
    status: statusWordArb.chain(spelledArb),
    fraud: fraudWordArb,
  })
  .map(({ orderId, userId, courses, shape, duplicate, status, fraud }) => {
    const course: WireValue =
      shape === 'S' ? { S: courses[0]! } : shape === 'SS' ? { SS: courses } : { L: [...courses, ...(duplicate ? courses : [])].map((S) => ({ S })) };
    const item: WireItem = { orderId: { S: orderId }, userId: { S: userId }, courseId: course, status: { S: status } };
    if (fraud !== undefined) item.fraudStatus = { S: fraud };
    return { item, courseIds: shape === 'S' ? [courses[0]!] : courses };
  });

// ---------------------------------------------------------------- plan inputs

export const scopeArb: fc.Arbitrary<PlanScope> = fc.record({ grant: fc.boolean(), dedupe: fc.boolean(), revoke: fc.boolean(), unbacked: fc.boolean() });

export const policyArb: fc.Arbitrary<PlanPolicy> = fc.record({
  revokeOnRefund: fc.boolean(),
  format: fc.constantFrom<CoursesFormat>('auto', 'ids', 'objects'),
  now: fc.constant(NOW_ISO),
});

export interface PlanCase {
  readonly attribute: WireValue | undefined;
  readonly payments: Payment[];
  readonly evidence: EvidenceOptions;
  readonly scope: PlanScope;
  readonly policy: PlanPolicy;
}

/** Everything planUser is given, with the grace window on or off and some stream reversals. */
export const planCaseArb: fc.Arbitrary<PlanCase> = fc
  .record({
    attribute: coursesAttributeArb,
    payments: paymentsArb,
    complete: fc.oneof({ arbitrary: fc.constant(true), weight: 2 }, { arbitrary: fc.constant(false), weight: 1 }),
    withGrace: fc.boolean(),
    reversedMask: fc.array(fc.boolean(), { minLength: 7, maxLength: 7 }),
    scope: scopeArb,
    policy: policyArb,
  })
  .map(({ attribute, payments, complete, withGrace, reversedMask, scope, policy }) => ({
    attribute,
    payments,
    evidence: {
      complete,
      ...(withGrace ? { grace: { now: NOW, graceMinutes: GRACE_MINUTES } } : {}),
      reversedOrderIds: payments.filter((_, i) => reversedMask[i] === true).map((p) => p.orderId),
    },
    scope,
    policy,
  }));
