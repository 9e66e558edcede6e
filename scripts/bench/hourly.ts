import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutItemCommand, UpdateItemCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { createSyncDeps, type SyncDeps } from '../../lambdas/core/deps';
import type { FullRunResult } from '../../lambdas/core/jobs/full-run/finalize';
import { runFolderKey, runLayout } from '../../lambdas/core/jobs/full-run/layout';
import { isSkipped } from '../../lambdas/core/jobs/full-run/prepare';
import { readPayments } from '../../lambdas/core/jobs/plan-inputs';
import { reconcileUser } from '../../lambdas/core/jobs/user-reconcile';
import type { RunMode } from '../../lambdas/core/report/report';
import type { WireItem } from '../../lambdas/core/rules/attribute-values';
import { listedCourseIds } from '../../lambdas/core/rules/courses-list';
import { RunRecords, type RunTrigger } from '../../lambdas/core/runs/run-records';
import { FolderStorage } from '../../lambdas/core/storage/folder-storage';
import { createDynamoClient } from '../../lambdas/core/store/dynamo-client';
import { LOCAL_REGION } from '../local/embedded-dynamodb';
import { prng } from '../local/prng';
import { RUN_STATES } from '../../lib/constructs/run-definition';
import { renderRunDefinition, runStateMachineLocally } from '../local/run-state-machine';
import { startCaptureProxy } from '../local/stream/capture-proxy';
import { ChangeLog, type ChangeLogEntry } from '../local/stream/change-log';
import { dynamoItemSize } from './item-size';
import { instrument, meterDelta, meterSnapshot, type Meter } from './meter';
import { scenarioConfig } from './workload';

/**
 * The hourly sync by changes (issue 9) on the bench's loaded scenario, in one process: a
 * capture proxy with a change log in front of the bench's dynalite, every client (the run's,
 * its run records, the drift's writer) going through it, and one clock for the change log, the
 * run's deps and its run records, moved forward instead of waited for:
 *
 * (a) a full fix (the baseline: what every hourly run read before incremental syncs);
 * (b) +60 min, an hourly sync (it absorbs whatever the fix wrote: its writes fall in the overlap);
 * (c) +60 min, drift planted through the proxy: settled payments for existing users and courses
 *     they do not have (the stream stopped: nothing grants them), and user lists overwritten
 *     without one of their paid courses (the LMS writing back a stale copy);
 * (d) the hourly sync that should find and repair exactly the drifted users, measured.
 */
export interface HourlyTask {
  readonly kind: 'hourly';
  readonly endpoint: string;
  readonly scenario: string;
  readonly segments: number;
  readonly buckets: number;
  /** Users in the scenario (`user-00001` …). */
  readonly users: number;
  readonly seed: number;
  /** Settled payments planted for clean users, for courses they neither list nor paid for. */
  readonly driftPayments: number;
  /** Clean users whose list is written back without one of its paid courses. */
  readonly driftLists: number;
}

/** One run of the sequence. */
export interface HourlyRunFigures {
  readonly runId: string;
  readonly mode: RunMode;
  /** Bench clock minutes after the change log began. */
  readonly atMinutes: number;
  readonly ms: number;
  readonly cpuMs: number;
  /** From the start to the first repair batch (the snapshot and plan of a full run; the exports and collect step of an hourly one). */
  readonly beforeRepairMs: number;
  readonly status: string;
  readonly counts: Record<string, number>;
  readonly issues: Record<string, number>;
  readonly changes?: FullRunResult['changes'];
  readonly fullBecause?: string;
  readonly capped: boolean;
  readonly held: boolean;
  readonly consumedCapacity: number;
  /** What this run's client sent (the capture's own reads around each write are the proxy's, not counted). */
  readonly meter: Meter;
  /** Users this run wrote (its changes.jsonl). */
  readonly repairedUsers: readonly string[];
}

/** An incremental export's data, per table: items changed in the window (one line each) and their images' sizes. */
export interface ExportFigures {
  readonly lines: number;
  /** Lines with an old image (the item existed before the window). */
  readonly withOldImage: number;
  readonly newImageBytes: number;
  readonly oldImageBytes: number;
}

