import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, gzipSync } from 'node:zlib';
import { readText } from '../rules/attribute-values';
import type { WireItem } from '../rules/attribute-values';
import { storageKey } from '../storage/run-storage';
import type { RunStorage } from '../storage/run-storage';
import { MANIFEST_FILES, MANIFEST_SUMMARY, readManifests } from './export-layout';
import type { ManifestFileLine } from './export-layout';

/**
 * DynamoDB's incremental export to S3 (`ExportTableToPointInTime` with
 * `ExportType: INCREMENTAL_EXPORT`, `IncrementalExportSpecification { ExportFromTime,
 * ExportToTime, ExportViewType: NEW_AND_OLD_IMAGES }`, `ExportFormat: DYNAMODB_JSON`), as read
 * here and as the local capture writes it.
 *
 * Sources: Amazon DynamoDB Developer Guide, "DynamoDB table export output format"
 * (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/S3DataExport.Output.html);
 * API Reference, IncrementalExportSpecification
 * (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_IncrementalExportSpecification.html);
 * AWS Database Blog, "Introducing incremental export from Amazon DynamoDB to Amazon S3"
 * (https://aws.amazon.com/blogs/database/introducing-incremental-export-from-amazon-dynamodb-to-amazon-s3/).
 * The line shape below is also what public readers of real incremental exports parse
 * (e.g. `{"Metadata": {"WriteTimestampMicros": {"N": "1746609560577628"}}, "Keys": …, "NewImage": …}`).
 *
 * - Window: `ExportFromTime` inclusive, `ExportToTime` exclusive; at least 15 minutes, at most
 *   24 hours; both in the past (inside the PITR window).
 * - Layout: `<prefix>/AWSDynamoDB/<export id>/manifest-summary.json` (+ `.checksum`),
 *   `manifest-files.json` (+ `.checksum`), `_started`; the data files (`*.json.gz`) of
 *   incremental exports sit in a data folder shared by the exports of that prefix, so only the
 *   file list says which belong to one export. Each key in the manifests is the object's full key.
 * - `manifest-summary.json` of an incremental export, e.g.:
 *   `{"version": "2023-08-01", "exportArn": "…/export/01695097218000-d6299cbd",
 *     "startTime": "2023-09-19T04:20:18.000Z", "endTime": "2023-09-19T04:40:24.780Z",
 *     "tableArn": "…", "tableId": "…", "exportFromTime": "2023-09-18T17:00:00.000Z",
 *     "exportToTime": "2023-09-19T04:00:00.000Z", "s3Bucket": "…", "s3Prefix": "…",
 *     "s3SseAlgorithm": "AES256", "s3SseKmsKeyId": null, "manifestFilesS3Key": "…/manifest-files.json",
 *     "billedSizeBytes": 20901239349, "itemCount": 169928274, "outputFormat": "DYNAMODB_JSON",
 *     "outputView": "NEW_AND_OLD_IMAGES", "exportType": "INCREMENTAL_EXPORT"}`
 *   (no `exportTime`: the window replaces it).
 * - `manifest-files.json`: one JSON object a line, `{"itemCount", "md5Checksum", "etag", "dataFileS3Key"}`,
 *   as for a full export (an empty partition gets an empty file).
 * - Data files: gzipped, one change a line:
 *   `{"Metadata":{"WriteTimestampMicros":{"N":"…"}},"Keys":{…},"OldImage":{…},"NewImage":{…}}`.
 *   An insert has no `OldImage`; a delete has no `NewImage` (with the NEW_IMAGE view a delete is
 *   `Keys` alone, which is why only NEW_AND_OLD_IMAGES will do here: a payment moved from one
 *   user to another must name both). The export is compacted: one line per item changed in the
 *   window, `OldImage` as the item was at `ExportFromTime`, `NewImage` as it was just before
 *   `ExportToTime`, the timestamp that of its last write; an item created and deleted inside the
 *   window does not appear. Values are DynamoDB JSON, binaries base64.
 */
export const INCREMENTAL_EXPORT = 'INCREMENTAL_EXPORT';
export const NEW_AND_OLD_IMAGES = 'NEW_AND_OLD_IMAGES';
const INCREMENTAL_EXPORT_VERSION = '2023-08-01';
/** Lines per data file the writer puts in one file before it starts another. */
const DEFAULT_LINES_PER_FILE = 50_000;

export interface IncrementalManifestSummary {
  readonly version: string;
  readonly exportArn?: string;
  readonly startTime: string;
  readonly endTime: string;
  readonly tableArn?: string;
  readonly exportFromTime: string;
  readonly exportToTime: string;
  readonly manifestFilesS3Key: string;
  readonly billedSizeBytes?: number;
  readonly itemCount: number;
  readonly outputFormat: string;
  readonly outputView?: string;
  readonly exportType: string;
}

/** One line of an incremental export's data file. */
export interface IncrementalExportLine {
  readonly Metadata: { readonly WriteTimestampMicros: { readonly N: string } };
  readonly Keys: WireItem;
  readonly OldImage?: WireItem;
  readonly NewImage?: WireItem;
}

