import type { Context } from 'aws-lambda';
import { startTestTables, courseIdsOf, type TestTables } from '../support/local-tables';
import { loadHandler, type Handler } from '../support/lambda';


const context = {
  functionName: 'payment-sync-test',
  awsRequestId: 'req-1',
  getRemainingTimeInMillis: () => 300_000,
} as unknown as Context;


describe('Lambda handlers against dynalite', () => {
  let tables: TestTables;
  let sync: Handler;
  let validate: Handler;
  let health: Handler;

  beforeAll(async () => {
    tables = await startTestTables();
    sync = await loadHandler('../../lambdas/sync/handler', tables.env);
    validate = await loadHandler('../../lambdas/validate/handler', tables.env);
    health = await loadHandler('../../lambdas/health/handler', tables.env);
  });
  afterAll(() => tables.close());
  beforeEach(async () => {
    await tables.putUser('u1', { L: [{ S: 'c1' }, { S: 'c1' }] });
    await tables.putPayment('o1', { userId: 'u1', courseId: 'c1', status: 'settlement' });
    await tables.putPayment('o2', { userId: 'u1', courseId: 'c2', status: 'settlement' });
  });

  test.each([
    ['no userIds', {}, /userIds/],
    ['userIds not a list', { userIds: 'u1' }, /userIds/],
    ['dryRun not a boolean', { userIds: ['u1'], dryRun: 'yes' }, /dryRun/],
    ['an unknown field', { userIds: ['u1'], extra: 1 }, /extra/],
    ['1001 user ids', { userIds: Array.from({ length: 1001 }, (_, i) => `u${i}`) }, /at most 1000 user ids.*full reconciliation/],
  ])('a bad sync event (%s) is refused, naming the field, and nothing is written', async (_label, event, message) => {
    const before = await tables.dump('users');
    await expect(sync(event, context)).rejects.toThrow(expect.objectContaining({ name: 'InvalidEventError', message: expect.stringMatching(message) }));
    expect(await tables.dump('users')).toEqual(before);
  });

  test('a manual sync answers per user with the contract shape; dryRun writes nothing', async () => {
    const dry = (await sync({ userIds: ['u1', 'ghost'], dryRun: true }, context)) as { results: Array<Record<string, unknown>> };
    expect(dry.results).toEqual([
      expect.objectContaining({ userId: 'u1', status: 'would-fix', added: ['c2'], removed: [], duplicatesRemoved: ['c1'] }),
      expect.objectContaining({ userId: 'ghost', status: 'not-found', issues: [] }),
    ]);
    expect(courseIdsOf(await tables.userCourses('u1'))).toEqual(['c1', 'c1']);

    const fixed = (await sync({ userIds: ['u1'] }, context)) as { results: Array<Record<string, unknown>> };
    expect(fixed.results[0]).toMatchObject({ userId: 'u1', status: 'fixed', added: ['c2'] });
    expect(courseIdsOf(await tables.userCourses('u1'))).toEqual(['c1', 'c2']);
    expect(await tables.userItem('ghost')).toBeUndefined();
  });

  test('validate answers would-fix and never writes, manual or full', async () => {
    await tables.putUser('u1', { L: [{ S: 'c1' }, { S: 'c1' }] });
    const before = await tables.dump('users');
    const answer = (await validate({ userIds: ['u1'] }, context)) as { results: Array<Record<string, unknown>> };
    expect(answer.results[0]).toMatchObject({ userId: 'u1', status: 'would-fix' });
    const full = (await validate({ deep: true }, context)) as { issues: Record<string, number>; dryRun: boolean };
    expect(full.dryRun).toBe(true);
    expect(full.issues).toMatchObject({ missing: 1, duplicate: 1 });
    await expect(validate({ userIds: [] }, context)).rejects.toThrow(/userIds/);
    expect(await tables.dump('users')).toEqual(before);
  });

  test.each([
    ['EventBridge Scheduler', { 'detail-type': 'Scheduled Event', source: 'aws.scheduler', detail: '{}' }],
    ['an EventBridge rule', { 'detail-type': 'Scheduled Event', source: 'aws.events', detail: {} }],
  ])('a scheduled event from %s runs the full sync within the budget', async (_label, event) => {
    await tables.putUser('u1', { L: [{ S: 'c1' }, { S: 'c1' }] });
    const result = (await sync(event, context)) as Record<string, unknown>;
    expect(result).toMatchObject({ mode: 'cron-sync', status: 'completed', dryRun: false });
    expect(courseIdsOf(await tables.userCourses('u1'))).toEqual(['c1', 'c2']);
    const validation = (await validate(event, context)) as Record<string, unknown>;
    expect(validation).toMatchObject({ mode: 'cron-validate', status: 'completed', dryRun: true });
  });

  test('health: degraded where the tables have no stream, unhealthy when a table is missing', async () => {
    expect(await health({}, context)).toMatchObject({ status: 'degraded', checks: expect.arrayContaining([expect.objectContaining({ name: 'paymentsStream', status: 'warn' })]) });
    const broken = await loadHandler('../../lambdas/health/handler', { ...tables.env, DYNAMODB_USERS_TABLE: 'no-such-table' });
    const report = (await broken({}, context)) as { status: string; checks: Array<{ name: string; status: string }> };
    expect(report.status).toBe('unhealthy');
    expect(report.checks).toContainEqual(expect.objectContaining({ name: 'usersTable', status: 'fail' }));
    Object.assign(process.env, tables.env);
  });
});
