import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { loadConfig } from '../../lambdas/core/config';
import { createSyncDeps } from '../../lambdas/core/deps';
import { planBucket } from '../../lambdas/core/jobs/full-run/plan-bucket';
import { DuckDBInstance } from '@duckdb/node-api';
import fc from 'fast-check';
import { bucketOfKey, bucketOfKeySql } from '../../lambdas/core/join/buckets';
import { joinBucket } from '../../lambdas/core/join/duckdb-join';
import type { WireItem } from '../../lambdas/core/rules/attribute-values';
import { readManifests } from '../../lambdas/core/snapshot/export-layout';
import type { FolderStorage } from '../../lambdas/core/storage/folder-storage';
import { readLines, removeRunFolders, runFolder } from '../support/full-run';
import type { IssueLine } from '../../lambdas/core/report/report';

afterAll(removeRunFolders);

const config = loadConfig({ DYNAMODB_PAYMENTS_TABLE: 'lms-payments', DYNAMODB_USERS_TABLE: 'lms-users', DYNAMODB_ENDPOINT: 'http://127.0.0.1:9' });
const deps = createSyncDeps(config);
afterAll(() => deps.client.destroy());
const limits = { memoryLimit: '256MB', threads: 1 };

/**
 * An export exactly as DynamoDB's ExportTableToPointInTime lays it out in S3 (DYNAMODB_JSON):
 * `<prefix>/AWSDynamoDB/<export id>/` with `_started`, both manifests and their checksums, and
 * `data/<name>.json.gz` files of `{"Item": …}` lines, one per partition, empty ones included.
 */
async function writeAwsExport(storage: FolderStorage, table: string, exportId: string, partitions: WireItem[][]): Promise<string> {
  const base = `exports/${table}/AWSDynamoDB/${exportId}`;
  await storage.put(`${base}/_started`, '');
  const lines: string[] = [];
  for (const [index, items] of partitions.entries()) {
    const key = `${base}/data/${createHash('sha1').update(`${exportId}${index}`).digest('hex').slice(0, 26)}.json.gz`;
    const body = gzipSync(items.map((item) => `${JSON.stringify({ Item: item })}\n`).join(''));
    await storage.put(key, body);
    const md5 = createHash('md5').update(body).digest('base64');
    lines.push(JSON.stringify({ itemCount: items.length, md5Checksum: md5, etag: createHash('md5').update(body).digest('hex'), dataFileS3Key: key }));
  }
  const filesKey = `${base}/manifest-files.json`;
  await storage.put(filesKey, `${lines.join('\n')}\n`);
  await storage.put(`${base}/manifest-files.checksum`, createHash('md5').update(lines.join('\n')).digest('hex'));
  const summary = {
    version: '2020-06-30',
    exportArn: `arn:aws:dynamodb:ap-southeast-1:123456789012:table/${table}/export/${exportId}`,
    startTime: '2026-11-01T00:00:00.000Z',
    endTime: '2026-11-01T00:05:00.000Z',
    tableArn: `arn:aws:dynamodb:ap-southeast-1:123456789012:table/${table}`,
    tableId: '12345a12-abcd-123a-ab12-1234abc12345',
    exportTime: '2026-11-01T00:00:00.000Z',
    s3Bucket: 'payment-sync-reports',
    s3Prefix: `exports/${table}`,
    s3SseAlgorithm: 'AES256',
    s3SseKmsKeyId: null,
    manifestFilesS3Key: filesKey,
    billedSizeBytes: 1234,
    itemCount: partitions.reduce((sum, items) => sum + items.length, 0),
    outputFormat: 'DYNAMODB_JSON',
  };
  await storage.put(`${base}/manifest-summary.json`, JSON.stringify(summary));
  await storage.put(`${base}/manifest-summary.checksum`, createHash('md5').update(JSON.stringify(summary)).digest('hex'));
  return `${base}/manifest-summary.json`;
}

const payment = (orderId: string, userId: WireItem[string] | undefined, courseId: string, status: string): WireItem => ({
  orderId: { S: orderId },
  ...(userId ? { userId } : {}),
  courseId: { S: courseId },
  status: { S: status },
  amount: { N: '150000' },
  receipt: { B: 'AAECAwQ=' },
});

