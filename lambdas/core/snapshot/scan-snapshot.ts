import type { SyncDeps } from '../deps';
import { logger } from '../observability';
import { scanSegmentPage, type ScanCursor } from '../store/table-scan';
import { storageKey, type RunStorage } from '../storage/run-storage';
import { bucketOfKey, keyOfItem } from '../join/buckets';
import type { WireItem } from '../rules/attribute-values';
import { encodeDataFile, writeManifests, type ManifestFileLine } from './export-layout';
import type { ReadBudget } from './read-budget';

export type SnapshotTable = 'payments' | 'users';

/** Where a segment of a scan snapshot stands; stored after every page, so a worker can stop anywhere. */
export interface SegmentCheckpoint {
  readonly cursor: ScanCursor | undefined;
  readonly done: boolean;
  /** Pages read so far: the next page's number. */
  readonly page: number;
  readonly files: readonly ManifestFileLine[];
  readonly consumedCapacity: number;
}

export interface SegmentTask {
  /** The snapshot's folder in the run's storage, e.g. `runs/<run id>/snapshot`. */
  readonly folder: string;
  readonly table: SnapshotTable;
  readonly segment: number;
  readonly totalSegments: number;
  /** Each page is written as one file per join bucket, so that a bucket's join reads only its own files. */
  readonly buckets: number;
  /** Epoch ms after which the worker stops at the next page and answers `done: false`; it reads one page at least, so every turn advances. */
  readonly deadline?: number;
  /** Pages this turn may read at most; undefined = until the segment ends or the deadline. */
  readonly maxPages?: number;
  readonly pageSize?: number;
}

export interface SegmentProgress {
  readonly done: boolean;
  readonly items: number;
  readonly consumedCapacity: number;
}

const pad = (value: number, width: number): string => String(value).padStart(width, '0');

export function tableFolder(folder: string, table: SnapshotTable): string {
  return storageKey(folder, table);
}

function checkpointKey(task: Pick<SegmentTask, 'folder' | 'table' | 'segment'>): string {
  return storageKey(tableFolder(task.folder, task.table), 'segments', `segment-${pad(task.segment, 4)}.json`);
}

async function readCheckpoint(storage: RunStorage, task: Pick<SegmentTask, 'folder' | 'table' | 'segment'>): Promise<SegmentCheckpoint> {
  const text = await storage.getText(checkpointKey(task));
  return text === undefined ? { cursor: undefined, done: false, page: 0, files: [], consumedCapacity: 0 } : (JSON.parse(text) as SegmentCheckpoint);
}

const itemsOf = (checkpoint: SegmentCheckpoint): number => checkpoint.files.reduce((sum, file) => sum + file.itemCount, 0);

/** One page as one data file per bucket that has items in it; names fixed by position, so a rewrite replaces. */
async function writePage(storage: RunStorage, task: SegmentTask, keyAttr: string, pageNumber: number, items: readonly WireItem[]): Promise<ManifestFileLine[]> {
  const byBucket = new Map<number, WireItem[]>();
  for (const item of items) {
    const bucket = bucketOfKey(keyOfItem(item[keyAttr]), task.buckets);
    const bucketItems = byBucket.get(bucket);
    if (bucketItems) bucketItems.push(item);
    else byBucket.set(bucket, [item]);
  }
  const files: ManifestFileLine[] = [];
  for (const [bucket, bucketItems] of [...byBucket].sort(([a], [b]) => a - b)) {
    const name = `segment-${pad(task.segment, 4)}-page-${pad(pageNumber, 6)}-bucket-${pad(bucket, 4)}.json.gz`;
    const dataFileS3Key = storageKey(tableFolder(task.folder, task.table), 'data', name);
    const { body, md5Checksum } = encodeDataFile(bucketItems);
    await storage.put(dataFileS3Key, body);
    files.push({ itemCount: bucketItems.length, md5Checksum, dataFileS3Key, bucket, buckets: task.buckets });
  }
  return files;
}

/**
 * One worker's turn on one segment of a table: scan pages from the stored cursor, write each
 * page as it is read (raw wire items, never unmarshalled; one file per join bucket), then
 * store the new cursor. A page's file name is fixed by its position, so a worker killed between the file and
 * the cursor rewrites the same file on resume: a resumed segment holds exactly what an
 * uninterrupted one does. Reads are paced by the shared read budget.
 */
export async function scanSnapshotSegment(
  deps: SyncDeps,
  storage: RunStorage,
  budget: ReadBudget,
  task: SegmentTask,
  /** Told after each stored page: a display follows the scan with it. */
  onPage?: (progress: SegmentProgress) => void,
): Promise<SegmentProgress> {
  let checkpoint = await readCheckpoint(storage, task);
  let pageNumber = checkpoint.page;
  const tableName = task.table === 'payments' ? deps.config.paymentsTable : deps.config.usersTable;
  const keyAttr = task.table === 'payments' ? deps.config.payment.user : deps.config.user.key;
  for (let pages = 0; !checkpoint.done && pages < (task.maxPages ?? Infinity); pages++) {
    if (pages > 0 && task.deadline !== undefined && deps.now() >= task.deadline) break;
    await budget.ready();
    const page = await scanSegmentPage(deps.client, tableName, {
      segment: task.segment,
      totalSegments: task.totalSegments,
      cursor: checkpoint.cursor,
      pageSize: task.pageSize,
    });
    budget.spend(page.consumedCapacity);
    const files = await writePage(storage, task, keyAttr, pageNumber, page.items);
    pageNumber++;
    checkpoint = { cursor: page.cursor, done: page.cursor === undefined, page: pageNumber, files: [...checkpoint.files, ...files], consumedCapacity: checkpoint.consumedCapacity + page.consumedCapacity };
    await storage.put(checkpointKey(task), JSON.stringify(checkpoint));
    onPage?.({ done: checkpoint.done, items: itemsOf(checkpoint), consumedCapacity: checkpoint.consumedCapacity });
  }
  return { done: checkpoint.done, items: itemsOf(checkpoint), consumedCapacity: checkpoint.consumedCapacity };
}

export interface FinishedSnapshot {
  /** The key of `manifest-summary.json`: what the join is given. */
  readonly manifest: string;
  readonly items: number;
  readonly consumedCapacity: number;
}

/** Once every segment is done: the manifests that make the scanned files an export-layout snapshot. */
export async function finishScanSnapshot(
  storage: RunStorage,
  task: { readonly folder: string; readonly table: SnapshotTable; readonly totalSegments: number; readonly startedAt: string; readonly finishedAt: string },
): Promise<FinishedSnapshot> {
  const files: ManifestFileLine[] = [];
  let consumedCapacity = 0;
  for (let segment = 0; segment < task.totalSegments; segment++) {
    const checkpoint = await readCheckpoint(storage, { ...task, segment });
    if (!checkpoint.done) throw new Error(`snapshot of ${task.table}: segment ${segment} of ${task.totalSegments} is not finished`);
    files.push(...checkpoint.files);
    consumedCapacity += checkpoint.consumedCapacity;
  }
  const manifest = await writeManifests(storage, tableFolder(task.folder, task.table), files, { startTime: task.startedAt, endTime: task.finishedAt, exportTime: task.startedAt }, consumedCapacity);
  const items = files.reduce((sum, file) => sum + file.itemCount, 0);
  logger.debug('snapshot: table done', { folder: task.folder, table: task.table, items, files: files.length, segments: task.totalSegments, consumedCapacity });
  return { manifest, items, consumedCapacity };
}
