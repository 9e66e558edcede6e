import '../local/quiet';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import { createSyncDeps, type SyncDeps } from '../../lambdas/core/deps';
import { runLayout } from '../../lambdas/core/jobs/full-run/layout';
import { RunRecords } from '../../lambdas/core/runs/run-records';
import { renderRunDefinition, runStateMachineLocally, type RunStage } from '../local/run-state-machine';
import { isSkipped } from '../../lambdas/core/jobs/full-run/prepare';
import { reconcileUser, type UserStatus } from '../../lambdas/core/jobs/user-reconcile';
import { joinBucket } from '../../lambdas/core/join/duckdb-join';
import type { WireItem } from '../../lambdas/core/rules/attribute-values';
import { encodeDataFile, MANIFEST_SUMMARY, readManifests } from '../../lambdas/core/snapshot/export-layout';
import { tableFolder, type SnapshotTable } from '../../lambdas/core/snapshot/scan-snapshot';
import { FolderStorage } from '../../lambdas/core/storage/folder-storage';
import { storageKey } from '../../lambdas/core/storage/run-storage';
import { scanSegmentPage } from '../../lambdas/core/store/table-scan';
import { createDynamoClient } from '../../lambdas/core/store/dynamo-client';
import { createStreamHandler } from '../../lambdas/stream/stream-batch';
import { localClient } from '../local/embedded-dynamodb';
import { startLocalStream } from '../local/stream/local-stream';
import { measureHourly, type HourlyFigures, type HourlyTask } from './hourly';
import { instrument, type Meter, type TableMeter } from './meter';
import { naiveValidate, type BaselineResult } from './naive-baseline';
import { CpuProfiler, type ProfileSummary, type StageWindow } from './profile';
import { dynamoItemSize } from './item-size';
import { scenarioConfig } from './workload';

/**
 * One measurement in a process of its own: the parent (run.ts) spawns this with a task as its
 * argument and reads one `@@BENCH {json}` line from its output. A process per measurement
 * gives each a clean heap and its own peak resident memory (`maxRSS`), which covers DuckDB's
 * native memory too.
 */
export type ChildTask =
  | { readonly kind: 'scan'; readonly endpoint: string; readonly scenario: string; readonly segments: number }
  | { readonly kind: 'baseline'; readonly endpoint: string; readonly scenario: string }
  | {
      readonly kind: 'full-run';
      readonly endpoint: string;
      readonly scenario: string;
      readonly mode: 'validate' | 'fix';
      readonly segments: number;
      readonly buckets: number;
      /** After the run: time the snapshot's encoding and the DuckDB join on their own. */
      readonly breakdown: boolean;
      /** Sample the main thread's stack during the run. */
      readonly profile: boolean;
      /** How many user ids needing a fix to hand back (for the per-user measurement). */
      readonly sampleFixable: number;
    }
  | { readonly kind: 'per-user'; readonly endpoint: string; readonly scenario: string; readonly userIds: readonly string[] }
  | { readonly kind: 'live'; readonly endpoint: string; readonly scenario: string; readonly writes: number; readonly users: number }
  | HourlyTask;

export interface ScanResult {
  readonly items: Record<SnapshotTable, number>;
  readonly pages: number;
  readonly consumedCapacity: number;
}

export interface StageTimes {
  readonly snapshot: number;
  readonly plan: number;
  readonly repair: number;
  readonly finalize: number;
}

export interface TableFigures {
  readonly items: number;
  readonly files: number;
  /** Bytes as DynamoDB bills them (dynamoItemSize), all items. */
  readonly dynamoBytes: number;
  /** Bytes of the items' DynamoDB JSON, as the export writes it (before gzip). */
  readonly jsonBytes: number;
  readonly gzipBytes: number;
}

export interface Breakdown {
  /** JSON.stringify + gzip of every data file, as the snapshot does while scanning. */
  readonly encodeMs: number;
  /** DuckDB: instance, both tables loaded from the gzipped files, until the join's first chunk. */
  readonly duckdbLoadMs: number;
  /** DuckDB: the rest of the join's rows streamed to JS (nothing done with them). */
  readonly duckdbDrainMs: number;
  readonly joinedRows: number;
}