describe('the join over an AWS export', () => {
  test('reads the manifests, gzip and Item wrapper as AWS writes them, and plans every user', async () => {
    const storage = runFolder();
    const paymentsManifest = await writeAwsExport(storage, 'lms-payments', '01762000000000-a1b2c3d4', [
      [payment('o1', { S: 'u1' }, 'c1', 'settlement'), payment('o2', { S: 'u2' }, 'c2', 'settlement')],
      [],
      [payment('o3', { S: 'ghost' }, 'c3', 'settlement'), payment('o4', undefined, 'c4', 'settlement'), payment('o5', { S: 'u1' }, 'c5', 'settled')],
    ]);
    const usersManifest = await writeAwsExport(storage, 'lms-users', '01762000000001-e5f6a7b8', [
      [{ userId: { S: 'u1' }, purchasedCourses: { L: [{ S: 'c1' }, { S: 'c1' }] }, avatar: { B: 'iVBORw0KGgo=' } }],
      [{ userId: { S: 'u2' }, purchasedCourses: { L: [{ M: { courseId: { S: 'free' }, purchasedAt: { S: '2024-01-01' } } }] } }, { userId: { S: 'u3' } }],
    ]);
    const files = await readManifests(storage, paymentsManifest);
    expect(files.itemCount).toBe(5);
    expect(files.files).toHaveLength(2);

    const results = [];
    for (const bucket of [0, 1, 2]) {
      results.push(await planBucket(deps, storage, { runId: 'r', folder: 'r', paymentsManifest, usersManifest, bucket, buckets: 3, writes: false, snapshotAt: Date.parse('2026-11-01T00:00:00Z'), limits }));
    }
    expect(results.reduce((sum, result) => sum + result.paymentsScanned, 0)).toBe(5);
    expect(results.reduce((sum, result) => sum + result.usersScanned, 0)).toBe(3);
    const lines: IssueLine[] = [];
    for (const key of await storage.list('r/parts')) lines.push(...(await readLines<IssueLine>(storage, key)));
    const found = lines.map((line) => `${line.kind} ${line.userId ?? '-'} ${line.courseId ?? '-'} ${line.orderIds.join(',') || '-'}`).sort();
    expect(found).toEqual([
      'duplicate u1 c1 o1',
      'malformed-payment - - o4',
      'missing u2 c2 o2',
      'orphan-payment ghost - o3',
      'unbacked u2 free -',
      'unknown-status u1 - o5',
    ]);
  });
});

describe('buckets', () => {
  test('TypeScript (the scan files items by bucket) and DuckDB (the join filters by bucket) put every key in the same bucket', async () => {
    const connection = await (await DuckDBInstance.create(':memory:')).connect();
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }), { minLength: 1, maxLength: 30 }), fc.integer({ min: 1, max: 64 }), async (keys, buckets) => {
          const found: number[] = [];
          for (const key of keys) {
            const reader = await connection.runAndReadAll(`SELECT ${bucketOfKeySql('k', buckets)} FROM (SELECT $k::VARCHAR AS k)`, { k: key });
            found.push(Number(reader.getRows()[0]?.[0]));
          }
          expect(found).toEqual(keys.map((key) => bucketOfKey(key, buckets)));
        }),
        { numRuns: 60 },
      );
    } finally {
      connection.closeSync();
    }
  });
});

describe('the join under a memory limit', () => {
  test('spills to disk instead of failing when the data is larger than DuckDB may hold', async () => {
    const storage = runFolder();
    const users = 20_000;
    const perUser = 20;
    // About 100 MB of payment JSON against a 72 MB limit.
    const text: string[] = [];
    for (let i = 0; i < users * perUser; i++) {
      text.push(JSON.stringify({ Item: { orderId: { S: `order-${i}-${'x'.repeat(150)}` }, userId: { S: `u${i % users}` }, courseId: { S: `c${i % 97}` }, status: { S: 'settlement' } } }));
    }
    expect(text.join('\n').length).toBeGreaterThan(90 * 1024 * 1024);
    await storage.put('p/data.json.gz', gzipSync(`${text.join('\n')}\n`, { level: 1 }));
    await storage.put('u/data.json.gz', gzipSync(Array.from({ length: users }, (_, i) => JSON.stringify({ Item: { userId: { S: `u${i}` } } })).join('\n')));
    const [paymentFiles, userFiles] = [await storage.localPaths(['p/data.json.gz']), await storage.localPaths(['u/data.json.gz'])];
    let rows = 0;
    let payments = 0;
    for await (const chunk of joinBucket({ paymentFiles, userFiles, paymentUserAttr: 'userId', userKeyAttr: 'userId', bucket: 0, buckets: 1, limits: { memoryLimit: '72MB', threads: 1, tempDirectory: storage.root } })) {
      rows += chunk.length;
      for (const row of chunk) {
        payments += row.payments.length;
        expect(row.user).toBeDefined();
      }
    }
    expect(rows).toBe(users);
    expect(payments).toBe(users * perUser);
  }, 60_000);
});
