import type { BatchGetItemCommandOutput } from '@aws-sdk/client-dynamodb';
import { createSyncDeps } from '../../lambdas/core/deps';
import { reconcileUser } from '../../lambdas/core/jobs/user-reconcile';
import { createDynamoClient } from '../../lambdas/core/store/dynamo-client';
import { startCaptureProxy } from '../../scripts/local/stream/capture-proxy';
import { courseIdsOf, startTestTables, type TestTables } from '../support/local-tables';

describe('DynamoDB adapters against dynalite', () => {
  let tables: TestTables;
  beforeEach(async () => {
    tables = await startTestTables();
  });
  afterEach(() => tables.close());

  test('BatchGetItem goes 100 keys a call and retries UnprocessedKeys until every user is read', async () => {
    for (let i = 0; i < 250; i++) await tables.putUser(`u${i}`, { L: [{ S: `c${i}` }] });
    const client = createDynamoClient(tables.config);
    const calls: number[] = [];
    // DynamoDB may leave keys unprocessed under load; this middleware makes every first answer of a chunk do so.
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args);
        if (context.commandName !== 'BatchGetItemCommand') return result;
        const output = result.output as BatchGetItemCommandOutput;
        const table = tables.config.usersTable;
        const request = (args.input as { RequestItems: Record<string, { Keys: unknown[] }> }).RequestItems[table];
        calls.push(request?.Keys.length ?? 0);
        const responses = output.Responses?.[table] ?? [];
        if (calls.length % 2 === 1 && responses.length > 1 && output.Responses && request) {
          const kept = responses.slice(0, Math.floor(responses.length / 2));
          const keptIds = new Set(kept.map((item) => item.userId?.S));
          output.Responses[table] = kept;
          output.UnprocessedKeys = { [table]: { ...request, Keys: request.Keys.filter((key) => !keptIds.has((key as { userId: { S: string } }).userId.S)) } as never };
        }
        return result;
      },
      { step: 'initialize', name: 'leaveKeysUnprocessed' },
    );
    const deps = createSyncDeps(tables.config, client);
    const ids = [...Array.from({ length: 250 }, (_, i) => `u${i}`), 'missing-user'];
    const users = await deps.users.batchGet(ids);
    expect(users.size).toBe(251);
    expect(users.get('missing-user')?.exists).toBe(false);
    expect(users.get('u249')?.exists).toBe(true);
    expect(courseIdsOf(users.get('u17')?.raw)).toEqual(['c17']);
    expect(Math.max(...calls)).toBeLessThanOrEqual(100);
    expect(calls.length).toBeGreaterThan(3);
  });

  test('a scan segment hands back a cursor page by page and the segments cover the table once', async () => {
    for (let i = 0; i < 40; i++) await tables.putPayment(`o${i}`, { userId: 'u', courseId: `c${i}`, status: 'settlement' });
    const deps = createSyncDeps(tables.config, tables.client);
    const seen: string[] = [];
    for (let segment = 0; segment < 3; segment++) {
      let cursor;
      do {
        const page = await deps.payments.scanPage({ segment, totalSegments: 3, cursor, pageSize: 4 });
        expect(page.items.length).toBeLessThanOrEqual(4);
        seen.push(...page.items.map((item) => item.orderId?.S ?? ''));
        cursor = page.cursor;
      } while (cursor);
    }
    expect(seen.sort()).toEqual(Array.from({ length: 40 }, (_, i) => `o${i}`).sort());
    expect((await deps.payments.queryByUser('u')).length).toBe(40);
  });

  test('throttled writes are retried by the client and land once', async () => {
    const proxy = await startCaptureProxy({ upstreamEndpoint: tables.endpoint, tableName: tables.config.paymentsTable, region: 'ap-southeast-1' });
    try {
      await tables.putUser('u1', { L: [] });
      await tables.putPayment('o1', { userId: 'u1', courseId: 'c1', status: 'settlement' });
      const fault = proxy.injectFault({ operations: ['UpdateItem'], table: tables.config.usersTable, times: 2 });
      const deps = createSyncDeps({ ...tables.config, endpoint: proxy.endpoint });
      const { result } = await reconcileUser(deps, 'u1', { dryRun: false, runId: 'throttle' });
      expect(fault.hits).toBe(2);
      expect(result.status).toBe('fixed');
      expect(courseIdsOf(await tables.userCourses('u1'))).toEqual(['c1']);
      deps.client.destroy();
    } finally {
      await proxy.close();
    }
  });
});
