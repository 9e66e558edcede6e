import { cpus } from 'node:os';
import type { SyncDeps } from '../../deps';
import { logger } from '../../observability';
import { joinBucket, type JoinedRow, type JoinLimits } from '../../join/duckdb-join';
import { emptyIssueCounts, type IssueLine } from '../../report/report';
import type { WireItem } from '../../rules/attribute-values';
import { decodeCourses } from '../../rules/courses-list';
import { isInFlight } from '../../rules/payment';
import { collectEvidence, FULL_SCOPE, planUser, type Issue } from '../../rules/plan';
import { filesOfBucket, readManifests } from '../../snapshot/export-layout';
import type { RunStorage } from '../../storage/run-storage';
import { orphanIssues, planPolicy, readPayments } from '../plan-inputs';
import { PartWriter, runLayout } from './layout';
import { CANDIDATES_PER_FILE, type PlanBucketResult, type PlanTaskResult } from './plan-result';
import type { PreparedRun, RunTaskContext, SnapshotKeys } from './run-request';


export interface PlanBucketTask {
  readonly runId: string;
  readonly folder: string;
  readonly paymentsManifest: string;
  readonly usersManifest: string;
  readonly bucket: number;
  readonly buckets: number;
  /** Fix modes: users whose plan changes something become candidates and their lines are the repair's to write. */
  readonly writes: boolean;
  /** Epoch ms the grace window is measured from: the snapshot's time. */
  readonly snapshotAt: number;
  readonly limits: JoinLimits;
}


const byOrderId = (a: WireItem, b: WireItem, attr: string): number => {
  const left = a[attr]?.S ?? '';
  const right = b[attr]?.S ?? '';
  return left < right ? -1 : left > right ? 1 : 0;
};

const itemOfLine = (line: string): WireItem => (JSON.parse(line) as { Item: WireItem }).Item;

/**
 * Plan: every user of one bucket of the join through the one decision function, with every
 * payment of theirs at hand (so `unbacked` costs nothing). Report lines go to the bucket's
 * report part; users whose plan changes something go to candidate files for the repair.
 */
export async function planBucket(deps: SyncDeps, storage: RunStorage, task: PlanBucketTask): Promise<PlanBucketResult> {
  const { config } = deps;
  const layout = runLayout(task.folder);
  const [payments, users] = await Promise.all([readManifests(storage, task.paymentsManifest), readManifests(storage, task.usersManifest)]);
  const [paymentFiles, userFiles] = await Promise.all([
    storage.localPaths(filesOfBucket(payments.files, task.bucket, task.buckets)),
    storage.localPaths(filesOfBucket(users.files, task.bucket, task.buckets)),
  ]);
  const grace = { now: task.snapshotAt, graceMinutes: config.graceMinutes };
  const policy = planPolicy(config, task.snapshotAt);
  const issues = emptyIssueCounts();
  const lines = new PartWriter<IssueLine>(storage, (part) => layout.part(layout.planStage(task.bucket), 'issues', part));
  let candidates: string[] = [];
  const candidateKeys: string[] = [];
  let candidateCount = 0;
  let paymentsScanned = 0;
  let usersScanned = 0;
  let inFlight = 0;
  const report = async (found: readonly Issue[]): Promise<void> => {
    for (const issue of found) {
      issues[issue.kind]++;
      await lines.add({ ...issue, runId: task.runId, applied: false });
    }
  };
  const flushCandidates = async (): Promise<void> => {
    if (candidates.length === 0) return;
    const key = layout.candidateFile(task.bucket, candidateKeys.length);
    await storage.put(key, JSON.stringify(candidates));
    candidateKeys.push(key);
    candidates = [];
  };

  const planRow = async (row: JoinedRow): Promise<void> => {
    const items = row.payments.map(itemOfLine).sort((a, b) => byOrderId(a, b, config.payment.id));
    paymentsScanned += items.length;
    const read = readPayments(items, config);
    const settled = read.payments.filter((payment) => !isInFlight(payment, grace.now, grace.graceMinutes));
    inFlight += read.payments.length - settled.length;
    if (row.userId === undefined || row.user === undefined) {
      await report(read.problems);
      if (row.userId !== undefined) await report(orphanIssues(row.userId, settled));
      return;
    }
    usersScanned++;
    const user = itemOfLine(row.user);
    const evidence = collectEvidence(read.payments, { complete: true, grace });
    const plan = planUser(row.userId, decodeCourses(user[config.user.courses]), evidence, FULL_SCOPE, policy);
    if (!plan.next || !task.writes) return report([...read.problems, ...plan.issues]);
    // A candidate's lines, its payments' problems included, are the repair's to write from a fresh read.
    candidates.push(row.userId);
    candidateCount++;
    if (candidates.length >= CANDIDATES_PER_FILE) await flushCandidates();
  };

  for await (const rows of joinBucket({
    paymentFiles,
    userFiles,
    paymentUserAttr: config.payment.user,
    userKeyAttr: config.user.key,
    bucket: task.bucket,
    buckets: task.buckets,
    limits: task.limits,
  })) {
    for (const row of rows) await planRow(row);
  }
  await lines.close();
  await flushCandidates();
  logger.debug('plan: bucket done', { runId: task.runId, bucket: task.bucket, buckets: task.buckets, users: usersScanned, payments: paymentsScanned, inFlight, candidates: candidateCount, issues });
  return { bucket: task.bucket, paymentsScanned, usersScanned, inFlight, issues, candidates: candidateCount, candidateKeys };
}

export interface PlanTaskInput {
  readonly run: PreparedRun;
  readonly snapshot: SnapshotKeys;
  readonly bucket: number;
}


/** The join-and-plan task of one bucket: its figures are stored for finalize, its candidate files handed on. */
export async function planBucketTask({ deps, storage }: RunTaskContext, input: PlanTaskInput): Promise<PlanTaskResult> {
  const { run, snapshot, bucket } = input;
  const layout = runLayout(run.folder);
  const result = await planBucket(deps, storage, {
    runId: run.runId,
    folder: run.folder,
    paymentsManifest: snapshot.payments,
    usersManifest: snapshot.users,
    bucket,
    buckets: run.buckets,
    writes: run.writes,
    snapshotAt: run.snapshotAt,
    limits: { memoryLimit: `${deps.config.joinMemoryMb}MB`, threads: Math.max(1, cpus().length) },
  });
  await storage.put(layout.result(layout.planStage(bucket)), JSON.stringify(result));
  return { bucket, candidateKeys: result.candidateKeys, usersScanned: result.usersScanned, candidates: result.candidates };
}
