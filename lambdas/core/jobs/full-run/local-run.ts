import { cpus } from 'node:os';
import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { forEachConcurrently } from '../../backoff';
import type { SyncDeps } from '../../deps';
import type { RunMode } from '../../report/report';
import { ReadBudget } from '../../snapshot/read-budget';
import { finishScanSnapshot, scanSnapshotSegment, type SnapshotTable } from '../../snapshot/scan-snapshot';
import type { RunStorage } from '../../storage/run-storage';
import { finalizeRun, type FullRunResult, type RunStatus } from './finalize';
import { runLayout } from './layout';
import { planBucket, type PlanBucketResult } from './plan-bucket';
import { repairBatch, type RepairResult } from './repair-batch';

export interface FullRunOptions {
  readonly runId: string;
  readonly mode: RunMode;
  /** The run's folder in the storage; defaults to the run id. */
  readonly folder?: string;
  readonly dryRun: boolean;
  readonly segments: number;
  readonly buckets: number;
  /** Users a run may change before it stops writing; undefined = no cap (a person chose the run). */
  readonly maxUserChanges: number | undefined;
  /** Epoch ms after which the run stops between pages or stages and ends `incomplete`. */
  readonly deadline?: number;
  readonly pageSize?: number;
  /** Local disk for the join (its database and spill files). */
  readonly tempDirectory?: string;
  readonly onProgress?: (progress: RunProgress) => void;
}

export type RunStage = 'snapshot' | 'plan' | 'repair';

/** Items done of an estimate, per stage, for a progress display. */
export interface RunProgress {
  readonly stage: RunStage;
  readonly done: number;
  /** DescribeTable's item counts for the snapshot (updated about every six hours), the snapshot's own afterwards. */
  readonly total: number;
  readonly unit: 'items' | 'users';
}

const SNAPSHOT_TABLES: readonly SnapshotTable[] = ['payments', 'users'];

async function estimatedItems(deps: SyncDeps): Promise<number> {
  let total = 0;
  for (const table of [deps.config.paymentsTable, deps.config.usersTable]) {
    const { Table } = await deps.client.send(new DescribeTableCommand({ TableName: table }));
    total += Table?.ItemCount ?? 0;
  }
  return total;
}

/**
 * A full run in one process, through the same stages the state machine runs, one after the
 * other: snapshot (parallel scan segments of both tables into the export layout) → plan each
 * join bucket → repair each candidate file → finalize. Stages hand each other storage keys,
 * never data, and each is resumable on its own.
 */
export async function runFullReconciliation(deps: SyncDeps, storage: RunStorage, options: FullRunOptions): Promise<FullRunResult> {
  const { config } = deps;
  const startedAt = deps.now();
  const layout = runLayout(options.folder ?? options.runId);
  const writes = !options.dryRun && options.mode !== 'validate' && options.mode !== 'cron-validate';
  const pastDeadline = (): boolean => options.deadline !== undefined && deps.now() >= options.deadline;
  const plans: PlanBucketResult[] = [];
  const repairs: RepairResult[] = [];
  let consumedCapacity = 0;
  const finish = (status: RunStatus) =>
    finalizeRun(storage, { runId: options.runId, mode: options.mode, folder: layout.folder, dryRun: !writes, status, consumedCapacity, snapshotAt: startedAt, startedAt, finishedAt: deps.now(), plans, repairs });

  // Snapshot: every segment of both tables at once, each worker paced by one shared read budget.
  const budget = new ReadBudget(config.scanReadUnitsPerSecond, deps.now);
  const estimate = options.onProgress ? await estimatedItems(deps) : 0;
  options.onProgress?.({ stage: 'snapshot', done: 0, total: estimate, unit: 'items' });
  const scanned = new Map<string, number>();
  let snapshotDone = true;
  const work = SNAPSHOT_TABLES.flatMap((table) => Array.from({ length: options.segments }, (_, segment) => ({ table, segment })));
  await forEachConcurrently(work, work.length, async ({ table, segment }) => {
    for (;;) {
      // One page per turn, so progress is reported as items arrive; the checkpoint carries the cursor.
      const progress = await scanSnapshotSegment(deps, storage, budget, {
        folder: layout.snapshot,
        table,
        segment,
        totalSegments: options.segments,
        buckets: options.buckets,
        deadline: options.deadline,
        pageSize: options.pageSize,
        maxPages: 1,
      });
      scanned.set(`${table}/${segment}`, progress.items);
      options.onProgress?.({ stage: 'snapshot', done: [...scanned.values()].reduce((a, b) => a + b, 0), total: estimate, unit: 'items' });
      if (progress.done) return;
      if (pastDeadline()) {
        snapshotDone = false;
        return;
      }
    }
  });
  if (!snapshotDone) return finish('incomplete');
  const times = { startedAt: new Date(startedAt).toISOString(), finishedAt: new Date(deps.now()).toISOString() };
  const [payments, users] = await Promise.all(SNAPSHOT_TABLES.map((table) => finishScanSnapshot(storage, { folder: layout.snapshot, table, totalSegments: options.segments, ...times })));
  consumedCapacity = payments!.consumedCapacity + users!.consumedCapacity;
  const [paymentsManifest, usersManifest] = [payments!.manifest, users!.manifest];

  // Plan: one bucket after the other; DuckDB uses the cores within a bucket. Each stage reports
  // its start, so a display measures its rate from there.
  options.onProgress?.({ stage: 'plan', done: 0, total: users!.items, unit: 'users' });
  const limits = { memoryLimit: `${config.joinMemoryMb}MB`, threads: Math.max(1, cpus().length), tempDirectory: options.tempDirectory };
  for (let bucket = 0; bucket < options.buckets; bucket++) {
    if (pastDeadline()) return finish('incomplete');
    plans.push(await planBucket(deps, storage, { runId: options.runId, folder: layout.folder, paymentsManifest, usersManifest, bucket, buckets: options.buckets, writes, snapshotAt: startedAt, limits }));
    options.onProgress?.({ stage: 'plan', done: plans.reduce((sum, plan) => sum + plan.usersScanned, 0), total: users!.items, unit: 'users' });
  }

  // Repair: candidate files in turn, each starting with what is left of the run's caps.
  const candidateKeys = plans.flatMap((plan) => plan.candidateKeys);
  const candidates = plans.reduce((sum, plan) => sum + plan.candidates, 0);
  let changesLeft = options.maxUserChanges;
  let revocationsLeft = config.maxRevocationsPerRun;
  let confirmed = 0;
  if (candidateKeys.length > 0) options.onProgress?.({ stage: 'repair', done: 0, total: candidates, unit: 'users' });
  for (const candidateKey of candidateKeys) {
    if (pastDeadline()) return finish('incomplete');
    const repair = await repairBatch(deps, storage, { runId: options.runId, folder: layout.folder, candidateKey, changesLeft, revocationsLeft });
    repairs.push(repair);
    if (changesLeft !== undefined) changesLeft -= repair.usersFixed;
    revocationsLeft -= repair.coursesRemoved;
    confirmed += repair.users;
    options.onProgress?.({ stage: 'repair', done: confirmed, total: candidates, unit: 'users' });
  }
  return finish('completed');
}