export interface FullRunFigures {
  readonly status: string;
  /** The first render of the state machine's definition in this process (CDK synth), done before the clock starts. */
  readonly renderMs: number;
  readonly counts: Record<string, number>;
  readonly issues: Record<string, number>;
  readonly consumedCapacity: number;
  readonly stages: StageTimes;
  /** Resident memory sampled every 20 ms: the highest seen in each stage, MiB, with the JS heap in use then. */
  readonly rssByStage: Record<string, { readonly rssMb: number; readonly heapMb: number }>;
  /** Distinct users with an issue whose fix is not `none`: the users a fix has to write. */
  readonly usersNeedingFix: number;
  readonly issueLines: number;
  readonly changeLines: number;
  readonly changedUsers: number;
  readonly sampleFixable: readonly string[];
  readonly tables: Record<SnapshotTable, TableFigures>;
  readonly breakdown?: Breakdown;
  readonly profile?: ProfileSummary;
}

export interface PerUserFigures {
  readonly users: number;
  readonly statuses: Partial<Record<UserStatus, number>>;
}

export interface LiveFigures {
  readonly latenciesMs: readonly number[];
}

export interface ChildResult {
  readonly kind: ChildTask['kind'];
  readonly ms: number;
  /** Peak resident memory of this process, MiB, when the measurement ended. */
  readonly maxRssMb: number;
  /** CPU time (user + system, every thread: DuckDB's too) this process used during the measurement. */
  readonly cpuMs: number;
  /** The dynalite server's CPU time during the measurement (the parent fills it in). */
  serverCpuMs?: number;
  readonly calls: Record<string, number>;
  readonly failures: Record<string, number>;
  /** Capacity units consumed, by command (as the server reported them). */
  readonly units: Record<string, number>;
  /** Calls, items read and capacity by table (the run table's calls apart from the data's). */
  readonly tables?: Record<string, TableMeter>;
  readonly readUnits: number;
  readonly writeUnits: number;
  readonly scan?: ScanResult;
  readonly baseline?: BaselineResult;
  readonly fullRun?: FullRunFigures;
  readonly perUser?: PerUserFigures;
  readonly live?: LiveFigures;
  readonly hourly?: HourlyFigures;
}

const SNAPSHOT_TABLES: readonly SnapshotTable[] = ['payments', 'users'];

const peakRssMb = (): number => process.resourceUsage().maxRSS / 1024;

/** The bare parallel scan: every item of both tables read once, all segments at once, nothing else. */
async function bareScan(deps: SyncDeps, segments: number): Promise<ScanResult> {
  const items: Record<SnapshotTable, number> = { payments: 0, users: 0 };
  let pages = 0;
  let consumedCapacity = 0;
  const work = SNAPSHOT_TABLES.flatMap((table) => Array.from({ length: segments }, (_, segment) => ({ table, segment })));
  await Promise.all(
    work.map(async ({ table, segment }) => {
      const tableName = table === 'payments' ? deps.config.paymentsTable : deps.config.usersTable;
      let cursor;
      do {
        const page = await scanSegmentPage(deps.client, tableName, { segment, totalSegments: segments, cursor });
        items[table] += page.items.length;
        consumedCapacity += page.consumedCapacity;
        pages++;
        cursor = page.cursor;
      } while (cursor);
    }),
  );
  return { items, pages, consumedCapacity };
}

