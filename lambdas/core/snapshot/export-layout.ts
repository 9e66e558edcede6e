import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import type { WireItem } from '../rules/attribute-values';
import { storageKey, type RunStorage } from '../storage/run-storage';

/**
 * The layout of DynamoDB's export to S3 (DYNAMODB_JSON): `manifest-summary.json`,
 * `manifest-files.json` (one JSON line per data file) and gzipped data files of
 * `{"Item": …}` lines. AWS's own export writes it; the scan snapshot writes the same, so the
 * join reads one layout whichever made it.
 */
export interface ManifestSummary {
  readonly version: string;
  readonly exportArn?: string;
  readonly startTime: string;
  readonly endTime: string;
  readonly tableArn?: string;
  readonly exportTime: string;
  readonly s3Bucket?: string;
  readonly s3Prefix?: string | null;
  readonly manifestFilesS3Key: string;
  readonly itemCount: number;
  readonly outputFormat: string;
  readonly exportType?: string;
  /** Our scan snapshot's own: the read capacity the scan consumed (an export consumes none). */
  readonly consumedCapacity?: number;
}

export interface ManifestFileLine {
  readonly itemCount: number;
  readonly md5Checksum: string;
  readonly etag?: string;
  readonly dataFileS3Key: string;
  /**
   * The scan snapshot's own: every item of this file is in this bucket of `buckets` (by
   * `bucketOfKey`), so a join of another bucket need not read it. AWS's files hold all buckets.
   */
  readonly bucket?: number;
  readonly buckets?: number;
}

export const MANIFEST_SUMMARY = 'manifest-summary.json';
export const MANIFEST_FILES = 'manifest-files.json';
const EXPORT_VERSION = '2020-06-30';

/** Binary attributes arrive as bytes from the SDK; the export writes them as base64. */
function wireReplacer(_key: string, value: unknown): unknown {
  return value instanceof Uint8Array ? Buffer.from(value).toString('base64') : value;
}

/** One data file: `{"Item": …}` lines, gzipped fast (the scan, not the CPU, should set the pace). */
export function encodeDataFile(items: readonly WireItem[]): { body: Buffer; md5Checksum: string } {
  const text = items.map((item) => `{"Item":${JSON.stringify(item, wireReplacer)}}\n`).join('');
  const body = gzipSync(text, { level: 1 });
  return { body, md5Checksum: createHash('md5').update(body).digest('base64') };
}

export interface SnapshotFiles {
  /** The data files that hold items. */
  readonly files: ManifestFileLine[];
  readonly itemCount: number;
  readonly exportTime: string;
  readonly consumedCapacity: number;
}

/** Writes both manifests for data files already in place; the summary last, so its presence means complete. */
export async function writeManifests(
  storage: RunStorage,
  folder: string,
  files: readonly ManifestFileLine[],
  times: { readonly startTime: string; readonly endTime: string; readonly exportTime: string },
  consumedCapacity: number,
): Promise<string> {
  const manifestFilesS3Key = storageKey(folder, MANIFEST_FILES);
  await storage.put(manifestFilesS3Key, files.map((line) => `${JSON.stringify(line)}\n`).join(''));
  const summary: ManifestSummary = {
    version: EXPORT_VERSION,
    ...times,
    manifestFilesS3Key,
    itemCount: files.reduce((sum, line) => sum + line.itemCount, 0),
    outputFormat: 'DYNAMODB_JSON',
    exportType: 'FULL_EXPORT',
    consumedCapacity,
  };
  const summaryKey = storageKey(folder, MANIFEST_SUMMARY);
  await storage.put(summaryKey, `${JSON.stringify(summary, null, 2)}\n`);
  return summaryKey;
}

/** The files a join of one bucket must read: those filed under it, or all where the files are not filed by these buckets. */
export function filesOfBucket(files: readonly ManifestFileLine[], bucket: number, buckets: number): string[] {
  return files.filter((file) => file.buckets !== buckets || file.bucket === bucket).map((file) => file.dataFileS3Key);
}

/** Reads a snapshot's manifests, as AWS writes them or as the scan does: its data files and counts. */
export async function readManifests(storage: RunStorage, summaryKey: string): Promise<SnapshotFiles> {
  const summaryText = await storage.getText(summaryKey);
  if (summaryText === undefined) throw new Error(`snapshot manifest ${summaryKey} does not exist`);
  const summary = JSON.parse(summaryText) as ManifestSummary;
  const filesText = await storage.getText(summary.manifestFilesS3Key);
  if (filesText === undefined) throw new Error(`snapshot file list ${summary.manifestFilesS3Key} (named by ${summaryKey}) does not exist`);
  const lines = filesText
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as ManifestFileLine);
  return {
    // An export writes an empty file for each empty partition: nothing in it to read.
    files: lines.filter((line) => line.itemCount > 0),
    itemCount: summary.itemCount ?? lines.reduce((sum, line) => sum + line.itemCount, 0),
    exportTime: summary.exportTime,
    consumedCapacity: summary.consumedCapacity ?? 0,
  };
}
