import { BatchWriteItemCommand, type AttributeValue, type DynamoDBClient, type WriteRequest } from '@aws-sdk/client-dynamodb';
import type { SyncConfig } from '../../lambdas/core/config';
import type { WireItem, WireValue } from '../../lambdas/core/rules/attribute-values';
import { backoffDelayMs, sleep } from '../../lambdas/core/backoff';
import { prng } from './prng';

export interface DemoDataOptions {
  readonly users: number;
  readonly seed: number;
  /** Reference time: payments are dated before it, a few inside the grace window. */
  readonly now?: number;
  /** How much of the main drifts to plant; unset fields keep the demo's own mix (DEFAULT_DEMO_MIX). */
  readonly mix?: Partial<DemoMix>;
}

/** Per-user rates of the main drifts, for sizing a workload (the benchmark's W1). */
export interface DemoMix {
  /** Mean number of a user's ordinary paid orders, drawn uniformly from 0 to twice this; at most 16 (a user's courses come from 40). */
  readonly paidPerUser: number;
  /** Chance that an ordinary paid order's course is missing from the list. */
  readonly missing: number;
  /** Chance that a user's list repeats its first entry. */
  readonly duplicate: number;
  /** Chance that a user has a refunded or charged-back order whose course is still listed. */
  readonly refund: number;
}

/** The demo's own mix: about two payments a user. */
export const DEFAULT_DEMO_MIX: DemoMix = { paidPerUser: 1.5, missing: 0.15, duplicate: 0.12, refund: 0.06 };

export interface DemoDataset {
  readonly users: WireItem[];
  readonly payments: WireItem[];
  /** How many of each drift the generator planted, counted as the report counts them (courses, not orders), to explain the first validation. */
  readonly planted: Record<string, number>;
}

const COURSES = Array.from({ length: 40 }, (_, i) => `course-${String(i + 1).padStart(3, '0')}`);
const DAY = 86_400_000;

/**
 * Realistic drift between `lms-payments` and `purchasedCourses`, seeded and sized: missing
 * grants, duplicates, both list formats, refunds and chargebacks, a course bought twice and
 * refunded once, fraud challenges, pending and expired orders, multi-course orders, orphan
 * payments, malformed payments and entries, manual grants, and payments still in flight.
 */
