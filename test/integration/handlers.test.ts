import type { Context } from 'aws-lambda';
import { createSyncDeps } from '../../lambdas/core/deps';
import { RunRecords } from '../../lambdas/core/runs/run-records';
import { runStateMachineLocally } from '../../scripts/local/run-state-machine';
import { startFakeStepFunctions, type FakeStepFunctions } from '../support/fake-step-functions';
import { removeRunFolders, runFolder } from '../support/full-run';
import { startTestTables, courseIdsOf, type TestTables } from '../support/local-tables';
import { loadHandler, type Handler } from '../support/lambda';

const SYNC_RUN = 'arn:aws:states:ap-southeast-1:000000000000:stateMachine:SyncRun';
const VALIDATION_RUN = 'arn:aws:states:ap-southeast-1:000000000000:stateMachine:ValidationRun';


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
  let stepFunctions: FakeStepFunctions;
  let runs: RunRecords;

  beforeAll(async () => {
    tables = await startTestTables();
    runs = new RunRecords(tables.client, tables.config.runsTable);
    const deps = createSyncDeps(tables.config, tables.client);
    // Each started execution runs here, through the local state machine, on the same tables.
    stepFunctions = await startFakeStepFunctions((_arn, input) => runStateMachineLocally({ deps, storage: runFolder(), runs }, (input as { run: never }).run));
    const env = { ...tables.env, AWS_ENDPOINT_URL_SFN: stepFunctions.endpoint, SYNC_STATE_MACHINE_ARN: SYNC_RUN, VALIDATION_STATE_MACHINE_ARN: VALIDATION_RUN };
    sync = await loadHandler('../../lambdas/sync/handler', env);
    validate = await loadHandler('../../lambdas/validate/handler', env);
    health = await loadHandler('../../lambdas/health/handler', env);
  });
  afterAll(async () => {
    await stepFunctions.close();
    await tables.close();
    removeRunFolders();
  });
  const lastStarted = () => stepFunctions.started[stepFunctions.started.length - 1]!;
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

  test('validate answers would-fix and never writes; a full validation starts the validation machine, read-only', async () => {
    await tables.putUser('u1', { L: [{ S: 'c1' }, { S: 'c1' }] });
    const before = await tables.dump('users');
    const answer = (await validate({ userIds: ['u1'] }, context)) as { results: Array<Record<string, unknown>> };
    expect(answer.results[0]).toMatchObject({ userId: 'u1', status: 'would-fix' });
    const started = (await validate({ deep: true }, context)) as Record<string, unknown>;
    expect(started).toMatchObject({ status: 'started', mode: 'validate', executionArn: expect.stringContaining(':execution:ValidationRun:') });
    expect(lastStarted()).toMatchObject({ stateMachineArn: VALIDATION_RUN, name: started.runId, input: { run: { runId: started.runId, mode: 'validate', trigger: 'manual', dryRun: true } } });
    expect(await lastStarted().result).toMatchObject({ status: 'completed', dryRun: true, issues: expect.objectContaining({ missing: 1, duplicate: 1 }) });
    await expect(validate({ userIds: [] }, context)).rejects.toThrow(/userIds/);
    expect(await tables.dump('users')).toEqual(before);
  });

  test.each([
    ['EventBridge Scheduler', { 'detail-type': 'Scheduled Event', source: 'aws.scheduler', detail: '{}' }],
    ['an EventBridge rule', { 'detail-type': 'Scheduled Event', source: 'aws.events', detail: {} }],
  ])('a scheduled event from %s starts the hourly sync run and the daily validation run, which the state machine completes', async (_label, event) => {
    await tables.putUser('u1', { L: [{ S: 'c1' }, { S: 'c1' }] });
    const started = (await sync(event, context)) as Record<string, unknown>;
    expect(started).toMatchObject({ status: 'started', mode: 'cron-sync', held: false });
    expect(lastStarted()).toMatchObject({ stateMachineArn: SYNC_RUN, input: { run: { mode: 'cron-sync', trigger: 'schedule' } } });
    expect(await lastStarted().result).toMatchObject({ mode: 'cron-sync', status: 'completed', dryRun: false, trigger: 'schedule' });
    expect(courseIdsOf(await tables.userCourses('u1'))).toEqual(['c1', 'c2']);
    const validation = (await validate(event, context)) as Record<string, unknown>;
    expect(validation).toMatchObject({ status: 'started', mode: 'cron-validate' });
    expect(lastStarted().stateMachineArn).toBe(VALIDATION_RUN);
    expect(await lastStarted().result).toMatchObject({ mode: 'cron-validate', status: 'completed', dryRun: true });
  });

  test('the weekly schedule starts a scheduled full fix; a manual { run } starts a manual one with its cap', async () => {
    expect(await sync({ scheduled: 'weekly-fix' }, context)).toMatchObject({ status: 'started', mode: 'fix' });
    expect(lastStarted().input).toMatchObject({ run: { mode: 'fix', trigger: 'schedule' } });
    await lastStarted().result;
    expect(await sync({ run: 'fix', dryRun: true, maxChanges: 5 }, context)).toMatchObject({ status: 'started', mode: 'fix' });
    expect(lastStarted().input).toMatchObject({ run: { mode: 'fix', trigger: 'manual', dryRun: true, maxUserChanges: 5 } });
    await lastStarted().result;
    await expect(sync({ run: 'validate' }, context)).rejects.toThrow(expect.objectContaining({ name: 'InvalidEventError', message: expect.stringMatching(/run/) }));
    await expect(sync({ scheduled: 'daily' }, context)).rejects.toThrow(/scheduled/);
  });

  test('a schedule while a run holds the lock starts nothing and names the running run', async () => {
    const count = stepFunctions.started.length;
    await runs.acquireLock('run-in-progress', 'fix');
    try {
      expect(await sync({ 'detail-type': 'Scheduled Event', source: 'aws.scheduler' }, context)).toMatchObject({ status: 'skipped', runningRunId: 'run-in-progress' });
      expect(await validate({ 'detail-type': 'Scheduled Event', source: 'aws.scheduler' }, context)).toMatchObject({ status: 'skipped', runningRunId: 'run-in-progress' });
      expect(stepFunctions.started).toHaveLength(count);
    } finally {
      await runs.releaseLock('run-in-progress');
    }
  });

  test('a hold makes the scheduled sync report-only until { releaseHold: true }', async () => {
    await runs.setHold('run-capped', 'the run reached MAX_USER_CHANGES_PER_RUN and stopped writing');
    await tables.putUser('u1', { L: [] });
    expect(await sync({ 'detail-type': 'Scheduled Event', source: 'aws.scheduler' }, context)).toMatchObject({ status: 'started', held: true });
    expect(await lastStarted().result).toMatchObject({ held: true, dryRun: true, counts: expect.objectContaining({ usersFixed: 0 }) });
    expect(courseIdsOf(await tables.userCourses('u1'))).toEqual([]);
    expect(await sync({ releaseHold: true }, context)).toEqual({ released: expect.objectContaining({ runId: 'run-capped' }) });
    expect(await sync({ releaseHold: true }, context)).toEqual({ released: null });
    expect(await sync({ 'detail-type': 'Scheduled Event', source: 'aws.scheduler' }, context)).toMatchObject({ status: 'started', held: false });
    await lastStarted().result;
    expect(courseIdsOf(await tables.userCourses('u1'))).toEqual(['c1', 'c2']);
  });

  test('undo by Lambda needs the reports bucket, where the run\'s change log is', async () => {
    await expect(sync({ undo: '20261127T000000Z-fix-abc123' }, context)).rejects.toThrow(expect.objectContaining({ name: 'ConfigError', message: expect.stringContaining('REPORTS_BUCKET') }));
    await expect(sync({ undo: '../etc' }, context)).rejects.toThrow(expect.objectContaining({ name: 'InvalidEventError' }));
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
