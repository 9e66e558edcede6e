import { createSyncDeps } from '../../lambdas/core/deps';
import { checkHealth } from '../../lambdas/core/jobs/health';
import { startTestTables, type TestTables } from '../support/local-tables';

describe('health checks against dynalite', () => {
  let tables: TestTables;
  beforeAll(async () => {
    tables = await startTestTables();
  });
  afterAll(() => tables.close());

  test('healthy when tables and index are there, nothing is parked and a sync completed recently', async () => {
    const windows: number[] = [];
    const report = await checkHealth(createSyncDeps(tables.config, tables.client), {
      expectStream: false,
      failureQueueDepth: async () => 0,
      completedSyncs: { intervalMinutes: 60, read: async (minutes) => (windows.push(minutes), 1) },
    });
    expect(report.status).toBe('healthy');
    expect(report.checks.map((check) => check.name)).toEqual(['paymentsTable', 'paymentsUserIndex', 'usersTable', 'failureQueue', 'scheduledSync']);
    expect(windows).toEqual([120]);
  });

  test('degraded by parked stream failures or a missed sync; unhealthy without the index or when a check cannot run', async () => {
    const deps = createSyncDeps(tables.config, tables.client);
    const degraded = await checkHealth(deps, { expectStream: false, failureQueueDepth: async () => 3, completedSyncs: { intervalMinutes: 60, read: async () => 0 } });
    expect(degraded.status).toBe('degraded');
    expect(degraded.checks).toContainEqual(expect.objectContaining({ name: 'failureQueue', status: 'warn', detail: '3 failed stream batch(es) waiting' }));
    expect(degraded.checks).toContainEqual(expect.objectContaining({ name: 'scheduledSync', status: 'warn' }));

    const noIndex = await checkHealth(createSyncDeps({ ...tables.config, paymentsUserIndex: 'byUser' }, tables.client), { expectStream: false });
    expect(noIndex.status).toBe('unhealthy');
    expect(noIndex.checks).toContainEqual(expect.objectContaining({ name: 'paymentsUserIndex', status: 'fail' }));

    const broken = await checkHealth(deps, { expectStream: false, failureQueueDepth: async () => Promise.reject(new Error('AccessDenied')) });
    expect(broken.status).toBe('unhealthy');
    expect(broken.checks).toContainEqual(expect.objectContaining({ name: 'failureQueue', status: 'fail', detail: 'Error: AccessDenied' }));
  });
});