/** One change in the form of an export line: absent images are left out, as the export does. */
export function incrementalExportLine(change: {
  readonly keys: WireItem;
  readonly oldImage?: WireItem | undefined;
  readonly newImage?: WireItem | undefined;
  /** Microseconds since the epoch. */
  readonly writeTimeMicros: number | bigint;
}): IncrementalExportLine {
  return {
    Metadata: { WriteTimestampMicros: { N: BigInt(change.writeTimeMicros).toString() } },
    Keys: change.keys,
    ...(change.oldImage && { OldImage: change.oldImage }),
    ...(change.newImage && { NewImage: change.newImage }),
  };
}

export interface ExportWindow {
  /** Inclusive. */
  readonly from: Date;
  /** Exclusive. */
  readonly to: Date;
}

/** Microseconds since the epoch of a window boundary. */
export const micros = (time: Date): bigint => BigInt(time.getTime()) * 1000n;

/** Binary attributes arrive as bytes from the SDK; the export writes them as base64. */
function wireReplacer(_key: string, value: unknown): unknown {
  return value instanceof Uint8Array ? Buffer.from(value).toString('base64') : value;
}

/**
 * Writes an incremental export's layout under `folder`: gzipped data files under `data/`, then
 * `manifest-files.json`, then `manifest-summary.json` (last, so that its presence means the
 * export is complete), exactly as `touchedUserIds` (and AWS) read it. Every line's write time
 * must lie in the window. Returns the summary's key.
 */
export async function writeIncrementalExport(
  storage: RunStorage,
  folder: string,
  changes: readonly IncrementalExportLine[],
  window: ExportWindow & { readonly linesPerFile?: number },
): Promise<string> {
  const from = micros(window.from);
  const to = micros(window.to);
  if (!(from < to)) throw new RangeError(`incremental export window [${window.from.toISOString()}, ${window.to.toISOString()}) is empty`);
  for (const line of changes) {
    const written = BigInt(line.Metadata.WriteTimestampMicros.N);
    if (written < from || written >= to) {
      throw new RangeError(`change of ${JSON.stringify(line.Keys)} written at ${written} µs lies outside the export window [${from}, ${to})`);
    }
  }
  const startTime = new Date().toISOString();
  const linesPerFile = Math.max(1, window.linesPerFile ?? DEFAULT_LINES_PER_FILE);
  const files: ManifestFileLine[] = [];
  let billedSizeBytes = 0;
  for (let start = 0; start < changes.length; start += linesPerFile) {
    const text = changes
      .slice(start, start + linesPerFile)
      .map((line) => `${JSON.stringify(line, wireReplacer)}\n`)
      .join('');
    billedSizeBytes += Buffer.byteLength(text);
    const body = gzipSync(text, { level: 1 });
    const dataFileS3Key = storageKey(folder, 'data', `${String(files.length).padStart(5, '0')}-${createHash('sha1').update(body).digest('hex').slice(0, 16)}.json.gz`);
    await storage.put(dataFileS3Key, body);
    files.push({
      itemCount: Math.min(linesPerFile, changes.length - start),
      md5Checksum: createHash('md5').update(body).digest('base64'),
      etag: createHash('md5').update(body).digest('hex'),
      dataFileS3Key,
    });
  }
  const manifestFilesS3Key = storageKey(folder, MANIFEST_FILES);
  await storage.put(manifestFilesS3Key, files.map((line) => `${JSON.stringify(line)}\n`).join(''));
  const summary: IncrementalManifestSummary = {
    version: INCREMENTAL_EXPORT_VERSION,
    startTime,
    endTime: new Date().toISOString(),
    exportFromTime: window.from.toISOString(),
    exportToTime: window.to.toISOString(),
    manifestFilesS3Key,
    billedSizeBytes,
    itemCount: changes.length,
    outputFormat: 'DYNAMODB_JSON',
    outputView: NEW_AND_OLD_IMAGES,
    exportType: INCREMENTAL_EXPORT,
  };
  const summaryKey = storageKey(folder, MANIFEST_SUMMARY);
  await storage.put(summaryKey, `${JSON.stringify(summary, null, 2)}\n`);
  return summaryKey;
}

export interface IncrementalExportFiles {
  /** Data files that hold changes (empty ones left out). */
  readonly files: readonly string[];
  readonly itemCount: number;
  readonly exportFromTime: string;
  readonly exportToTime: string;
}

/**
 * An incremental export's manifests: its window and data files. Refuses a full export (its
 * lines are items, not changes) and any view but NEW_AND_OLD_IMAGES (without old images a
 * payment moved away from a user would not name that user).
 */
