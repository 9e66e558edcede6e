import { GetItemCommand, ScanCommand, UpdateItemCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { SyncConfig } from '../../lambdas/core/config';

/**
 * The old scripts' approach, as the baseline: one sequential scan that holds every paid payment
 * in memory, then one user at a time, GetItem and an unconditional rewrite of the list.
 * Only for the benchmark's comparison; it has none of the product's safety.
 */
export async function naiveSync(client: DynamoDBClient, config: SyncConfig): Promise<{ payments: number; usersWritten: number }> {
  const paidByUser = new Map<string, Set<string>>();
  let payments = 0;
  let cursor: Record<string, AttributeValue> | undefined;
  do {
    const page = await client.send(new ScanCommand({ TableName: config.paymentsTable, ExclusiveStartKey: cursor }));
    for (const item of page.Items ?? []) {
      payments++;
      const status = item[config.payment.status]?.S?.toLowerCase();
      const userId = item[config.payment.user]?.S;
      const courseId = item[config.payment.course]?.S;
      if (status === 'settlement' && userId && courseId) paidByUser.set(userId, (paidByUser.get(userId) ?? new Set()).add(courseId));
    }
    cursor = page.LastEvaluatedKey;
  } while (cursor);

  let usersWritten = 0;
  for (const [userId, courses] of paidByUser) {
    const { Item } = await client.send(new GetItemCommand({ TableName: config.usersTable, Key: { [config.user.key]: { S: userId } } }));
    if (!Item) continue;
    const listed = (Item[config.user.courses]?.L ?? []).map((entry) => entry.S ?? entry.M?.courseId?.S);
    const missing = [...courses].filter((course) => !listed.includes(course));
    if (missing.length === 0) continue;
    await client.send(
      new UpdateItemCommand({
        TableName: config.usersTable,
        Key: { [config.user.key]: { S: userId } },
        UpdateExpression: 'SET #c = :c',
        ExpressionAttributeNames: { '#c': config.user.courses },
        ExpressionAttributeValues: { ':c': { L: [...(Item[config.user.courses]?.L ?? []), ...missing.map((course) => ({ S: course }))] } },
      }),
    );
    usersWritten++;
  }
  return { payments, usersWritten };
}
