import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { DeleteObjectsCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { RunStorage } from './run-storage';

/** Every run's folder in the reports bucket is below this prefix (its lifecycle rule and the grants name it). */
export const RUNS_PREFIX = 'runs';

/** S3's most keys per DeleteObjects call. */
const DELETE_BATCH = 1000;

const isMissing = (error: unknown): boolean => ['NoSuchKey', 'NotFound'].includes((error as Error).name);

/**
 * The reports bucket as the run's storage: keys are object keys. DuckDB reads local files,
 * so `localPaths` downloads objects into the function's ephemeral storage (`/tmp`), below a
 * folder of its own that the caller's run removes with the process.
 */
export class S3Storage implements RunStorage {
  readonly runsPrefix = RUNS_PREFIX;

  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
    private readonly downloads: string = join(tmpdir(), 'payment-sync-s3'),
  ) {}

  async put(key: string, body: string | Uint8Array): Promise<void> {
    await this.s3.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body }));
  }

  async getText(key: string): Promise<string | undefined> {
    try {
      const { Body } = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return await Body?.transformToString('utf8');
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.s3.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix.endsWith('/') ? prefix : `${prefix}/`, ContinuationToken: token }));
      for (const object of page.Contents ?? []) if (object.Key) keys.push(object.Key);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return keys.sort();
  }

  async deletePrefix(prefix: string): Promise<void> {
    const keys = await this.list(prefix);
    for (let i = 0; i < keys.length; i += DELETE_BATCH) {
      const batch = keys.slice(i, i + DELETE_BATCH);
      await this.s3.send(new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }));
    }
  }

  /** Removes what `localPaths` downloaded: a warm function's next task starts with an empty /tmp. */
  async clearDownloads(): Promise<void> {
    await rm(this.downloads, { recursive: true, force: true });
  }

  async localPaths(keys: readonly string[]): Promise<string[]> {
    const paths: string[] = [];
    for (const key of keys) {
      const path = join(this.downloads, ...key.split('/'));
      await mkdir(dirname(path), { recursive: true });
      const { Body } = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      if (!Body) throw new Error(`s3://${this.bucket}/${key} has no body`);
      await pipeline(Body as Readable, createWriteStream(path));
      paths.push(path);
    }
    return paths;
  }
}
