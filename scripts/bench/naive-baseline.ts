import { GetItemCommand, ScanCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { SyncConfig } from '../../lambdas/core/config';

export interface BaselineResult {
  readonly payments: number;
  readonly paidPayments: number;
  readonly getItems: number;
  /** Paid payments whose course the user's list does not name (the old scripts' one check). */
  readonly missing: number;
  readonly orphans: number;
  readonly consumedCapacity: number;
}

/**
 * The seed scripts' approach, read-only, as the baseline: one sequential scan of the payments
 * table, then one GetItem per paid payment for its user, one call after the other, checking
 * only whether the course is listed. It writes nothing, so it is timed against the product's
 * read-only validate on the same tables; the seed's own fix did the same reads plus a write
 * per user, so a writing baseline would only be slower.
 */
export async function naiveValidate(client: DynamoDBClient, config: SyncConfig): Promise<BaselineResult> {
  const paid: Array<{ userId: string; courseIds: string[] }> = [];
  const paidStatuses = new Set(config.paidStatuses);
  let payments = 0;
  let consumedCapacity = 0;
  let cursor: Record<string, AttributeValue> | undefined;
  do {
    const page = await client.send(new ScanCommand({ TableName: config.paymentsTable, ExclusiveStartKey: cursor, ReturnConsumedCapacity: 'TOTAL' }));
    consumedCapacity += page.ConsumedCapacity?.CapacityUnits ?? 0;
    for (const item of page.Items ?? []) {
      payments++;
      const status = item[config.payment.status]?.S?.toLowerCase();
      const userId = item[config.payment.user]?.S;
      const course = item[config.payment.course];
      const courseIds = course?.S !== undefined ? [course.S] : (course?.L ?? []).flatMap((entry) => (entry.S ? [entry.S] : []));
      if (status !== undefined && paidStatuses.has(status) && userId && courseIds.length > 0) paid.push({ userId, courseIds });
    }
    cursor = page.LastEvaluatedKey;
  } while (cursor);

  let missing = 0;
  let orphans = 0;
  for (const { userId, courseIds } of paid) {
    const { Item, ConsumedCapacity } = await client.send(
      new GetItemCommand({ TableName: config.usersTable, Key: { [config.user.key]: { S: userId } }, ReturnConsumedCapacity: 'TOTAL' }),
    );
    consumedCapacity += ConsumedCapacity?.CapacityUnits ?? 0;
    if (!Item) {
      orphans++;
      continue;
    }
    const listed = new Set((Item[config.user.courses]?.L ?? []).map((entry) => entry.S ?? entry.M?.courseId?.S));
    missing += courseIds.filter((courseId) => !listed.has(courseId)).length;
  }
  return { payments, paidPayments: paid.length, getItems: paid.length, missing, orphans, consumedCapacity };
}
