import { PutItemCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import type { Context, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { ManualSyncEventSchema, ManualValidateEventSchema, parseEvent } from '../../lambdas/commons/events';
import { createSyncDeps, type SyncDeps } from '../../lambdas/core/deps';
import { InvalidEventError } from '../../lambdas/core/errors';
import { reconcileUsers } from '../../lambdas/core/jobs/user-reconcile';
import type { IssueLine } from '../../lambdas/core/report/report';
import type { WireItem, WireValue } from '../../lambdas/core/rules/attribute-values';
import { createStreamHandler, type StreamTelemetry } from '../../lambdas/stream/stream-batch';
import { startFaultProxy, type FaultProxy } from '../../scripts/local/fault-proxy';
import { fullRun, removeRunFolders, type FullRunOutcome } from '../support/full-run';
import { courseIdsOf, LONG_AGO, startTestTables, type TestTables } from '../support/local-tables';
import { loadHandler, configError, type Handler } from '../support/lambda';

/**
 * A catalogue of bad input, one table per kind of input. Every case states the answer it
 * expects (an error naming the problem, or a report line of the right kind) and checks that
 * nothing was written where nothing should be.
 */

afterAll(removeRunFolders);

const S = (text: string): WireValue => ({ S: text });
const series = (count: number, prefix: string): WireValue[] => Array.from({ length: count }, (_, i) => S(`${prefix}-${i}`));

/** The report lines of one kind about one order. */
const linesOf = (outcome: FullRunOutcome, kind: IssueLine['kind'], orderId: string) =>
  outcome.issues.filter((line) => line.kind === kind && line.orderIds.includes(orderId));

/** Every course id listed by any user of a dump. */
const everyListedCourse = (users: readonly WireItem[]) => users.flatMap((item) => courseIdsOf(item.purchasedCourses));

// ---------------------------------------------------------------------------------------------
// 1. Malformed payments in a full run
// ---------------------------------------------------------------------------------------------

const BUYER = 'buyer';
const COLLECTOR = 'collector';

type PaymentFields = Partial<Record<'userId' | 'courseId' | 'status' | 'fraudStatus' | 'updatedAt', WireValue | undefined>>;

/** A payment of BUYER for `c-<orderId>`, settled long ago, with fields replaced (undefined = attribute absent). */
function paymentItem(orderId: string, fields: PaymentFields): WireItem {
  const item: WireItem = { orderId: S(orderId), userId: S(BUYER), courseId: S(`c-${orderId}`), status: S('settlement'), updatedAt: S(LONG_AGO) };
  for (const [name, value] of Object.entries(fields)) {
    if (value === undefined) delete item[name];
    else item[name] = value;
  }
  return item;
}

interface RefusedPayment {
  readonly order: string;
  readonly fields: PaymentFields;
  readonly kind: 'malformed-payment' | 'unknown-status' | 'orphan-payment';
  /** The order id the line names (differs from the key only when the key is unreadable). */
  readonly label?: string;
  readonly userId: string | undefined;
  readonly detail: RegExp;
  /** Courses that must not be granted to anyone. */
  readonly courses?: readonly string[];
}

const REFUSED_PAYMENTS: ReadonlyArray<[string, RefusedPayment]> = [
  ['an order id of blanks only', { order: '   ', fields: { courseId: S('c-blank-order') }, kind: 'malformed-payment', label: '(no order id)', userId: BUYER, detail: /^no orderId$/, courses: ['c-blank-order'] }],
  ['an empty user id', { order: 'o-user-empty', fields: { userId: S('') }, kind: 'malformed-payment', userId: undefined, detail: /^no userId$/ }],
  ['a user id of blanks only', { order: 'o-user-blank', fields: { userId: S(' \t ') }, kind: 'malformed-payment', userId: undefined, detail: /^no userId$/ }],
  ['no user id', { order: 'o-user-none', fields: { userId: undefined }, kind: 'malformed-payment', userId: undefined, detail: /^no userId$/ }],
  ['no user id and no course', { order: 'o-nothing', fields: { userId: undefined, courseId: undefined }, kind: 'malformed-payment', userId: undefined, detail: /^no userId, no courseId$/ }],
  ['no course attribute', { order: 'o-course-none', fields: { courseId: undefined }, kind: 'malformed-payment', userId: BUYER, detail: /^no courseId$/ }],
  ['an empty course list', { order: 'o-course-empty', fields: { courseId: { L: [] } }, kind: 'malformed-payment', userId: BUYER, detail: /^no courseId$/ }],
  ['a nested course list', { order: 'o-course-nested', fields: { courseId: { L: [{ L: [S('c-nested')] }] } }, kind: 'malformed-payment', userId: BUYER, detail: /^no courseId$/, courses: ['c-nested'] }],
  ['a NULL inside the course list', { order: 'o-course-null', fields: { courseId: { L: [S('c-beside-null'), { NULL: true }] } }, kind: 'malformed-payment', userId: BUYER, detail: /^no courseId$/, courses: ['c-beside-null'] }],
  ['a course id of blanks only', { order: 'o-course-blank', fields: { courseId: S('   ') }, kind: 'malformed-payment', userId: BUYER, detail: /^no courseId$/ }],
  ['a boolean course id', { order: 'o-course-bool', fields: { courseId: { BOOL: true } }, kind: 'malformed-payment', userId: BUYER, detail: /^no courseId$/ }],
  ['a map as course id', { order: 'o-course-map', fields: { courseId: { M: { courseId: S('c-in-map') } } }, kind: 'malformed-payment', userId: BUYER, detail: /^no courseId$/, courses: ['c-in-map'] }],
  [
    '500 courses, the last one not a string',
    { order: 'o-course-500-bad', fields: { courseId: { L: [...series(499, 'c-bulk'), { BOOL: false }] } }, kind: 'malformed-payment', userId: BUYER, detail: /^no courseId$/, courses: ['c-bulk-0', 'c-bulk-498'] },
  ],
  ['status NULL', { order: 'o-status-null', fields: { status: { NULL: true } }, kind: 'unknown-status', userId: BUYER, detail: /"NULL":true/ }],
  ['status a number', { order: 'o-status-number', fields: { status: { N: '200' } }, kind: 'unknown-status', userId: BUYER, detail: /"N":"200"/ }],
  ['status a list', { order: 'o-status-list', fields: { status: { L: [S('settlement')] } }, kind: 'unknown-status', userId: BUYER, detail: /"L":/ }],
  ['an unknown status word (settled)', { order: 'o-status-settled', fields: { status: S('settled') }, kind: 'unknown-status', userId: BUYER, detail: /settled/ }],
  ['an empty status', { order: 'o-status-empty', fields: { status: S('') }, kind: 'unknown-status', userId: BUYER, detail: /\{"S":""\}/ }],
  ['no status at all', { order: 'o-status-none', fields: { status: undefined }, kind: 'unknown-status', userId: BUYER, detail: /status null/ }],
  ['capture with an unknown fraud status (review)', { order: 'o-capture-review', fields: { status: S('capture'), fraudStatus: S('review') }, kind: 'unknown-status', userId: BUYER, detail: /capture/ }],
  ['a user id padded with spaces (no such user)', { order: 'o-user-padded', fields: { userId: S(' buyer ') }, kind: 'orphan-payment', userId: ' buyer ', detail: /does not exist/ }],
];

interface AcceptedPayment {
  readonly order: string;
  readonly fields: PaymentFields;
  readonly userId: string;
  readonly granted: readonly string[];
}

/** Odd but readable payments: the rules accept them, so they grant. */
const ACCEPTED_PAYMENTS: ReadonlyArray<[string, AcceptedPayment]> = [
  ['a number course id (read as its text)', { order: 'o-course-number', fields: { courseId: { N: '101' } }, userId: BUYER, granted: ['101'] }],
  ['course ids as a string set', { order: 'o-course-set', fields: { courseId: { SS: ['c-set-1', 'c-set-2'] } }, userId: BUYER, granted: ['c-set-1', 'c-set-2'] }],
  ['a status with capitals and spaces', { order: 'o-status-padded', fields: { status: S(' Settlement ') }, userId: BUYER, granted: ['c-o-status-padded'] }],
  ['an unreadable updatedAt (counts as old, not in flight)', { order: 'o-updated-garbage', fields: { updatedAt: S('yesterday') }, userId: BUYER, granted: ['c-o-updated-garbage'] }],
  ['the same course 500 times', { order: 'o-course-500-same', fields: { courseId: { L: Array.from({ length: 500 }, () => S('c-same')) } }, userId: BUYER, granted: ['c-same'] }],
  [
    '500 distinct courses in one payment',
    { order: 'o-course-500', fields: { userId: S(COLLECTOR), courseId: { L: series(500, 'c-lot') } }, userId: COLLECTOR, granted: Array.from({ length: 500 }, (_, i) => `c-lot-${i}`) },
  ],
];

describe('1. malformed payments in a full run (validate, then fix)', () => {
  let tables: TestTables;
  let deps: SyncDeps;
  let before: { users: WireItem[]; payments: WireItem[] };
  let validate: FullRunOutcome;
  let afterValidate: WireItem[];
  let fix: FullRunOutcome;
  let afterFix: { users: WireItem[]; payments: WireItem[] };

  beforeAll(async () => {
    tables = await startTestTables();
    deps = createSyncDeps(tables.config, tables.client);
    await tables.putUser(BUYER, { L: [S('keep')] }, { email: S('buyer@example.com') });
    await tables.putUser(COLLECTOR, { L: [] });
    // A good payment, so that BUYER is a repair candidate of the fix run.
    await tables.putPayment('o-good', { userId: BUYER, courseId: 'c-good', status: 'settlement' });
    for (const [, { order, fields }] of [...REFUSED_PAYMENTS, ...ACCEPTED_PAYMENTS]) {
      await tables.client.send(new PutItemCommand({ TableName: tables.config.paymentsTable, Item: paymentItem(order, fields) as Record<string, AttributeValue> }));
    }
    before = { users: await tables.dump('users'), payments: await tables.dump('payments') };
    validate = await fullRun(deps, 'validate');
    afterValidate = await tables.dump('users');
    fix = await fullRun(deps, 'fix');
    afterFix = { users: await tables.dump('users'), payments: await tables.dump('payments') };
  });
  afterAll(() => tables.close());

  test.each(REFUSED_PAYMENTS)('%s: named by its own line, grants nothing', (_name, { order, kind, label, userId, detail, courses }) => {
    const orderId = label ?? order;
    const [line, ...more] = linesOf(validate, kind, orderId);
    expect(more).toEqual([]);
    expect(line).toMatchObject({ kind, orderIds: [orderId], fix: 'none', applied: false, detail: expect.stringMatching(detail) });
    expect(line?.userId).toBe(userId);
    // The fix reports it too, and acts on nothing it says.
    expect(linesOf(fix, kind, orderId).length).toBeGreaterThanOrEqual(1);
    expect(linesOf(fix, kind, orderId).every((found) => !found.applied)).toBe(true);
    expect(fix.issues.filter((found) => found.kind === 'missing' && found.orderIds.includes(orderId))).toEqual([]);
    const listed = everyListedCourse(afterFix.users);
    for (const courseId of [...(courses ?? []), `c-${order}`]) expect(listed).not.toContain(courseId);
  });

  test.each(ACCEPTED_PAYMENTS)('%s: accepted and granted once', (_name, { order, userId, granted }) => {
    for (const kind of ['malformed-payment', 'unknown-status'] as const) expect(linesOf(validate, kind, order)).toEqual([]);
    const missing = linesOf(validate, 'missing', order);
    expect(missing.map((line) => line.courseId).sort()).toEqual([...granted].sort());
    expect(missing.every((line) => line.userId === userId)).toBe(true);
    const listed = courseIdsOf(afterFix.users.find((item) => item.userId?.S === userId)?.purchasedCourses);
    for (const courseId of granted) expect(listed.filter((id) => id === courseId)).toEqual([courseId]);
  });

  test('both runs complete; validation writes nothing; the fix writes only the two users with readable paid orders, appending', () => {
    expect(validate.result.status).toBe('completed');
    expect(fix.result.status).toBe('completed');
    expect(validate.result.issues.error).toBe(0);
    expect(fix.result.issues.error).toBe(0);
    expect(afterValidate).toEqual(before.users);
    expect(afterFix.payments).toEqual(before.payments);
    expect([...new Set(fix.changes.map((change) => change.userId))].sort()).toEqual([BUYER, COLLECTOR]);
    const buyer = afterFix.users.find((item) => item.userId?.S === BUYER);
    expect(buyer?.email).toEqual(S('buyer@example.com'));
    expect(buyer?.purchasedCourses?.L?.[0]).toEqual(S('keep'));
    const expected = ['keep', 'c-good', ...ACCEPTED_PAYMENTS.filter(([, c]) => c.userId === BUYER).flatMap(([, c]) => c.granted)];
    expect(courseIdsOf(buyer?.purchasedCourses).sort()).toEqual(expected.sort());
    // No user is created for any payment, however its user id is spelt.
    expect(afterFix.users.map((item) => item.userId?.S)).toEqual(before.users.map((item) => item.userId?.S));
  });

  // A fix run's candidates are reported by the repair from a fresh read, their payments'
  // problems included; the plan stage must not report them too.
  test('a fix run reports each malformed-payment and unknown-status line once, as the validation does', () => {
    for (const kind of ['malformed-payment', 'unknown-status'] as const) {
      expect(fix.result.issues[kind]).toBe(validate.result.issues[kind]);
      const orders = fix.issues.filter((line) => line.kind === kind).map((line) => line.orderIds.join(','));
      expect(orders.length).toBe(new Set(orders).size);
    }
  });

  // `capture` is known; the line names the fraud status that no rule knows.
  test('capture with an unknown fraud status: the line names the fraud status it saw', () => {
    expect(linesOf(validate, 'unknown-status', 'o-capture-review')[0]?.detail).toMatch(/review/);
  });

  test.each<[string, WireValue]>([
    ['a number', { N: '42' }],
    ['a map', { M: { id: S(BUYER) } }],
    ['NULL', { NULL: true }],
  ])('a payment whose user id is %s never reaches a run: the by-user index refuses the write', async (_name, userId) => {
    const item = paymentItem('o-refused-by-index', { userId });
    await expect(tables.client.send(new PutItemCommand({ TableName: tables.config.paymentsTable, Item: item as Record<string, AttributeValue> }))).rejects.toThrow(
      expect.objectContaining({ name: 'ValidationException', message: expect.stringMatching(/Index Key userId/) }),
    );
    expect(await tables.dump('payments')).toEqual(before.payments);
  });
});

// ---------------------------------------------------------------------------------------------
// 2. Malformed user lists
// ---------------------------------------------------------------------------------------------

/** Attributes that are not lists: one malformed-entry line, nothing ever written. */
const NON_LISTS: ReadonlyArray<[string, WireValue]> = [
  ['a string', S('c1,c2')],
  ['a number', { N: '3' }],
  ['a map', { M: { c1: { BOOL: true } } }],
  ['a string set', { SS: ['c0', 'c1'] }],
  ['a boolean', { BOOL: true }],
];

/** Lists with entries that are neither a course id nor a map with one: reported, kept exactly, grants appended. */
const BAD_ENTRY_LISTS: ReadonlyArray<[string, WireValue, number]> = [
  ['NULL entries', { L: [{ NULL: true }, S('c0'), { NULL: true }] }, 2],
  ['a nested list', { L: [{ L: [S('c0')] }, S('c2')] }, 1],
  ['a map entry without courseId', { L: [{ M: { title: S('Intro'), purchasedAt: S(LONG_AGO) } }] }, 1],
  ['a map entry with a number courseId', { L: [{ M: { courseId: { N: '7' } } }, { M: { courseId: S('c0'), purchasedAt: S(LONG_AGO) } }] }, 1],
  ['a map entry with a blank courseId', { L: [{ M: { courseId: S(' ') } }, S('c0')] }, 1],
  ['a map entry whose courseId is a list holding the paid course', { L: [{ M: { courseId: { L: [S('c1')] } } }] }, 1],
  ['a boolean entry and an empty string entry', { L: [{ BOOL: false }, S('')] }, 2],
];

describe('2. malformed purchasedCourses (validate, then fix; each user has a paid order for c1)', () => {
  let tables: TestTables;
  let before: WireItem[];
  let validate: FullRunOutcome;
  let afterValidate: WireItem[];
  let fix: FullRunOutcome;
  let afterFix: WireItem[];
  const item = (users: readonly WireItem[], userId: string) => users.find((found) => found.userId?.S === userId);
  const malformedLines = (outcome: FullRunOutcome, userId: string) => outcome.issues.filter((line) => line.kind === 'malformed-entry' && line.userId === userId);

  beforeAll(async () => {
    tables = await startTestTables();
    const deps = createSyncDeps(tables.config, tables.client);
    const seed = async (userId: string, courses: WireValue) => {
      await tables.putUser(userId, courses, { email: S(`${userId}@example.com`) });
      await tables.putPayment(`o-${userId}`, { userId, courseId: 'c1', status: 'settlement' });
    };
    for (const [i, [, list]] of NON_LISTS.entries()) await seed(`non-list-${i}`, list);
    for (const [i, [, list]] of BAD_ENTRY_LISTS.entries()) await seed(`bad-entries-${i}`, list);
    await seed('listed-beside-null', { L: [S('c1'), { NULL: true }] });
    await seed('null-attribute', { NULL: true });
    before = await tables.dump('users');
    validate = await fullRun(deps, 'validate');
    afterValidate = await tables.dump('users');
    fix = await fullRun(deps, 'fix');
    afterFix = await tables.dump('users');
  });
  afterAll(() => tables.close());

  test('validation writes nothing; both runs complete without errors', () => {
    expect(afterValidate).toEqual(before);
    for (const outcome of [validate, fix]) {
      expect(outcome.result.status).toBe('completed');
      expect(outcome.result.issues.error).toBe(0);
    }
  });

  test.each(NON_LISTS.map(([name, list], i) => [name, list, `non-list-${i}`] as const))('courses attribute is %s: one malformed-entry line, the item never written', (_name, list, userId) => {
    for (const outcome of [validate, fix]) {
      const lines = malformedLines(outcome, userId);
      expect(lines).toEqual([expect.objectContaining({ fix: 'none', applied: false, detail: expect.stringMatching(/not a list/) })]);
      expect(lines[0]?.detail).toContain(JSON.stringify(list));
    }
    expect(item(afterFix, userId)).toEqual(item(before, userId));
    expect(fix.changes.filter((change) => change.userId === userId)).toEqual([]);
  });

  test.each(BAD_ENTRY_LISTS.map(([name, list, count], i) => [name, list, count, `bad-entries-${i}`] as const))(
    'a list with %s: each bad entry one line, kept exactly; only the grant is appended',
    (_name, list, count, userId) => {
      for (const outcome of [validate, fix]) {
        expect(malformedLines(outcome, userId)).toHaveLength(count);
        expect(malformedLines(outcome, userId).every((line) => line.fix === 'none' && !line.applied && line.detail.startsWith('entry left as is'))).toBe(true);
      }
      expect(linesOf(validate, 'missing', `o-${userId}`)).toEqual([expect.objectContaining({ userId, courseId: 'c1' })]);
      const after = item(afterFix, userId);
      const entries = after?.purchasedCourses?.L ?? [];
      expect(entries.slice(0, list.L?.length)).toEqual(list.L);
      expect(courseIdsOf({ L: entries.slice(list.L?.length) })).toEqual(['c1']);
      expect(after?.email).toEqual(S(`${userId}@example.com`));
    },
  );

  test('a list that already holds the paid course next to a NULL entry: reported, never written', () => {
    expect(malformedLines(validate, 'listed-beside-null')).toHaveLength(1);
    expect(malformedLines(fix, 'listed-beside-null')).toHaveLength(1);
    expect(item(afterFix, 'listed-beside-null')).toEqual(item(before, 'listed-beside-null'));
  });

  // The product reads a NULL attribute as "no list yet" (courses-list.ts decodeCourses), not
  // as malformed: the fix writes a new list in its place. Recorded here as the behaviour.
  test('a NULL courses attribute counts as no list: no malformed line, the grant writes a new list', () => {
    expect(malformedLines(validate, 'null-attribute')).toEqual([]);
    expect(linesOf(validate, 'missing', 'o-null-attribute')).toHaveLength(1);
    expect(item(afterFix, 'null-attribute')?.purchasedCourses).toEqual({ L: [S('c1')] });
    expect(fix.changes.find((change) => change.userId === 'null-attribute')?.before).toEqual({ NULL: true });
  });
});

// ---------------------------------------------------------------------------------------------
// 3. Bad manual events for sync and validate
// ---------------------------------------------------------------------------------------------


const context = { functionName: 'payment-sync-bad-input', awsRequestId: 'req-bad-input', getRemainingTimeInMillis: () => 300_000 } as unknown as Context;


const EVENT_CASES: ReadonlyArray<[string, 'sync' | 'validate', unknown, RegExp]> = [
  ['sync: only dryRun, no userIds', 'sync', { dryRun: true }, /userIds/],
  ['sync: userIds null', 'sync', { userIds: null }, /userIds/],
  ['sync: an empty list with dryRun', 'sync', { userIds: [], dryRun: true }, /userIds: userIds must name at least one user/],
  ['sync: a null id', 'sync', { userIds: ['u1', null] }, /userIds\.1/],
  ['sync: an object as id', 'sync', { userIds: [{ userId: 'u1' }] }, /userIds\.0/],
  ['sync: a tab-and-newline id', 'sync', { userIds: ['u1', '\t\n'] }, /userIds\.1: user ids must be non-empty strings/],
  ['sync: 1001 ids, all the same', 'sync', { userIds: Array.from({ length: 1001 }, () => 'u1') }, /userIds: at most 1000 user ids/],
  ['sync: dryRun the string "false"', 'sync', { userIds: ['u1'], dryRun: 'false' }, /dryRun/],
  ['sync: dryRun null', 'sync', { userIds: ['u1'], dryRun: null }, /dryRun/],
  ['sync: DryRun capitalised (unknown field)', 'sync', { userIds: ['u1'], DryRun: true }, /DryRun/],
  ['sync: a __proto__ key from JSON', 'sync', JSON.parse('{"userIds":["u1"],"__proto__":{"dryRun":true}}') as unknown, /__proto__/],
  ['sync: a null event', 'sync', null, /^Invalid event: event: /],
  ['sync: an array event', 'sync', [{ userIds: ['u1'] }], /^Invalid event: event: /],
  ['sync: the event as a JSON string', 'sync', '{"userIds":["u1"]}', /^Invalid event: event: /],
  ['validate: userIds a string', 'validate', { userIds: 'u1' }, /userIds/],
  ['validate: a number among the ids', 'validate', { userIds: ['u1', 7] }, /userIds\.1/],
  ['validate: deep a number', 'validate', { deep: 1 }, /deep/],
  ['validate: userIds null', 'validate', { userIds: null }, /userIds/],
  ['validate: a null event', 'validate', null, /^Invalid event: event: /],
  ['validate: an array event', 'validate', [], /^Invalid event: event: /],
  ['validate: the event as a string', 'validate', 'validate u1', /^Invalid event: event: /],
];

describe('3. bad manual events: refused with InvalidEventError before anything is read or written', () => {
  let tables: TestTables;
  let proxy: FaultProxy;
  let savedEnv: NodeJS.ProcessEnv;
  const handlers: Partial<Record<'sync' | 'validate', Handler>> = {};

  beforeAll(async () => {
    savedEnv = { ...process.env };
    tables = await startTestTables();
    // The handlers talk to dynalite through a proxy that counts every request they make.
    proxy = await startFaultProxy(tables.endpoint, { throttleRate: 0 });
    const env = { ...tables.env, DYNAMODB_ENDPOINT: proxy.endpoint };
    handlers.sync = await loadHandler('../../lambdas/sync/handler', env);
    handlers.validate = await loadHandler('../../lambdas/validate/handler', env);
    await tables.putUser('u1', { L: [S('c1'), S('c1')] });
    await tables.putPayment('o1', { userId: 'u1', courseId: 'c2', status: 'settlement' });
  });
  afterAll(async () => {
    process.env = savedEnv;
    await proxy.close();
    await tables.close();
  });

  test.each(EVENT_CASES)('%s', async (_name, which, event, field) => {
    const users = await tables.dump('users');
    const requests = proxy.stats.requests;
    let parsed: unknown;
    try {
      if (which === 'sync') parseEvent(ManualSyncEventSchema, event);
      else parseEvent(ManualValidateEventSchema, event);
    } catch (error) {
      parsed = error;
    }
    expect(parsed).toBeInstanceOf(InvalidEventError);
    expect((parsed as InvalidEventError).message).toMatch(field);
    // The handler answers with the same error (its own module copy of the class, hence by name).
    await expect((handlers[which] as Handler)(event, context)).rejects.toThrow(expect.objectContaining({ name: 'InvalidEventError', message: (parsed as Error).message }));
    expect(proxy.stats.requests).toBe(requests);
    expect(await tables.dump('users')).toEqual(users);
  });

  test('control: a good dry-run event does reach the tables through the counting proxy, and writes nothing', async () => {
    const users = await tables.dump('users');
    const requests = proxy.stats.requests;
    const answer = (await (handlers.sync as Handler)({ userIds: ['u1'], dryRun: true }, context)) as { results: Array<{ status: string }> };
    expect(answer.results[0]?.status).toBe('would-fix');
    expect(proxy.stats.requests).toBeGreaterThan(requests);
    expect(await tables.dump('users')).toEqual(users);
  });

  test('an id past DynamoDB’s 2048-byte key limit passes the schema and is answered per user with the reason; the rest is answered', async () => {
    const users = await tables.dump('users');
    const answer = (await (handlers.sync as Handler)({ userIds: ['x'.repeat(2049), 'u1'], dryRun: true }, context)) as { results: Array<{ status: string; error?: string }> };
    expect(answer.results[0]).toMatchObject({ status: 'error', error: expect.stringMatching(/ValidationException: .*2048 bytes/) });
    expect(answer.results[1]).toMatchObject({ status: 'would-fix' });
    expect(await tables.dump('users')).toEqual(users);
  });
});

// ---------------------------------------------------------------------------------------------
// 4. Bad stream records through the stream handler, with real dependencies
// ---------------------------------------------------------------------------------------------

/** Records what the handler logs and publishes, instead of printing EMF. */
class RecordingTelemetry implements StreamTelemetry {
  readonly counters: Record<string, number> = {};
  readonly logs: Array<{ level: string; text: string }> = [];
  private readonly log = (level: string) => (message: string, extra: Record<string, unknown>) => void this.logs.push({ level, text: `${message} ${JSON.stringify(extra)}` });
  readonly logger = { info: this.log('info'), warn: this.log('warn'), error: this.log('error'), addContext: () => undefined };
  readonly metrics = {
    addMetric: (name: string, _unit: unknown, value: number) => void (this.counters[name] = (this.counters[name] ?? 0) + value),
    publishStoredMetrics: () => undefined,
  };
}

let sequence = 0;
function streamRecord(eventName: unknown, dynamodb: Record<string, unknown>): DynamoDBRecord {
  sequence += 1;
  return { eventName, eventSource: 'aws:dynamodb', dynamodb: { SequenceNumber: String(sequence), ...dynamodb } } as unknown as DynamoDBRecord;
}

/** A settled payment of u1 for c-new, with attributes replaced (undefined = absent). */
function streamImage(orderId: string, fields: Record<string, WireValue | undefined> = {}): WireItem {
  const item: WireItem = { orderId: S(orderId), userId: S('u1'), courseId: S('c-new'), status: S('settlement') };
  for (const [name, value] of Object.entries(fields)) {
    if (value === undefined) delete item[name];
    else item[name] = value;
  }
  return item;
}

interface StreamExpectation {
  readonly malformed?: number;
  readonly orphans?: number;
  readonly level: 'info' | 'warn';
  readonly text: RegExp;
}

const STREAM_CASES: ReadonlyArray<[string, () => DynamoDBRecord, StreamExpectation]> = [
  ['an unknown event name (UPSERT)', () => streamRecord('UPSERT', { NewImage: streamImage('s-upsert') }), { malformed: 1, level: 'warn', text: /event name UPSERT/ }],
  ['no event name', () => streamRecord(undefined, { NewImage: streamImage('s-no-name') }), { malformed: 1, level: 'warn', text: /event name undefined/ }],
  ['a lower-case event name (insert)', () => streamRecord('insert', { NewImage: streamImage('s-lower') }), { malformed: 1, level: 'warn', text: /event name insert/ }],
  ['NewImage a string', () => streamRecord('INSERT', { NewImage: 'orderId=s-string' }), { malformed: 1, level: 'warn', text: /NewImage does not unmarshal/ }],
  ['NewImage a list of items', () => streamRecord('INSERT', { NewImage: [streamImage('s-array')] }), { malformed: 1, level: 'warn', text: /NewImage does not unmarshal/ }],
  ['NewImage null', () => streamRecord('MODIFY', { NewImage: null }), { malformed: 1, level: 'warn', text: /NewImage does not unmarshal/ }],
  ['OldImage unreadable beside a good NewImage', () => streamRecord('MODIFY', { OldImage: 'junk', NewImage: streamImage('s-old-junk') }), { malformed: 1, level: 'warn', text: /OldImage does not unmarshal/ }],
  ['an image with no userId', () => streamRecord('INSERT', { NewImage: streamImage('s-no-user', { userId: undefined }) }), { malformed: 1, level: 'warn', text: /s-no-user.*no userId/ }],
  ['an image with an empty userId', () => streamRecord('INSERT', { NewImage: streamImage('s-empty-user', { userId: S('') }) }), { malformed: 1, level: 'warn', text: /s-empty-user.*no userId/ }],
  ['an image with a NULL userId', () => streamRecord('INSERT', { NewImage: streamImage('s-null-user', { userId: { NULL: true } }) }), { malformed: 1, level: 'warn', text: /s-null-user.*no userId/ }],
  ['an image with no orderId', () => streamRecord('INSERT', { NewImage: streamImage('ignored', { orderId: undefined }) }), { malformed: 1, level: 'warn', text: /no order id.*no orderId/ }],
  ['an image with an empty course list', () => streamRecord('INSERT', { NewImage: streamImage('s-no-course', { courseId: { L: [] } }) }), { malformed: 1, level: 'warn', text: /s-no-course.*no courseId/ }],
  ['an unknown status (settled)', () => streamRecord('INSERT', { NewImage: streamImage('s-settled', { status: S('settled') }) }), { malformed: 1, level: 'warn', text: /unknown-status.*settled/ }],
  ['a user who does not exist', () => streamRecord('INSERT', { NewImage: streamImage('s-ghost', { userId: S('ghost') }) }), { orphans: 1, level: 'warn', text: /orphan-payment.*ghost/ }],
  ['a user whose courses attribute is a string', () => streamRecord('INSERT', { NewImage: streamImage('s-str', { userId: S('u-str') }) }), { level: 'info', text: /s-str.*not a list/ }],
  ['REMOVE of a paid payment', () => streamRecord('REMOVE', { OldImage: streamImage('s-removed', { courseId: S('c1') }) }), { level: 'info', text: /ignored/ }],
  // Questionable: answered as "payment deleted" although the record is an INSERT (see the report).
  ['an INSERT with no NewImage', () => streamRecord('INSERT', { Keys: { orderId: S('s-keys-only') } }), { level: 'info', text: /ignored/ }],
];

describe('4. bad stream records: counted and logged, never retried, nothing written', () => {
  let tables: TestTables;
  let deps: SyncDeps;

  beforeAll(async () => {
    tables = await startTestTables();
    deps = createSyncDeps(tables.config, tables.client);
    await tables.putUser('u1', { L: [S('c1')] });
    await tables.putUser('u-str', S('c0'));
    await tables.putUser('42', { L: [] });
    await tables.putPayment('s-removed', { userId: 'u1', courseId: 'c1', status: 'settlement' });
  });
  afterAll(() => tables.close());

  const handle = async (records: DynamoDBRecord[]) => {
    const telemetry = new RecordingTelemetry();
    const answer = await createStreamHandler(deps, telemetry)({ Records: records } as DynamoDBStreamEvent);
    return { answer, telemetry };
  };

  test.each(STREAM_CASES)('%s', async (_name, record, expected) => {
    const before = { users: await tables.dump('users'), payments: await tables.dump('payments') };
    const { answer, telemetry } = await handle([record()]);
    expect(answer).toEqual({ batchItemFailures: [] });
    expect(telemetry.counters).toMatchObject({
      MalformedRecords: expected.malformed ?? 0,
      OrphanPayments: expected.orphans ?? 0,
      GrantsApplied: 0,
      RevocationsApplied: 0,
      RecordsRejected: 0,
      RecordsFailed: 0,
    });
    expect(telemetry.logs).toContainEqual({ level: expected.level, text: expect.stringMatching(expected.text) });
    expect(await tables.dump('users')).toEqual(before.users);
    expect(await tables.dump('payments')).toEqual(before.payments);
  });

  test('every bad record in one batch: no failure reported, each counted, nothing written', async () => {
    const before = await tables.dump('users');
    const { answer, telemetry } = await handle(STREAM_CASES.map(([, record]) => record()));
    expect(answer).toEqual({ batchItemFailures: [] });
    const sum = (key: 'malformed' | 'orphans') => STREAM_CASES.reduce((total, [, , expected]) => total + (expected[key] ?? 0), 0);
    expect(telemetry.counters).toMatchObject({ MalformedRecords: sum('malformed'), OrphanPayments: sum('orphans'), GrantsApplied: 0, RecordsFailed: 0 });
    expect(await tables.dump('users')).toEqual(before);
  });

  test('a number user id is read as its text: the grant goes to user "42" and nowhere else', async () => {
    const before = await tables.dump('users');
    const { answer, telemetry } = await handle([streamRecord('INSERT', { NewImage: streamImage('s-number-user', { userId: { N: '42' } }) })]);
    expect(answer).toEqual({ batchItemFailures: [] });
    expect(telemetry.counters).toMatchObject({ GrantsApplied: 1, MalformedRecords: 0 });
    const after = await tables.dump('users');
    expect(after.find((item) => item.userId?.S === '42')?.purchasedCourses).toEqual({ L: [S('c-new')] });
    expect(after.filter((item) => item.userId?.S !== '42')).toEqual(before.filter((item) => item.userId?.S !== '42'));
  });
});

// ---------------------------------------------------------------------------------------------
// 5. Bad configuration
// ---------------------------------------------------------------------------------------------

const REQUIRED = { DYNAMODB_PAYMENTS_TABLE: 'lms-payments', DYNAMODB_USERS_TABLE: 'lms-users' };


const BAD_VALUES: ReadonlyArray<[string, string]> = [
  ['GRACE_MINUTES', '-1'],
  ['MAX_USER_CHANGES_PER_RUN', '0'],
  ['MAX_REVOCATIONS_PER_RUN', 'ten'],
  ['SCAN_SEGMENTS', 'abc'],
  ['JOIN_BUCKETS', '0'],
  ['JOIN_BUCKETS', '1025'],
  ['JOIN_MEMORY_MB', '64'],
  ['SCAN_READ_UNITS_PER_SECOND', '1.5'],
  ['SCAN_READ_UNITS_PER_SECOND', '-1'],
  ['PURCHASED_COURSES_FORMAT', 'xml'],
  ['DYNAMODB_ENDPOINT', 'ftp://x'],
  ['LOG_LEVEL', 'LOUD'],
];

describe('5. bad configuration: one ConfigError naming each variable and the value seen', () => {
  test.each(BAD_VALUES)('%s=%s', (name, value) => {
    const error = configError({ ...REQUIRED, [name]: value });
    expect(error.problems).toEqual([expect.stringMatching(new RegExp(`^${name} .*"${value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"`))]);
    expect(error.message).toContain(name);
  });

  test('a paid status that is also revoked (case and spaces aside) is named with both lists', () => {
    const error = configError({ ...REQUIRED, PAID_STATUSES: 'settlement, Chargeback ' });
    expect(error.problems).toEqual([expect.stringMatching(/PAID_STATUSES and REVOKED_STATUSES share chargeback/)]);
  });

  test('all of the above at once: every variable named in the one error', () => {
    const env: Record<string, string> = { ...REQUIRED, PAID_STATUSES: 'settlement,refund' };
    for (const [name, value] of BAD_VALUES) env[name] = value;
    const error = configError(env);
    const names = [...new Set(BAD_VALUES.map(([name]) => name)), 'PAID_STATUSES'];
    expect(error.problems).toHaveLength(names.length);
    for (const name of names) expect(error.problems.some((problem) => problem.startsWith(name))).toBe(true);
  });

  test('a Lambda cold start with a bad variable fails with the ConfigError, before any request', async () => {
    const savedEnv = { ...process.env };
    const proxy = await startFaultProxy('http://127.0.0.1:9', { throttleRate: 0 });
    try {
      await expect(loadHandler('../../lambdas/stream/handler', { ...REQUIRED, DYNAMODB_ENDPOINT: proxy.endpoint, JOIN_MEMORY_MB: '64' })).rejects.toThrow(
        expect.objectContaining({ name: 'ConfigError', message: expect.stringMatching(/JOIN_MEMORY_MB .*"64"/) }),
      );
      expect(proxy.stats.requests).toBe(0);
    } finally {
      process.env = savedEnv;
      await proxy.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// 6. User items near DynamoDB's 400 KB item limit
// ---------------------------------------------------------------------------------------------

describe('6. user items near the 400 KB item limit', () => {
  let tables: TestTables;
  let deps: SyncDeps;
  // Just under the limit: any grant of a long course id pushes the item over it.
  const PROFILE = { profile: S('x'.repeat(400 * 1024 - 100)) };
  const LONG_COURSE = `course-${'long'.repeat(25)}`;
  const SMALL = ['small-1', 'small-2', 'small-3'];
  const ALL = ['big-ok', 'big-needs', ...SMALL];

  beforeAll(async () => {
    tables = await startTestTables();
    deps = createSyncDeps(tables.config, tables.client);
    await tables.putPayment('o-big-ok', { userId: 'big-ok', courseId: 'c1', status: 'settlement' });
    await tables.putPayment('o-big-needs', { userId: 'big-needs', courseId: LONG_COURSE, status: 'settlement' });
    for (const userId of SMALL) await tables.putPayment(`o-${userId}`, { userId, courseId: 'c1', status: 'settlement' });
  });
  beforeEach(async () => {
    await tables.putUser('big-ok', { L: [S('c1')] }, PROFILE);
    await tables.putUser('big-needs', { L: [] }, PROFILE);
    for (const userId of SMALL) await tables.putUser(userId, { L: [] });
  });
  afterAll(() => tables.close());

  test('a full validation reads both, reports the grant the big user needs and nothing about the one in sync; writes nothing', async () => {
    const before = await tables.dump('users');
    const { result, issues } = await fullRun(deps, 'validate');
    expect(result.status).toBe('completed');
    expect(result.issues.error).toBe(0);
    expect(issues.filter((line) => line.userId === 'big-ok')).toEqual([]);
    expect(issues.filter((line) => line.userId === 'big-needs')).toEqual([expect.objectContaining({ kind: 'missing', courseId: LONG_COURSE, orderIds: ['o-big-needs'], applied: false })]);
    expect(await tables.dump('users')).toEqual(before);
  });

  test('a per-user dry run: would-fix and in-sync, no error, nothing written', async () => {
    const before = await tables.dump('users');
    const outcomes = await reconcileUsers(deps, ALL, { dryRun: true, runId: 'big-dry' });
    expect(outcomes.map(({ result }) => [result.userId, result.status])).toEqual([
      ['big-ok', 'in-sync'],
      ['big-needs', 'would-fix'],
      ...SMALL.map((userId) => [userId, 'would-fix']),
    ]);
    expect(await tables.dump('users')).toEqual(before);
  });

  test('a per-user fix: the grant that cannot fit is an error naming the user and the size; the others are fixed', async () => {
    const bigBefore = { ok: await tables.userItem('big-ok'), needs: await tables.userItem('big-needs') };
    const outcomes = await reconcileUsers(deps, ALL, { dryRun: false, runId: 'big-fix' });
    const byUser = new Map(outcomes.map(({ result, change }) => [result.userId, { result, change }]));
    expect(byUser.get('big-needs')?.result).toMatchObject({ status: 'error', error: expect.stringMatching(/size/i) });
    expect(byUser.get('big-needs')?.result.issues).toEqual([expect.objectContaining({ kind: 'error', userId: 'big-needs', detail: expect.stringMatching(/size/i) })]);
    expect(byUser.get('big-needs')?.change).toBeUndefined();
    expect(byUser.get('big-ok')?.result.status).toBe('in-sync');
    for (const userId of SMALL) expect(byUser.get(userId)?.result.status).toBe('fixed');
    for (const userId of SMALL) expect(courseIdsOf(await tables.userCourses(userId))).toEqual(['c1']);
    expect(await tables.userItem('big-ok')).toEqual(bigBefore.ok);
    expect(await tables.userItem('big-needs')).toEqual(bigBefore.needs);
  });

  test('a full fix leaves the near-limit user that needs nothing alone: no line, no write, no error about it', async () => {
    const bigOk = await tables.userItem('big-ok');
    const { result, issues, changes } = await fullRun(deps, 'fix', { segments: 1, buckets: 1 });
    expect(result.status).toBe('completed');
    expect(result.counts.usersFixed).toBe(SMALL.length);
    expect(issues.filter((line) => line.userId === 'big-ok')).toEqual([]);
    expect(changes.filter((change) => change.userId === 'big-ok')).toEqual([]);
    expect(await tables.userItem('big-ok')).toEqual(bigOk);
  });
});