export interface HourlyFigures {
  /** The scenario's table names (the meter's keys). */
  readonly tables: { readonly payments: string; readonly users: string; readonly runs: string };
  /** The first render of the state machine's definition (CDK synth) in this process, done before any run is timed. */
  readonly renderMs: number;
  readonly full: HourlyRunFigures;
  readonly absorb: HourlyRunFigures;
  readonly hourly: HourlyRunFigures;
  readonly drift: {
    readonly payments: number;
    readonly lists: number;
    /** Distinct users among the payments' and among the lists'. */
    readonly paymentUsers: number;
    readonly listUsers: number;
    /** Distinct users planted, each confirmed drifted (a dry-run reconcile would fix it) before the sync. */
    readonly driftedUsers: readonly string[];
    /** Planted users a dry-run reconcile did not find drifted (should be none). */
    readonly notDrifted: readonly string[];
    /** Users picked at random and passed over: not in sync before the drift (in-flight payments), or nothing to plant. */
    readonly passedOver: number;
    readonly plantMs: number;
  };
  /** Drifted users the hourly sync did not write, and users it wrote that were not drifted. */
  readonly missed: readonly string[];
  readonly extra: readonly string[];
  /** Drifted users a dry-run reconcile still finds out of sync after the hourly sync. */
  readonly stillDrifted: number;
  /** The hourly sync's window as the incremental export sees it, per table. */
  readonly exported: Record<'payments' | 'users', ExportFigures>;
}

const COURSES = Array.from({ length: 40 }, (_, i) => `course-${String(i + 1).padStart(3, '0')}`);
const MINUTE = 60_000;

const cpuNow = (): number => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
};

/** A user as it stood before the drift: in sync or not, what it lists, which listed courses only paid payments back. */
interface Inspected {
  readonly inSync: boolean;
  readonly list: readonly AttributeValue[] | undefined;
  readonly listed: ReadonlySet<string>;
  readonly paidCourses: ReadonlySet<string>;
  readonly paymentCourses: ReadonlySet<string>;
}

async function inspect(deps: SyncDeps, userId: string): Promise<Inspected> {
  const { result } = await reconcileUser(deps, userId, { dryRun: true, runId: 'bench-hourly-inspect', grace: true });
  const snapshot = await deps.users.get(userId);
  const { payments } = readPayments(await deps.payments.queryByUser(userId), deps.config);
  const paymentCourses = new Set(payments.flatMap((payment) => payment.courseIds));
  const listed = new Set(listedCourseIds(snapshot.courses));
  // A course whose every payment is paid (no refund, no pending one): removing it is drift the sync must undo.
  const paidCourses = new Set([...listed].filter((course) => {
    const backing = payments.filter((payment) => payment.courseIds.includes(course));
    return backing.length > 0 && backing.every((payment) => payment.classification === 'paid');
  }));
  return { inSync: result.status === 'in-sync', list: snapshot.raw?.L as AttributeValue[] | undefined, listed, paidCourses, paymentCourses };
}

/** The change log's writes to one table in [from, to), compacted as an incremental export compacts them (one line per item). */
async function exportFigures(changeLog: ChangeLog, table: string, from: Date, to: Date): Promise<ExportFigures> {
  const items = new Map<string, { old: ChangeLogEntry['oldImage']; next: ChangeLogEntry['newImage'] }>();
  for await (const entry of changeLog.entries(table, { from, to })) {
    const key = JSON.stringify(Object.keys(entry.keys).sort().map((name) => [name, entry.keys[name]]));
    const seen = items.get(key);
    if (seen) seen.next = entry.newImage;
    else items.set(key, { old: entry.oldImage, next: entry.newImage });
  }
  let lines = 0;
  let withOldImage = 0;
  let newImageBytes = 0;
  let oldImageBytes = 0;
  for (const { old, next } of items.values()) {
    if (!old && !next) continue;
    lines++;
    if (next) newImageBytes += dynamoItemSize(next as WireItem);
    if (old) {
      withOldImage++;
      oldImageBytes += dynamoItemSize(old as WireItem);
    }
  }
  return { lines, withOldImage, newImageBytes, oldImageBytes };
}

