import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { DeleteObjectsCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { RUNS_PREFIX, S3Storage } from '../../lambdas/core/storage/s3-storage';

/**
 * S3 cannot run here: an in-memory bucket answers the four calls the storage makes, as S3 does
 * (NoSuchKey for a missing object, pages of at most `pageSize` keys with a continuation token).
 */
function fakeBucket(pageSize = 2) {
  const objects = new Map<string, Buffer>();
  const calls: string[] = [];
  const send = async (command: unknown): Promise<unknown> => {
    if (command instanceof PutObjectCommand) {
      calls.push('put');
      const body = command.input.Body as string | Uint8Array;
      objects.set(command.input.Key!, Buffer.from(body));
      return {};
    }
    if (command instanceof GetObjectCommand) {
      calls.push('get');
      const body = objects.get(command.input.Key!);
      if (!body) throw Object.assign(new Error('The specified key does not exist.'), { name: 'NoSuchKey' });
      const stream = Readable.from([body]) as Readable & { transformToString: (encoding: BufferEncoding) => Promise<string> };
      stream.transformToString = async (encoding) => body.toString(encoding);
      return { Body: stream };
    }
    if (command instanceof ListObjectsV2Command) {
      calls.push('list');
      const keys = [...objects.keys()].filter((key) => key.startsWith(command.input.Prefix ?? '')).sort();
      const start = Number(command.input.ContinuationToken ?? 0);
      const page = keys.slice(start, start + pageSize);
      const more = start + pageSize < keys.length;
      return { Contents: page.map((Key) => ({ Key })), IsTruncated: more, NextContinuationToken: more ? String(start + pageSize) : undefined };
    }
    if (command instanceof DeleteObjectsCommand) {
      calls.push('delete');
      for (const { Key } of command.input.Delete!.Objects!) objects.delete(Key!);
      return {};
    }
    throw new Error(`not faked: ${(command as object).constructor.name}`);
  };
  return { client: { send } as unknown as S3Client, objects, calls };
}

describe('the reports bucket as a run storage', () => {
  let downloads: string;
  beforeEach(() => {
    downloads = mkdtempSync(join(tmpdir(), 'payment-sync-s3-'));
  });
  afterEach(() => rmSync(downloads, { recursive: true, force: true }));

  test('runs live below runs/; objects read back as written; a missing one is undefined, not an error', async () => {
    const bucket = fakeBucket();
    const storage = new S3Storage(bucket.client, 'reports', downloads);
    expect(storage.runsPrefix).toBe(RUNS_PREFIX);
    await storage.put('runs/r1/summary.json', '{"status":"completed"}');
    await storage.put('runs/r1/snapshot/data/a.json.gz', new Uint8Array([1, 2, 3]));
    expect(await storage.getText('runs/r1/summary.json')).toBe('{"status":"completed"}');
    expect(await storage.getText('runs/r1/nothing.json')).toBeUndefined();
  });

  test('lists a prefix across pages, as a folder: runs/r1 does not list runs/r10', async () => {
    const bucket = fakeBucket(2);
    const storage = new S3Storage(bucket.client, 'reports', downloads);
    for (const key of ['runs/r1/c.json', 'runs/r1/a.json', 'runs/r1/b/d.json', 'runs/r10/x.json', 'runs/r2/y.json']) await storage.put(key, 'x');
    expect(await storage.list('runs/r1')).toEqual(['runs/r1/a.json', 'runs/r1/b/d.json', 'runs/r1/c.json']);
    expect(bucket.calls.filter((call) => call === 'list').length).toBeGreaterThan(1);
  });

  test('deletes a prefix in batches and nothing else', async () => {
    const bucket = fakeBucket(1000);
    const storage = new S3Storage(bucket.client, 'reports', downloads);
    for (let i = 0; i < 1500; i++) await storage.put(`runs/r1/parts/p${i}.jsonl`, 'x');
    await storage.put('runs/r2/summary.json', 'kept');
    await storage.deletePrefix('runs/r1/parts');
    expect([...bucket.objects.keys()]).toEqual(['runs/r2/summary.json']);
    expect(bucket.calls.filter((call) => call === 'delete')).toHaveLength(2);
  });

  test('downloads objects for DuckDB into its own folder, keeping their keys apart, and clears them', async () => {
    const bucket = fakeBucket();
    const storage = new S3Storage(bucket.client, 'reports', join(downloads, 'files'));
    await storage.put('runs/r1/snapshot/payments/data/a.json.gz', new Uint8Array([7, 8]));
    await storage.put('runs/r1/snapshot/users/data/a.json.gz', new Uint8Array([9]));
    const paths = await storage.localPaths(['runs/r1/snapshot/payments/data/a.json.gz', 'runs/r1/snapshot/users/data/a.json.gz']);
    expect(paths[0]).not.toBe(paths[1]);
    expect([...readFileSync(paths[0]!)]).toEqual([7, 8]);
    expect([...readFileSync(paths[1]!)]).toEqual([9]);
    await storage.clearDownloads();
    expect(() => readFileSync(paths[0]!)).toThrow(/ENOENT/);
  });
});