export function generateDemoData(options: DemoDataOptions, config: Pick<SyncConfig, 'payment' | 'user'>): DemoDataset {
  const random = prng(options.seed);
  const mix: DemoMix = { ...DEFAULT_DEMO_MIX, ...options.mix };
  // Each user's courses are distinct, drawn from 40: twice 16 ordinary orders and the other drifts' 8 fill them.
  if (!(mix.paidPerUser >= 0 && mix.paidPerUser <= 16)) throw new RangeError(`paidPerUser must be from 0 to 16 (got ${mix.paidPerUser})`);
  const now = options.now ?? Date.now();
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const chance = (p: number): boolean => random() < p;
  const planted: Record<string, number> = {};
  const plant = (kind: string): void => {
    planted[kind] = (planted[kind] ?? 0) + 1;
  };
  const p = config.payment;
  const users: WireItem[] = [];
  const payments: WireItem[] = [];
  let order = 0;

  const payment = (userId: string | undefined, courses: string[] | undefined, status: string, extra: { fraud?: string; at?: number } = {}): string => {
    order++;
    const orderId = `ORDER-${options.seed}-${String(order).padStart(6, '0')}`;
    const at = extra.at ?? now - Math.floor(random() * 400 * DAY) - DAY;
    const item: WireItem = {
      [p.id]: { S: orderId },
      [p.status]: { S: status },
      grossAmount: { N: String(100_000 + Math.floor(random() * 40) * 25_000) },
      paymentType: { S: pick(['bank_transfer', 'gopay', 'credit_card', 'qris']) },
      createdAt: { S: new Date(at - 60_000).toISOString() },
      [p.updated]: { S: new Date(at).toISOString() },
    };
    if (userId !== undefined) item[p.user] = { S: userId };
    if (courses !== undefined) item[p.course] = courses.length === 1 ? { S: courses[0] as string } : { L: courses.map((c) => ({ S: c })) };
    if (extra.fraud) item[p.fraud] = { S: extra.fraud };
    payments.push(item);
    return orderId;
  };

  for (let u = 1; u <= options.users; u++) {
    const userId = `user-${String(u).padStart(5, '0')}`;
    const objects = chance(0.4);
    const entry = (courseId: string, orderId?: string): WireValue =>
      objects
        ? { M: { courseId: { S: courseId }, purchasedAt: { S: new Date(now - 30 * DAY).toISOString() }, ...(orderId ? { orderId: { S: orderId } } : {}), source: { S: 'webhook' } } }
        : { S: courseId };
    const list: WireValue[] = [];
    const owned = new Set<string>();
    const fresh = (): string => {
      let course = pick(COURSES);
      while (owned.has(course)) course = pick(COURSES);
      owned.add(course);
      return course;
    };

    for (let i = Math.floor(random() * (2 * mix.paidPerUser + 1)); i > 0; i--) {
      const course = fresh();
      const status = pick(['settlement', 'settlement', 'Settlement', 'capture', 'success', 'PAID']);
      const orderId = payment(userId, [course], status, status === 'capture' ? { fraud: 'accept' } : {});
      if (chance(mix.missing)) plant('missing');
      else list.push(entry(course, orderId));
    }
    if (chance(0.08)) {
      const courses = [fresh(), fresh()];
      payment(userId, courses, 'settlement');
      // One order, two courses missing: the report counts courses.
      for (let n = courses.length; n > 0; n--) plant('missing');
    }
    if (chance(mix.duplicate) && list.length > 0) {
      list.push(list[0] as WireValue);
      plant('duplicate');
    }
    if (chance(mix.refund)) {
      const course = fresh();
      const orderId = payment(userId, [course], pick(['refund', 'chargeback']));
      list.push(entry(course, orderId));
      plant('revoked (refund/chargeback, course still listed)');
    }
    if (chance(0.04)) {
      const course = fresh();
      payment(userId, [course], 'settlement');
      const second = payment(userId, [course], 'refund');
      list.push(entry(course, second));
      plant('bought twice, refunded once (stays)');
    }
    if (chance(0.05)) {
      payment(userId, [fresh()], 'capture', { fraud: 'challenge' });
      plant('fraud challenge (pending, not granted)');
    }
    if (chance(0.1)) payment(userId, [fresh()], pick(['pending', 'expire', 'cancel', 'deny']));
    if (chance(0.05)) {
      list.push(entry(fresh()));
      plant('unbacked (manual grant)');
    }
    if (chance(0.03)) {
      list.push(pick<WireValue>([{ N: '42' }, { M: { title: { S: 'Free webinar' } } }, { S: '' }]));
      plant('malformed-entry');
    }
    if (chance(0.02)) {
      payment(userId, [fresh()], 'settlement', { at: now - 60_000 });
      plant('in flight (paid a minute ago)');
    }
    const user: WireItem = {
      [config.user.key]: { S: userId },
      email: { S: `${userId}@example.com` },
      name: { S: `Learner ${u}` },
    };
    if (list.length > 0 || chance(0.5)) user[config.user.courses] = { L: list };
    users.push(user);
  }
  for (let i = Math.max(1, Math.floor(options.users / 100)); i > 0; i--) {
    payment(`ghost-${options.seed}-${i}`, [pick(COURSES)], 'settlement');
    plant('orphan-payment');
    payment(i % 2 === 0 ? undefined : `user-${String(i).padStart(5, '0')}`, i % 2 === 0 ? [pick(COURSES)] : undefined, 'settlement');
    plant('malformed-payment');
  }
  return { users, payments, planted };
}

/** Writes items 25 a call, retrying UnprocessedItems with backoff. */
export async function putItems(client: DynamoDBClient, tableName: string, items: readonly WireItem[]): Promise<void> {
  for (let start = 0; start < items.length; start += 25) {
    let requests: WriteRequest[] = items.slice(start, start + 25).map((item) => ({ PutRequest: { Item: item as Record<string, AttributeValue> } }));
    for (let round = 0; requests.length > 0; round++) {
      if (round > 0) await sleep(backoffDelayMs(round, 50));
      const answer = await client.send(new BatchWriteItemCommand({ RequestItems: { [tableName]: requests } }));
      requests = answer.UnprocessedItems?.[tableName] ?? [];
    }
  }
}

export async function loadDemoData(client: DynamoDBClient, config: SyncConfig, dataset: DemoDataset): Promise<void> {
  await putItems(client, config.usersTable, dataset.users);
  await putItems(client, config.paymentsTable, dataset.payments);
}
