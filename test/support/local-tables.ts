import { GetItemCommand, PutItemCommand, ScanCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import type { WireItem, WireValue } from '../../lambdas/core/rules/attribute-values';
import { startLocalEnvironment, type LocalEnvironment } from '../../scripts/local/environment';

/** A fresh embedded dynalite with both tables, plus small helpers to seed and read them. */
export interface TestTables extends LocalEnvironment {
  putUser(userId: string, courses?: WireValue, extra?: WireItem): Promise<void>;
  putPayment(orderId: string, fields: { userId?: string; courseId?: string | string[]; status?: string; fraudStatus?: string; updatedAt?: string }): Promise<void>;
  userCourses(userId: string): Promise<WireValue | undefined>;
  userItem(userId: string): Promise<WireItem | undefined>;
  /** Every item of a table, sorted by key: for "nothing was written" comparisons. */
  dump(table: 'payments' | 'users'): Promise<WireItem[]>;
}

export const LONG_AGO = '2025-01-01T00:00:00.000Z';

export async function startTestTables(env: Record<string, string> = {}): Promise<TestTables> {
  const local = await startLocalEnvironment({ env });
  const { client, config } = local;
  const tableName = (table: 'payments' | 'users') => (table === 'payments' ? config.paymentsTable : config.usersTable);
  const userItem = async (userId: string): Promise<WireItem | undefined> =>
    (await client.send(new GetItemCommand({ TableName: config.usersTable, Key: { [config.user.key]: { S: userId } }, ConsistentRead: true }))).Item as WireItem | undefined;
  return {
    ...local,
    async putUser(userId, courses, extra = {}) {
      const item: WireItem = { [config.user.key]: { S: userId }, ...extra };
      if (courses) item[config.user.courses] = courses;
      await client.send(new PutItemCommand({ TableName: config.usersTable, Item: item as Record<string, AttributeValue> }));
    },
    async putPayment(orderId, fields) {
      const p = config.payment;
      const item: WireItem = { [p.id]: { S: orderId }, [p.updated]: { S: fields.updatedAt ?? LONG_AGO } };
      if (fields.userId !== undefined) item[p.user] = { S: fields.userId };
      if (fields.courseId !== undefined) item[p.course] = Array.isArray(fields.courseId) ? { L: fields.courseId.map((c) => ({ S: c })) } : { S: fields.courseId };
      if (fields.status !== undefined) item[p.status] = { S: fields.status };
      if (fields.fraudStatus !== undefined) item[p.fraud] = { S: fields.fraudStatus };
      await client.send(new PutItemCommand({ TableName: config.paymentsTable, Item: item as Record<string, AttributeValue> }));
    },
    userItem,
    async userCourses(userId) {
      return (await userItem(userId))?.[config.user.courses];
    },
    async dump(table) {
      const items: WireItem[] = [];
      let cursor: Record<string, AttributeValue> | undefined;
      do {
        const page = await client.send(new ScanCommand({ TableName: tableName(table), ExclusiveStartKey: cursor, ConsistentRead: true }));
        items.push(...((page.Items ?? []) as WireItem[]));
        cursor = page.LastEvaluatedKey;
      } while (cursor);
      const key = table === 'payments' ? config.payment.id : config.user.key;
      return items.sort((a, b) => String(a[key]?.S).localeCompare(String(b[key]?.S)));
    },
  };
}

/** Course ids of a list in order, whatever the entry format. */
export function courseIdsOf(list: WireValue | undefined): string[] {
  return (list?.L ?? []).map((entry) => entry.S ?? entry.M?.courseId?.S ?? `<malformed ${JSON.stringify(entry)}>`);
}
