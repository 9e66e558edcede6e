import { logger } from '../../observability';
import { ReadBudget } from '../../snapshot/read-budget';
import { finishScanSnapshot, scanSnapshotSegment, type SegmentProgress } from '../../snapshot/scan-snapshot';
import { runLayout } from './layout';
import type { PreparedRun, RunTaskContext, ScanItem, SnapshotKeys } from './run-request';

export interface ScanTurn {
  readonly run: PreparedRun;
  readonly item: ScanItem;
}

export interface ScanTurnResult extends ScanTurn {
  /** False: the turn's time ran out; the state machine runs the next turn from the stored cursor. */
  readonly done: boolean;
  readonly items: number;
}

/** Time kept back from a Lambda's limit to store the page in hand and answer. */
export const TURN_MARGIN_MS = 60_000;

export interface TurnOptions {
  /** Milliseconds the invocation has left (Lambda's `getRemainingTimeInMillis`); undefined = no limit. */
  readonly remainingMs?: number;
  /** Called after each page: a local display follows the scan with it. */
  readonly onPage?: (item: ScanItem, progress: SegmentProgress) => void;
}

/**
 * One turn of a scan worker on one segment: pages from the stored cursor until the segment
 * ends or the turn's time does (the run's `taskBudgetMs`, or the Lambda's time less a margin).
 * Each worker paces itself to its share of the run's read budget.
 */
export async function scanSegmentTurn({ deps, storage }: RunTaskContext, turn: ScanTurn, options: TurnOptions = {}): Promise<ScanTurnResult> {
  const { run, item } = turn;
  const limits = [run.taskBudgetMs, options.remainingMs === undefined ? undefined : options.remainingMs - TURN_MARGIN_MS].filter((ms): ms is number => ms !== undefined && ms !== null);
  const deadline = limits.length > 0 ? deps.now() + Math.max(0, Math.min(...limits)) : undefined;
  const workers = 2 * run.segments;
  const share = deps.config.scanReadUnitsPerSecond === undefined ? undefined : deps.config.scanReadUnitsPerSecond / workers;
  const budget = new ReadBudget(share, deps.now);
  // The checkpoint is read once a turn and stored after every page.
  const progress = await scanSnapshotSegment(
    deps,
    storage,
    budget,
    { folder: runLayout(run.folder).snapshot, table: item.table, segment: item.segment, totalSegments: run.segments, buckets: run.buckets, pageSize: run.pageSize ?? undefined, deadline },
    options.onPage && ((page) => options.onPage?.(item, page)),
  );
  return { run, item, done: progress.done, items: progress.items };
}

export interface SnapshotTaskInput {
  readonly run: PreparedRun;
  /** Export mode: what DescribeExport answered for each table, payments first. */
  readonly exports?: readonly { readonly manifest: string }[];
}

export interface SnapshotResult extends SnapshotKeys {
  readonly items: number;
  readonly consumedCapacity: number;
}

/**
 * The snapshot is complete: a scan's segments become export-layout manifests; an export
 * already has them, so its manifest keys are passed on.
 */
export async function finishSnapshot({ deps, storage }: RunTaskContext, input: SnapshotTaskInput): Promise<SnapshotResult> {
  const { run } = input;
  if (input.exports) {
    const [payments, users] = input.exports;
    if (!payments || !users) throw new Error('an export snapshot needs the manifests of both tables');
    return { payments: payments.manifest, users: users.manifest, items: 0, consumedCapacity: 0 };
  }
  const times = { startedAt: new Date(run.snapshotAt).toISOString(), finishedAt: new Date(deps.now()).toISOString() };
  const folder = runLayout(run.folder).snapshot;
  const payments = await finishScanSnapshot(storage, { folder, table: 'payments', totalSegments: run.segments, ...times });
  const users = await finishScanSnapshot(storage, { folder, table: 'users', totalSegments: run.segments, ...times });
  logger.debug('snapshot finished', { payments: payments.items, users: users.items, consumedCapacity: payments.consumedCapacity + users.consumedCapacity });
  return { payments: payments.manifest, users: users.manifest, items: payments.items + users.items, consumedCapacity: payments.consumedCapacity + users.consumedCapacity };
}
