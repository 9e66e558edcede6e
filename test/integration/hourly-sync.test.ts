import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutItemCommand, UpdateItemCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { createSyncDeps, type SyncDeps } from '../../lambdas/core/deps';
import type { FullRunResult } from '../../lambdas/core/jobs/full-run/finalize';
import { isSkipped } from '../../lambdas/core/jobs/full-run/prepare';
import type { RunMode } from '../../lambdas/core/report/report';
import { RunRecords, type RunTrigger } from '../../lambdas/core/runs/run-records';
import type { FolderStorage } from '../../lambdas/core/storage/folder-storage';
import { LOCAL_REGION, localClient } from '../../scripts/local/embedded-dynamodb';
import { RUN_STATES } from '../../lib/constructs/run-definition';
import { runStateMachineLocally, type LocalRunOptions } from '../../scripts/local/run-state-machine';
import { startCaptureProxy, type CaptureProxy } from '../../scripts/local/stream/capture-proxy';
import { ChangeLog } from '../../scripts/local/stream/change-log';
import { LocalStreamFailures } from '../../scripts/local/stream/local-stream-failures';
import { removeRunFolders, runFolder } from '../support/full-run';
import { courseIdsOf, LONG_AGO, startTestTables, type TestTables } from '../support/local-tables';

afterAll(removeRunFolders);

/** Every request a run makes: what it read, so a test can say it read nothing else. */
interface Request {
  readonly command: string;
  readonly table?: string;
  readonly userId?: string;
}