async function readLines(path: string): Promise<string[]> {
  try {
    return (await readFile(path, 'utf8')).split('\n').filter((line) => line !== '');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

async function snapshotFigures(storage: FolderStorage, snapshotFolder: string, encode: boolean): Promise<{ tables: Record<SnapshotTable, TableFigures>; encodeMs: number; files: Record<SnapshotTable, string[]> }> {
  const tables = {} as Record<SnapshotTable, TableFigures>;
  const files = {} as Record<SnapshotTable, string[]>;
  let encodeMs = 0;
  for (const table of SNAPSHOT_TABLES) {
    const manifest = await readManifests(storage, storageKey(tableFolder(snapshotFolder, table), MANIFEST_SUMMARY));
    const paths = await storage.localPaths(manifest.files.map((file) => file.dataFileS3Key));
    files[table] = paths;
    let items = 0;
    let dynamoBytes = 0;
    let jsonBytes = 0;
    let gzipBytes = 0;
    for (const path of paths) {
      gzipBytes += (await stat(path)).size;
      const lines = gunzipSync(await readFile(path)).toString('utf8').split('\n').filter((line) => line !== '');
      const page: WireItem[] = [];
      for (const line of lines) {
        const item = (JSON.parse(line) as { Item: WireItem }).Item;
        page.push(item);
        dynamoBytes += dynamoItemSize(item);
        jsonBytes += Buffer.byteLength(JSON.stringify(item));
      }
      items += page.length;
      if (encode) {
        const started = performance.now();
        encodeDataFile(page);
        encodeMs += performance.now() - started;
      }
    }
    tables[table] = { items, files: paths.length, dynamoBytes, jsonBytes, gzipBytes };
  }
  return { tables, encodeMs, files };
}

const cpuNow = (): number => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
};

async function fullRun(deps: SyncDeps, task: Extract<ChildTask, { kind: 'full-run' }>, started: { at: number; cpu: number }): Promise<{ figures: FullRunFigures; ms: number; rss: number; cpu: number }> {
  const root = await mkdtemp(join(tmpdir(), 'payment-sync-bench-'));
  try {
    const storage = new FolderStorage(root);
    const runId = `bench-${task.mode}`;
    // On AWS the definition is deployed once; here its first render loads the CDK (most of a
    // second), so it is done before the clock starts and reported on its own.
    const renderStarted = performance.now();
    renderRunDefinition(task.mode !== 'validate');
    const renderMs = performance.now() - renderStarted;
    const profiler = task.profile ? new CpuProfiler() : undefined;
    await profiler?.start();
    const t0 = performance.now();
    started.at = t0;
    started.cpu = cpuNow();
    const last: Partial<Record<RunStage, number>> = {};
    const samples: Array<{ at: number; rssMb: number; heapMb: number }> = [];
    const sample = (): void => {
      const { rss, heapUsed } = process.memoryUsage();
      samples.push({ at: performance.now(), rssMb: rss / 1048576, heapMb: heapUsed / 1048576 });
    };
    const sampler = setInterval(sample, 20);
    sampler.unref();
    const outcome = await runStateMachineLocally(
      { deps, storage, runs: new RunRecords(deps.client, deps.config.runsTable, deps.now) },
      { runId, mode: task.mode, trigger: 'manual', dryRun: task.mode === 'validate', segments: task.segments, buckets: task.buckets },
      {
        onProgress: (progress) => {
          last[progress.stage] = performance.now();
        },
      },
    );
    if (isSkipped(outcome)) throw new Error(`bench run skipped: ${outcome.skipped.runningRunId} holds the lock`);
    const result = outcome;
    const end = performance.now();
    clearInterval(sampler);
    sample();
    const cpu = cpuNow() - started.cpu;
    const rss = peakRssMb();
    const snapshotEnd = last.snapshot ?? t0;
    const planEnd = last.plan ?? snapshotEnd;
    const repairEnd = last.repair ?? planEnd;
    const stages: StageTimes = { snapshot: snapshotEnd - t0, plan: planEnd - snapshotEnd, repair: repairEnd - planEnd, finalize: end - repairEnd };
    const windows: StageWindow[] = [
      { stage: 'snapshot', from: t0, to: snapshotEnd },
      { stage: 'plan', from: snapshotEnd, to: planEnd },
      { stage: 'repair', from: planEnd, to: repairEnd },
      { stage: 'finalize', from: repairEnd, to: end },
    ];
    const profile = await profiler?.stop(windows);
    const rssByStage: Record<string, { rssMb: number; heapMb: number }> = {};
    for (const { at, rssMb, heapMb } of samples) {
      const window = windows.find((candidate) => at >= candidate.from && at <= candidate.to);
      const seen = window && rssByStage[window.stage];
      if (window && (!seen || rssMb > seen.rssMb)) rssByStage[window.stage] = { rssMb, heapMb };
    }

    const layout = runLayout(runId);
    const fixable = new Set<string>();
    const issueLines = await readLines(join(root, ...layout.issues.split('/')));
    for (const line of issueLines) {
      const issue = JSON.parse(line) as { fix: string; userId?: string };
      if (issue.fix !== 'none' && issue.userId !== undefined) fixable.add(issue.userId);
    }
    const changeLines = await readLines(join(root, ...layout.changes.split('/')));
    const changedUsers = new Set(changeLines.map((line) => (JSON.parse(line) as { userId: string }).userId)).size;

    const snapshot = await snapshotFigures(storage, layout.snapshot, task.breakdown);
    let breakdown: Breakdown | undefined;
    if (task.breakdown) {
      const joinStarted = performance.now();
      let first: number | undefined;
      let joinedRows = 0;
      for await (const rows of joinBucket({
        paymentFiles: snapshot.files.payments,
        userFiles: snapshot.files.users,
        paymentUserAttr: deps.config.payment.user,
        userKeyAttr: deps.config.user.key,
        bucket: 0,
        buckets: 1,
        limits: { memoryLimit: `${deps.config.joinMemoryMb}MB`, threads: Math.max(1, cpus().length), tempDirectory: root },
      })) {
        first ??= performance.now();
        joinedRows += rows.length;
      }
      const joinEnd = performance.now();
      breakdown = { encodeMs: snapshot.encodeMs, duckdbLoadMs: (first ?? joinEnd) - joinStarted, duckdbDrainMs: joinEnd - (first ?? joinEnd), joinedRows };
    }
    return {
      ms: end - t0,
      rss,
      cpu,
      figures: {
        status: result.status,
        renderMs,
        counts: { ...result.counts },
        issues: { ...result.issues },
        consumedCapacity: result.consumedCapacity,
        stages,
        rssByStage,
        usersNeedingFix: fixable.size,
        issueLines: issueLines.length,
        changeLines: changeLines.length,
        changedUsers,
        sampleFixable: [...fixable].slice(0, task.sampleFixable),
        tables: snapshot.tables,
        ...(breakdown && { breakdown }),
        ...(profile && { profile }),
      },
    };
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

async function perUser(deps: SyncDeps, userIds: readonly string[]): Promise<PerUserFigures> {
  const statuses: Partial<Record<UserStatus, number>> = {};
  for (const userId of userIds) {
    const { result } = await reconcileUser(deps, userId, { dryRun: false, runId: 'bench-per-user' });
    statuses[result.status] = (statuses[result.status] ?? 0) + 1;
  }
  return { users: userIds.length, statuses };
}

/** Webhook-style writes through the capture proxy; each timed until the stream handler's write is done. */
async function live(deps: SyncDeps, task: Extract<ChildTask, { kind: 'live' }>): Promise<LiveFigures> {
  const stream = await startLocalStream({ upstreamEndpoint: task.endpoint, paymentsTable: deps.config.paymentsTable, handler: createStreamHandler(deps) });
  const webhook = localClient(stream.endpoint);
  const latenciesMs: number[] = [];
  try {
    for (let i = 1; i <= task.writes; i++) {
      const started = performance.now();
      await webhook.send(
        new PutItemCommand({
          TableName: deps.config.paymentsTable,
          Item: {
            [deps.config.payment.id]: { S: `LIVE-${i}` },
            [deps.config.payment.user]: { S: `user-${String(1 + (i % task.users)).padStart(5, '0')}` },
            [deps.config.payment.course]: { S: `live-${i}` },
            [deps.config.payment.status]: { S: 'settlement' },
            [deps.config.payment.updated]: { S: new Date().toISOString() },
          },
        }),
      );
      await stream.idle();
      latenciesMs.push(performance.now() - started);
    }
  } finally {
    webhook.destroy();
    await stream.stop();
  }
  return { latenciesMs };
}

async function main(): Promise<void> {
  const task = JSON.parse(process.argv[2] ?? '') as ChildTask;
  if (task.kind === 'hourly') {
    // Its own clients, through its own capture proxy; the meter of the measured sync is the result's.
    const started = { at: performance.now(), cpu: cpuNow() };
    const hourly = await measureHourly(task);
    const { meter } = hourly.hourly;
    const answer: ChildResult = { kind: task.kind, ms: performance.now() - started.at, maxRssMb: peakRssMb(), cpuMs: cpuNow() - started.cpu, calls: meter.calls, failures: meter.failures, units: meter.units, tables: meter.tables, readUnits: meter.readUnits, writeUnits: meter.writeUnits, hourly };
    process.stdout.write(`\n@@BENCH ${JSON.stringify(answer)}\n`);
    return;
  }
  const config = scenarioConfig(task.endpoint, task.scenario);
  const deps = createSyncDeps(config, createDynamoClient(config));
  const meter: Meter = instrument(deps.client);
  const started = { at: performance.now(), cpu: cpuNow() };
  let ms: number | undefined;
  let rss: number | undefined;
  let cpu: number | undefined;
  const result: Partial<ChildResult> = {};
  switch (task.kind) {
    case 'scan':
      Object.assign(result, { scan: await bareScan(deps, task.segments) });
      break;
    case 'baseline':
      Object.assign(result, { baseline: await naiveValidate(deps.client, config) });
      break;
    case 'full-run': {
      const run = await fullRun(deps, task, started);
      ({ ms, rss, cpu } = run);
      Object.assign(result, { fullRun: run.figures });
      break;
    }
    case 'per-user':
      Object.assign(result, { perUser: await perUser(deps, task.userIds) });
      break;
    case 'live':
      Object.assign(result, { live: await live(deps, task) });
      break;
  }
  ms ??= performance.now() - started.at;
  cpu ??= cpuNow() - started.cpu;
  rss ??= peakRssMb();
  deps.client.destroy();
  const answer: ChildResult = { ...result, kind: task.kind, ms, maxRssMb: rss, cpuMs: cpu, calls: meter.calls, failures: meter.failures, units: meter.units, tables: meter.tables, readUnits: meter.readUnits, writeUnits: meter.writeUnits };
  process.stdout.write(`\n@@BENCH ${JSON.stringify(answer)}\n`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