export async function measureHourly(task: HourlyTask): Promise<HourlyFigures> {
  let offsetMs = 0;
  const now = (): number => Date.now() + offsetMs;
  const changeLog = new ChangeLog({ now });
  const changesSince = now();
  const direct = scenarioConfig(task.endpoint, task.scenario);
  const proxy = await startCaptureProxy({ upstreamEndpoint: task.endpoint, tableName: direct.paymentsTable, region: LOCAL_REGION, changeLog, usersTableName: direct.usersTable });
  const config = scenarioConfig(proxy.endpoint, task.scenario);
  // The runs' client, metered; the drift's writer and inspector is another, unmetered one.
  const client = createDynamoClient(config);
  const meter = instrument(client);
  const deps = createSyncDeps(config, client, now);
  const runs = new RunRecords(client, config.runsTable, now);
  const writer = createDynamoClient(config);
  const plantDeps = createSyncDeps(config, writer, now);
  const root = await mkdtemp(join(tmpdir(), 'payment-sync-bench-hourly-'));
  const storage = new FolderStorage(root);
  try {
    // The definition's first render loads the CDK (most of a second): not part of any run on AWS.
    let started = performance.now();
    renderRunDefinition(true);
    const renderMs = performance.now() - started;

    const run = async (runId: string, mode: RunMode, trigger: RunTrigger): Promise<HourlyRunFigures> => {
      const before = meterSnapshot(meter);
      const cpu = cpuNow();
      const t0 = performance.now();
      let firstRepair: number | undefined;
      const outcome = await runStateMachineLocally(
        { deps, storage, runs },
        { runId, mode, trigger, segments: task.segments, buckets: task.buckets },
        {
          changeLog,
          changesSince,
          onTask: (state) => {
            if (state === RUN_STATES.repairBatch) firstRepair ??= performance.now();
          },
        },
      );
      const end = performance.now();
      const cpuMs = cpuNow() - cpu;
      if (isSkipped(outcome)) throw new Error(`bench hourly run skipped: ${outcome.skipped.runningRunId} holds the lock`);
      const changes = (await storage.getText(runLayout(runFolderKey(storage, runId)).changes)) ?? '';
      const repairedUsers = [...new Set(changes.split('\n').filter((line) => line !== '').map((line) => (JSON.parse(line) as { userId: string }).userId))].sort();
      return {
        runId,
        mode,
        atMinutes: Math.round(offsetMs / MINUTE),
        ms: end - t0,
        cpuMs,
        beforeRepairMs: (firstRepair ?? end) - t0,
        status: outcome.status,
        counts: { ...outcome.counts },
        issues: { ...outcome.issues },
        ...(outcome.changes && { changes: outcome.changes }),
        ...(outcome.fullBecause && { fullBecause: outcome.fullBecause }),
        capped: outcome.capped,
        held: outcome.held,
        consumedCapacity: outcome.consumedCapacity,
        meter: meterDelta(before, meterSnapshot(meter)),
        repairedUsers,
      };
    };

    // (a) The baseline: a full fix, run by hand.
    const full = await run('bench-hourly-full-fix', 'fix', 'manual');
    // (b) An hour later, the scheduled sync: reads what changed since (a)'s snapshot less the overlap.
    offsetMs += 60 * MINUTE;
    const absorb = await run('bench-hourly-sync-1', 'cron-sync', 'schedule');

    // (c) Another hour, and drift written through the capture while the stream is stopped.
    offsetMs += 60 * MINUTE;
    started = performance.now();
    const random = prng(task.seed ^ 0x5eed_0009);
    const pickUser = (): string => `user-${String(1 + Math.floor(random() * task.users)).padStart(5, '0')}`;
    const inspected = new Map<string, Inspected>();
    const look = async (userId: string): Promise<Inspected> => {
      let seen = inspected.get(userId);
      if (!seen) inspected.set(userId, (seen = await inspect(plantDeps, userId)));
      return seen;
    };
    const planted = new Map<string, Set<string>>();
    const paymentUsers = new Set<string>();
    const listUsers = new Set<string>();
    let passedOver = 0;
    const attempts = (task.driftPayments + task.driftLists) * 50 + 100;
    const p = config.payment;
    // Settled long enough ago to be outside the bench's grace window (60 min): the sync must not leave it to the stream.
    const settledAt = (): string => new Date(now() - (config.graceMinutes + 10) * MINUTE).toISOString();
    for (let i = 0; i < task.driftPayments; ) {
      if (passedOver > attempts) throw new Error(`could not find ${task.driftPayments} users to plant payments for`);
      const userId = pickUser();
      const user = await look(userId);
      const mine = planted.get(userId) ?? new Set<string>();
      const free = COURSES.filter((id) => !user.listed.has(id) && !user.paymentCourses.has(id) && !mine.has(id));
      const course = free[Math.floor(random() * free.length)];
      if (!user.inSync || course === undefined) {
        passedOver++;
        continue;
      }
      await writer.send(
        new PutItemCommand({
          TableName: config.paymentsTable,
          Item: {
            [p.id]: { S: `DRIFT-${task.seed}-${String(i + 1).padStart(4, '0')}` },
            [p.user]: { S: userId },
            [p.course]: { S: course },
            [p.status]: { S: 'settlement' },
            grossAmount: { N: '150000' },
            paymentType: { S: 'bank_transfer' },
            createdAt: { S: settledAt() },
            [p.updated]: { S: settledAt() },
          },
        }),
      );
      mine.add(course);
      planted.set(userId, mine);
      paymentUsers.add(userId);
      i++;
    }
    for (let i = 0; i < task.driftLists; ) {
      if (passedOver > attempts) throw new Error(`could not find ${task.driftLists} users whose lists to overwrite`);
      const userId = pickUser();
      const user = await look(userId);
      const paid = [...user.paidCourses];
      const drop = paid[Math.floor(random() * paid.length)];
      if (listUsers.has(userId) || !user.inSync || drop === undefined || !user.list) {
        passedOver++;
        continue;
      }
      // Written back without one paid course: a stale copy from the LMS's own code.
      const stale = user.list.filter((entry) => (entry.S ?? entry.M?.courseId?.S) !== drop);
      await writer.send(
        new UpdateItemCommand({
          TableName: config.usersTable,
          Key: { [config.user.key]: { S: userId } },
          UpdateExpression: 'SET #c = :c',
          ExpressionAttributeNames: { '#c': config.user.courses },
          ExpressionAttributeValues: { ':c': { L: stale } },
        }),
      );
      listUsers.add(userId);
      i++;
    }
    const plantedUsers = [...new Set([...paymentUsers, ...listUsers])].sort();
    const driftedUsers: string[] = [];
    const notDrifted: string[] = [];
    for (const userId of plantedUsers) {
      const { result } = await reconcileUser(plantDeps, userId, { dryRun: true, runId: 'bench-hourly-check', grace: true });
      (result.status === 'would-fix' ? driftedUsers : notDrifted).push(userId);
    }
    const plantMs = performance.now() - started;

    // (d) The hourly sync that should repair exactly the drift.
    const hourly = await run('bench-hourly-sync-2', 'cron-sync', 'schedule');
    const repaired = new Set(hourly.repairedUsers);
    const drifted = new Set(driftedUsers);
    let stillDrifted = 0;
    for (const userId of driftedUsers) {
      const { result } = await reconcileUser(plantDeps, userId, { dryRun: true, runId: 'bench-hourly-check', grace: true });
      if (result.status !== 'in-sync') stillDrifted++;
    }
    const window = hourly.changes;
    const from = window ? new Date(window.from) : new Date(0);
    const to = window ? new Date(window.to) : new Date(0);
    return {
      tables: { payments: config.paymentsTable, users: config.usersTable, runs: config.runsTable },
      renderMs,
      full,
      absorb,
      hourly,
      drift: { payments: task.driftPayments, lists: task.driftLists, paymentUsers: paymentUsers.size, listUsers: listUsers.size, driftedUsers, notDrifted, passedOver, plantMs },
      missed: driftedUsers.filter((userId) => !repaired.has(userId)),
      extra: hourly.repairedUsers.filter((userId) => !drifted.has(userId)),
      stillDrifted,
      exported: {
        payments: await exportFigures(changeLog, config.paymentsTable, from, to),
        users: await exportFigures(changeLog, config.usersTable, from, to),
      },
    };
  } finally {
    client.destroy();
    writer.destroy();
    await proxy.close();
    await rm(root, { recursive: true, force: true });
  }
}
