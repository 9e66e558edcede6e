import { createSyncDeps } from '../../lambdas/core/deps';
import { reconcileUser } from '../../lambdas/core/jobs/user-reconcile';
import { scanSegmentPage } from '../../lambdas/core/store/table-scan';
import { startCaptureProxy } from '../../scripts/local/stream/capture-proxy';
import { courseIdsOf, startTestTables, type TestTables } from '../support/local-tables';

describe('DynamoDB adapters against dynalite', () => {
  let tables: TestTables;
  beforeEach(async () => {
    tables = await startTestTables();
  });
  afterEach(() => tables.close());

  test('a scan segment hands back a cursor page by page and the segments cover the table once', async () => {
    for (let i = 0; i < 40; i++) await tables.putPayment(`o${i}`, { userId: 'u', courseId: `c${i}`, status: 'settlement' });
    const deps = createSyncDeps(tables.config, tables.client);
    const seen: string[] = [];
    for (let segment = 0; segment < 3; segment++) {
      let cursor;
      do {
        const page = await scanSegmentPage(deps.client, tables.config.paymentsTable, { segment, totalSegments: 3, cursor, pageSize: 4 });
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
