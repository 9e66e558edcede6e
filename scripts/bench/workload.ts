import { BatchWriteItemCommand, DeleteTableCommand, type AttributeValue, type DynamoDBClient, type WriteRequest } from '@aws-sdk/client-dynamodb';
import { backoffDelayMs, forEachConcurrently, sleep } from '../../lambdas/core/backoff';
import { loadConfig, type SyncConfig } from '../../lambdas/core/config';
import type { WireItem } from '../../lambdas/core/rules/attribute-values';
import { generateDemoData, type DemoDataset, type DemoMix } from '../local/demo-data';
import { createTables, DEFAULT_TABLES } from '../local/embedded-dynamodb';

export interface WorkloadSize {
  readonly payments: number;
  readonly users: number;
}

/** W1: 100,000 payments of 25,000 users (4 a user). */
export const W1: WorkloadSize = { payments: 100_000, users: 25_000 };
/** `--quick`: W1's proportions at 1/20 of its size. */
export const QUICK: WorkloadSize = { payments: 5_000, users: 1_250 };

export const scaled = (size: WorkloadSize, factor: number): WorkloadSize => ({ payments: size.payments * factor, users: size.users * factor });

/**
 * Payments a user gets from the demo generator besides their ordinary paid orders, on average:
 * multi-course orders 0.08, refunds 0.08, bought-twice-refunded-once 0.08 (two payments at
 * 0.04), fraud challenges 0.05, pending/expired 0.10, in flight 0.02, orphan and malformed
 * payments 0.02 (one of each per 100 users).
 */
const OTHER_PAYMENTS_PER_USER = 0.43;

/**
 * W1's drift, per user, as rates of the demo generator: about 10% of paid courses missing
 * from the list (6% of ordinary orders plus every multi-course order), 2% of users with a
 * duplicated entry (2.4% drawn; users with an empty list cannot have one), refunds about 3% of
 * payments (8% of users have one, plus the bought-twice refunds), 40% of lists in the
 * `{courseId, purchasedAt, orderId}` format and the rest ids, orphans 1 in 100 users.
 */
export function workloadMix(size: WorkloadSize): Partial<DemoMix> {
  return { paidPerUser: Math.max(0, size.payments / size.users - OTHER_PAYMENTS_PER_USER), missing: 0.06, duplicate: 0.024, refund: 0.08 };
}

export function generateWorkload(size: WorkloadSize, seed: number, config: SyncConfig): DemoDataset {
  return generateDemoData({ users: size.users, seed, mix: workloadMix(size) }, config);
}

/**
 * The grace window of the bench's runs. The generator dates a few payments a minute before it
 * runs ("in flight"); with the default 5 minutes they would leave the window between the
 * validate and the fix of one scenario, and the fix would rightly grant courses the validate
 * left to the stream. An hour keeps them in flight for the whole bench, so both runs judge
 * the same data.
 */
export const BENCH_GRACE_MINUTES = 60;

/** A scenario's tables on the bench's dynalite: its own names, the contract's shape. */
export function scenarioConfig(endpoint: string, name: string): SyncConfig {
  return loadConfig({
    DYNAMODB_PAYMENTS_TABLE: `bench-${name}-payments`,
    DYNAMODB_USERS_TABLE: `bench-${name}-users`,
    PAYMENTS_USER_INDEX: DEFAULT_TABLES.paymentsUserIndex,
    DYNAMODB_ENDPOINT: endpoint,
    GRACE_MINUTES: String(BENCH_GRACE_MINUTES),
  });
}

export async function createScenarioTables(client: DynamoDBClient, config: SyncConfig): Promise<void> {
  await createTables(client, { ...DEFAULT_TABLES, paymentsTable: config.paymentsTable, usersTable: config.usersTable });
}

export async function deleteScenarioTables(client: DynamoDBClient, config: SyncConfig): Promise<void> {
  for (const table of [config.paymentsTable, config.usersTable]) await client.send(new DeleteTableCommand({ TableName: table }));
}

/** BatchWriteItem calls in flight at once while loading. */
const LOAD_CONCURRENCY = 16;

/** Loads both tables, 25 items a call, many calls in flight, UnprocessedItems retried with backoff. */
export async function loadParallel(client: DynamoDBClient, config: SyncConfig, dataset: DemoDataset): Promise<void> {
  const batches: Array<{ table: string; items: readonly WireItem[] }> = [];
  for (const [table, items] of [
    [config.usersTable, dataset.users],
    [config.paymentsTable, dataset.payments],
  ] as const) {
    for (let start = 0; start < items.length; start += 25) batches.push({ table, items: items.slice(start, start + 25) });
  }
  await forEachConcurrently(batches, LOAD_CONCURRENCY, async ({ table, items }) => {
    let requests: WriteRequest[] = items.map((item) => ({ PutRequest: { Item: item as Record<string, AttributeValue> } }));
    for (let round = 0; requests.length > 0; round++) {
      if (round > 0) await sleep(backoffDelayMs(round, 50));
      const answer = await client.send(new BatchWriteItemCommand({ RequestItems: { [table]: requests } }));
      requests = answer.UnprocessedItems?.[table] ?? [];
    }
  });
}