describe('the hourly sync reads what changed since the last completed sync', () => {
  let tables: TestTables;
  let proxy: CaptureProxy;
  let changeLog: ChangeLog;
  let through: DynamoDBClient;
  let deps: SyncDeps;
  let runs: RunRecords;
  let storage: FolderStorage;
  let requests: Request[];

  beforeEach(async () => {
    tables = await startTestTables();
    changeLog = new ChangeLog();
    // Writes through the proxy are captured (the stream is "stopped": nothing delivers them).
    proxy = await startCaptureProxy({ upstreamEndpoint: tables.endpoint, tableName: tables.config.paymentsTable, region: LOCAL_REGION, changeLog, usersTableName: tables.config.usersTable });
    through = localClient(proxy.endpoint);
    deps = createSyncDeps(tables.config, through);
    runs = new RunRecords(through, tables.config.runsTable);
    storage = runFolder();
    requests = [];
    through.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as { TableName?: string; Key?: Record<string, AttributeValue>; ExpressionAttributeValues?: Record<string, AttributeValue> };
        const userId = input.Key?.[tables.config.user.key]?.S ?? input.ExpressionAttributeValues?.[':user']?.S ?? input.ExpressionAttributeValues?.[':userId']?.S;
        requests.push({ command: context.commandName ?? '', table: input.TableName, userId });
        return next(args);
      },
      { step: 'initialize', name: 'recordRequests' },
    );
  });
  afterEach(async () => {
    through.destroy();
    await proxy.close();
    await tables.close();
  });

  const run = async (mode: RunMode, trigger: RunTrigger = 'schedule', options: LocalRunOptions = {}): Promise<FullRunResult> => {
    requests = [];
    const outcome = await runStateMachineLocally({ deps, storage, runs }, { runId: `run-${mode}-${Math.random().toString(36).slice(2, 8)}`, mode, trigger, segments: 2, buckets: 2 }, { changeLog, ...options });
    if (isSkipped(outcome)) throw new Error('skipped');
    return outcome;
  };
  /** A webhook's payment write, through the capture. */
  const settle = async (orderId: string, userId: string, courseId: string) => {
    const p = tables.config.payment;
    await through.send(
      new PutItemCommand({
        TableName: tables.config.paymentsTable,
        Item: { [p.id]: { S: orderId }, [p.user]: { S: userId }, [p.course]: { S: courseId }, [p.status]: { S: 'settlement' }, [p.updated]: { S: LONG_AGO } },
      }),
    );
  };
  /** The LMS's own code writing a list back (a stale copy), through the capture. */
  const overwriteList = async (userId: string, courses: string[]) => {
    await through.send(
      new UpdateItemCommand({
        TableName: tables.config.usersTable,
        Key: { [tables.config.user.key]: { S: userId } },
        UpdateExpression: 'SET #c = :c',
        ExpressionAttributeNames: { '#c': tables.config.user.courses },
        ExpressionAttributeValues: { ':c': { L: courses.map((S) => ({ S })) } },
      }),
    );
  };
  const seed = async (users: number) => {
    for (let i = 0; i < users; i++) {
      await tables.putUser(`u${i}`, { L: [{ S: `c${i}` }] });
      await tables.putPayment(`o${i}`, { userId: `u${i}`, courseId: `c${i}`, status: 'settlement' });
    }
  };

  test('the first hourly sync runs in full and says why; the next reads only what changed and repairs exactly the drift', async () => {
    await seed(30);
    await tables.putUser('u-pay', { L: [] });
    await tables.putUser('u-list', { L: [{ S: 'c-own' }] });
    await tables.putPayment('o-own', { userId: 'u-list', courseId: 'c-own', status: 'settlement' });

    const first = await run('cron-sync');
    expect(first).toMatchObject({ status: 'completed', fullBecause: expect.stringMatching(/^no completed sync yet/) });
    expect(first.counts.usersScanned).toBe(32);
    expect(requests.some((request) => request.command === 'ScanCommand')).toBe(true);

    // Drift after the sync: a payment settled while the stream was stopped, a list overwritten
    // without a paid course, and a change the capture never saw (made behind its back).
    await settle('o-pay', 'u-pay', 'c-pay');
    await overwriteList('u-list', []);
    await tables.putUser('u7', { L: [] });

    const hourly = await run('cron-sync');
    expect(hourly.status).toBe('completed');
    expect(hourly.fullBecause).toBeUndefined();
    expect(hourly.changes).toMatchObject({ sinceRunId: first.runId, candidates: 2, fromPayments: 1, fromUsers: 1, fromValidation: 0, changeLines: 2 });
    expect(hourly.counts).toMatchObject({ usersScanned: 2, usersFixed: 2, coursesAdded: 2 });
    expect(courseIdsOf(await tables.userCourses('u-pay'))).toEqual(['c-pay']);
    expect(courseIdsOf(await tables.userCourses('u-list'))).toEqual(['c-own']);
    // It read nothing outside its candidates: no scan, and every user read or write is one of them.
    expect(requests.filter((request) => request.command === 'ScanCommand')).toEqual([]);
    const userRequests = requests.filter((request) => request.table === tables.config.usersTable || request.command === 'QueryCommand');
    expect(new Set(userRequests.map((request) => request.userId))).toEqual(new Set(['u-pay', 'u-list']));
    expect(courseIdsOf(await tables.userCourses('u7'))).toEqual([]);
  });

  test('a validation after the sync makes its unfixed findings candidates of the next hourly sync', async () => {
    await seed(10);
    await run('cron-sync');
    await tables.putUser('u3', { L: [] });
    const validation = await run('validate', 'manual');
    expect(validation.issues.missing).toBe(1);

    const hourly = await run('cron-sync');
    expect(hourly.changes).toMatchObject({ validationRunId: validation.runId, candidates: 1, fromValidation: 1 });
    expect(courseIdsOf(await tables.userCourses('u3'))).toEqual(['c3']);
    // Once a sync has run after it, the validation's findings are not read again.
    const next = await run('cron-sync');
    expect(next.changes).toMatchObject({ validationRunId: null, fromValidation: 0 });
  });

  test('a write made while a run is in progress is never missed: the next window overlaps the last one', async () => {
    await seed(6);
    await run('cron-sync');
    await tables.putUser('u-late', { L: [] });
    let written = false;
    await run('cron-sync', 'schedule', {
      onTask: async (state) => {
        // During the run's collect step, after its window closed.
        if (state === RUN_STATES.collectChanges && !written) {
          written = true;
          await settle('o-late', 'u-late', 'c-late');
        }
      },
    });
    expect(written).toBe(true);
    const next = await run('cron-sync');
    expect(next.changes?.fromPayments).toBeGreaterThanOrEqual(1);
    expect(courseIdsOf(await tables.userCourses('u-late'))).toEqual(['c-late']);
  });

  test('a manual fix is a baseline too; a scheduled hold keeps the hourly sync report-only', async () => {
    await seed(4);
    await run('fix', 'manual');
    await runs.setHold('run-capped', 'the run reached MAX_USER_CHANGES_PER_RUN and stopped writing');
    await settle('o-held', 'u1', 'c-new');
    const held = await run('cron-sync');
    expect(held).toMatchObject({ held: true, dryRun: true, changes: expect.objectContaining({ candidates: 1 }) });
    expect(held.issues.missing).toBe(1);
    expect(courseIdsOf(await tables.userCourses('u1'))).toEqual(['c1']);
  });

  test('users named by the stream\'s failure-queue records are candidates, even when the write is older than the window', async () => {
    await seed(4);
    await tables.putUser('u-failed', { L: [] });
    // The stream gave up on this payment's batch: the capture has the record, the queue names its position.
    await settle('o-failed', 'u-failed', 'c-failed');
    const record = proxy.log.at(proxy.log.length - 1)!;
    const folder = mkdtempSync(join(tmpdir(), 'payment-sync-failures-'));
    try {
      const failureFile = join(folder, 'failures.jsonl');
      const sequence = record.dynamodb!.SequenceNumber!;
      writeFileSync(
        failureFile,
        `${JSON.stringify({
          requestContext: { requestId: 'r1', functionArn: 'arn:aws:lambda:local:0:function:stream', condition: 'RetryAttemptsExhausted', approximateInvokeCount: 3 },
          version: '1.0',
          timestamp: new Date().toISOString(),
          DDBStreamBatchInfo: { shardId: proxy.log.shardId, startSequenceNumber: sequence, endSequenceNumber: sequence, approximateArrivalOfFirstRecord: new Date().toISOString(), approximateArrivalOfLastRecord: new Date().toISOString(), batchSize: 1, streamArn: proxy.log.streamArn },
        })}\n`,
      );
      const streamFailures = new LocalStreamFailures(failureFile, proxy.log);
      // A full sync after the write: the change is older than the next window, the failure is not forgotten.
      await run('fix', 'manual', { streamFailures });
      await tables.putUser('u-failed', { L: [] });
      const hourly = await run('cron-sync', 'schedule', { streamFailures });
      expect(hourly.changes).toMatchObject({ fromFailures: 1, unreadableFailures: 0 });
      expect(courseIdsOf(await tables.userCourses('u-failed'))).toEqual(['c-failed']);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });
});