export async function readIncrementalManifests(storage: RunStorage, summaryKey: string): Promise<IncrementalExportFiles> {
  const text = await storage.getText(summaryKey);
  if (text === undefined) throw new Error(`incremental export manifest ${summaryKey} does not exist`);
  const summary = JSON.parse(text) as Partial<IncrementalManifestSummary>;
  if (summary.exportType !== INCREMENTAL_EXPORT) {
    throw new Error(`${summaryKey} is not an incremental export (exportType ${JSON.stringify(summary.exportType ?? null)}, expected ${INCREMENTAL_EXPORT})`);
  }
  if (summary.outputView !== undefined && summary.outputView !== NEW_AND_OLD_IMAGES) {
    throw new Error(`${summaryKey} was exported with the view ${summary.outputView}: only ${NEW_AND_OLD_IMAGES} names a payment's previous user`);
  }
  if (typeof summary.exportFromTime !== 'string' || typeof summary.exportToTime !== 'string') {
    throw new Error(`${summaryKey} names no export window (exportFromTime, exportToTime)`);
  }
  const manifests = await readManifests(storage, summaryKey);
  return {
    files: manifests.files.map((file) => file.dataFileS3Key),
    itemCount: manifests.itemCount,
    exportFromTime: summary.exportFromTime,
    exportToTime: summary.exportToTime,
  };
}

export interface TouchedUsersOptions {
  /**
   * Which table the export is of. `payments`: the user attribute of the new and the old image
   * (a payment moved between users touches both; the key too, should it hold the attribute).
   * `users`: the user key in `Keys` (what an item's images carry besides is not read).
   */
  readonly table: 'payments' | 'users';
  /** `PAYMENT_USER_ATTR` for payments, `USER_KEY_ATTR` for users. */
  readonly userAttr: string;
}

export interface TouchedUsers {
  /** Sorted, unique. */
  readonly userIds: string[];
  /** Non-blank lines read, malformed ones included. */
  readonly lines: number;
  /** Lines skipped: not JSON, not an object, or without a `Keys` object (or with an image that is not one). */
  readonly malformed: number;
  /** Well-formed lines that name no user (a payment without a user id): nothing to reconcile. */
  readonly withoutUser: number;
  readonly exportFromTime: string;
  readonly exportToTime: string;
}

const isMap = (value: unknown): value is WireItem => typeof value === 'object' && value !== null && !Array.isArray(value);

/** The change a line holds, or undefined when it is not one. */
function parseLine(text: string): IncrementalExportLine | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isMap(value)) return undefined;
  const { Keys, NewImage, OldImage } = value as Record<string, unknown>;
  if (!isMap(Keys)) return undefined;
  if ((NewImage !== undefined && !isMap(NewImage)) || (OldImage !== undefined && !isMap(OldImage))) return undefined;
  return value as unknown as IncrementalExportLine;
}

function userIdsOfLine(line: IncrementalExportLine, options: TouchedUsersOptions): string[] {
  const attr = options.userAttr;
  const sources = options.table === 'users' ? [line.Keys] : [line.Keys, line.NewImage, line.OldImage];
  const ids: string[] = [];
  for (const source of sources) {
    const id = readText(source?.[attr]);
    if (id !== undefined) ids.push(id);
  }
  return ids;
}

/** The lines of one data file, decompressed as they are read: a file is never held whole. */
async function* fileLines(path: string, gzipped: boolean): AsyncGenerator<string> {
  const source = createReadStream(path);
  let input: Readable = source;
  let done: Promise<void> = Promise.resolve();
  if (gzipped) {
    const gunzip = createGunzip();
    done = pipeline(source, gunzip);
    input = gunzip;
  }
  // A corrupt file must fail the read, not end it early: the error is taken from the pipeline.
  let failure: unknown;
  done.catch((error: unknown) => {
    failure = error;
    input.destroy();
  });
  const reader = createInterface({ input, crlfDelay: Infinity });
  try {
    for await (const line of reader) {
      if (failure !== undefined) break;
      yield line;
    }
    await done;
  } finally {
    reader.close();
    source.destroy();
  }
  if (failure !== undefined) throw failure;
}

/**
 * The users an incremental export of one table touches, read a line at a time from each data
 * file (gzip stream + readline; a file is never loaded whole). Malformed lines are skipped and
 * counted; a data file that cannot be read or decompressed fails the call (what it held is
 * unknown, so no list would be complete).
 */
export async function touchedUserIds(storage: RunStorage, manifestSummaryKey: string, options: TouchedUsersOptions): Promise<TouchedUsers> {
  const manifests = await readIncrementalManifests(storage, manifestSummaryKey);
  const userIds = new Set<string>();
  let lines = 0;
  let malformed = 0;
  let withoutUser = 0;
  for (const key of manifests.files) {
    // One file at a time: on S3 each is downloaded into ephemeral storage just before it is read.
    const [path] = await storage.localPaths([key]);
    if (path === undefined) throw new Error(`no local path for ${key}`);
    try {
      for await (const text of fileLines(path, key.endsWith('.gz'))) {
        if (text.trim() === '') continue;
        lines += 1;
        const line = parseLine(text);
        if (!line) {
          malformed += 1;
          continue;
        }
        const ids = userIdsOfLine(line, options);
        if (ids.length === 0) withoutUser += 1;
        for (const id of ids) userIds.add(id);
      }
    } catch (error) {
      throw new Error(`incremental export data file ${key} could not be read: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  }
  return {
    userIds: [...userIds].sort(),
    lines,
    malformed,
    withoutUser,
    exportFromTime: manifests.exportFromTime,
    exportToTime: manifests.exportToTime,
  };
}
