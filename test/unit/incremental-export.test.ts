import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { readManifests, writeManifests } from '../../lambdas/core/snapshot/export-layout';
import {
  incrementalExportLine,
  touchedUserIds,
  writeIncrementalExport,
  type IncrementalExportLine,
} from '../../lambdas/core/snapshot/incremental-export';
import { FolderStorage } from '../../lambdas/core/storage/folder-storage';
import type { RunStorage } from '../../lambdas/core/storage/run-storage';
import { removeRunFolders, runFolder } from '../support/full-run';

afterAll(removeRunFolders);

/** The hand-written AWS-format fixture (see its README.md). */
const fixture = new FolderStorage(join(__dirname, '..', 'fixtures', 'incremental-export'));
const PAYMENTS_EXPORT = 'payments/AWSDynamoDB/01762003600000-5e1f0c2a/manifest-summary.json';
const USERS_EXPORT = 'users/AWSDynamoDB/01762003600001-9b7d41e0/manifest-summary.json';

/** A storage that records how it is read. */
function spied(storage: RunStorage) {
  const textReads: string[] = [];
  const pathRequests: string[][] = [];
  const spy: RunStorage = {
    runsPrefix: storage.runsPrefix,
    put: (key, body) => storage.put(key, body),
    getText: (key) => {
      textReads.push(key);
      return storage.getText(key);
    },
    list: (prefix) => storage.list(prefix),
    deletePrefix: (prefix) => storage.deletePrefix(prefix),
    localPaths: (keys) => {
      pathRequests.push([...keys]);
      return storage.localPaths(keys);
    },
  };
  return { spy, textReads, pathRequests };
}

describe('touchedUserIds over an export as AWS writes it', () => {
  test('payments: the user of every new and old image (a moved payment names both users), inserts and deletes, malformed lines skipped and counted', async () => {
    const { spy, textReads, pathRequests } = spied(fixture);
    const touched = await touchedUserIds(spy, PAYMENTS_EXPORT, { table: 'payments', userAttr: 'userId' });
    expect(touched).toEqual({
      // u-insert: insert (no OldImage); u-from + u-to: moved; u-deleted: delete (no NewImage);
      // u-same: twice, across two files; 42: a numeric user id.
      userIds: ['42', 'u-deleted', 'u-from', 'u-insert', 'u-same', 'u-to'],
      // 10 non-blank lines in the first file, 2 in the last; the empty file is not read.
      lines: 12,
      // not JSON, a full export's Item line, a truncated line, an image that is not a map
      malformed: 4,
      // a payment without a user id, one with an empty user id
      withoutUser: 2,
      exportFromTime: '2025-11-01T12:00:00.000Z',
      exportToTime: '2025-11-01T13:00:00.000Z',
    });
    // Data files are streamed from local paths one at a time, never loaded as text.
    expect(textReads.filter((key) => key.includes('/data/'))).toEqual([]);
    expect(pathRequests).toEqual([['payments/AWSDynamoDB/data/3kq7v2bqzm4xfn6c2rsd5u7yhe.json.gz'], ['payments/AWSDynamoDB/data/xw6t4ppnsu2hbgb3ccqmy5kc3q.json.gz']]);
  });

  test('users: the user key of every changed item (overwritten, deleted, created), read from Keys only', async () => {
    expect(await touchedUserIds(fixture, USERS_EXPORT, { table: 'users', userAttr: 'userId' })).toEqual({
      userIds: ['u-created', 'u-overwritten', 'u-removed'],
      lines: 5,
      malformed: 1,
      // Keys without the user key: its image's userId is not a users-table key.
      withoutUser: 1,
      exportFromTime: '2025-11-01T12:00:00.000Z',
      exportToTime: '2025-11-01T13:00:00.000Z',
    });
    // Read as a payments export, the images count as well: the table option decides.
    expect((await touchedUserIds(fixture, USERS_EXPORT, { table: 'payments', userAttr: 'userId' })).userIds).toContain('u-only-in-an-image');
  });

  test('the user attribute is the configured one', async () => {
    const touched = await touchedUserIds(fixture, PAYMENTS_EXPORT, { table: 'payments', userAttr: 'courseId' });
    expect(touched.userIds).toEqual(['course-1', 'course-2', 'course-3', 'course-4', 'course-5', 'course-6', 'course-7', 'course-8']);
  });
});

describe('what touchedUserIds refuses', () => {
  const window = { from: new Date('2025-11-01T12:00:00Z'), to: new Date('2025-11-01T13:00:00Z') };

  test('a full export, a NEW_IMAGE export (no old images: a moved payment would name one user) and a missing manifest', async () => {
    const storage = runFolder();
    const full = await writeManifests(storage, 'full', [], { startTime: 'a', endTime: 'b', exportTime: 'c' }, 0);
    await expect(touchedUserIds(storage, full, { table: 'payments', userAttr: 'userId' })).rejects.toThrow(/not an incremental export \(exportType "FULL_EXPORT"/);

    const summary = JSON.parse((await fixture.getText(PAYMENTS_EXPORT)) ?? '') as Record<string, unknown>;
    await storage.put('new-image/manifest-summary.json', JSON.stringify({ ...summary, outputView: 'NEW_IMAGE' }));
    await expect(touchedUserIds(storage, 'new-image/manifest-summary.json', { table: 'payments', userAttr: 'userId' })).rejects.toThrow(/view NEW_IMAGE/);

    await expect(touchedUserIds(storage, 'nothing/manifest-summary.json', { table: 'payments', userAttr: 'userId' })).rejects.toThrow(/does not exist/);
    const empty = await writeIncrementalExport(storage, 'ok', [], window);
    await expect(touchedUserIds(storage, empty, { table: 'payments', userAttr: 'userId' })).resolves.toMatchObject({ userIds: [], lines: 0 });
  });

  test('a data file that is not gzip or is cut short fails the read (what it held is unknown), naming the file', async () => {
    const lines = Array.from({ length: 2000 }, (_, i) => `{"Keys":{"userId":{"S":"${createHash('sha1').update(String(i)).digest('hex')}"}}}\n`).join('');
    const whole = gzipSync(lines);
    for (const body of [Buffer.from(lines), whole.subarray(0, whole.length - 100)]) {
      const storage = runFolder();
      const summaryKey = await writeIncrementalExport(storage, 'x', [incrementalExportLine({ keys: { userId: { S: 'u1' } }, newImage: { userId: { S: 'u1' } }, writeTimeMicros: Date.parse('2025-11-01T12:30:00Z') * 1000 })], window);
      const [dataFile] = await storage.list('x/data');
      await storage.put(dataFile ?? '', body);
      await expect(touchedUserIds(storage, summaryKey, { table: 'users', userAttr: 'userId' })).rejects.toThrow(`incremental export data file ${dataFile} could not be read`);
    }
  });
});

describe('writeIncrementalExport', () => {
  const from = new Date('2025-11-01T12:00:00.000Z');
  const to = new Date('2025-11-01T13:00:00.000Z');
  const at = (iso: string) => Date.parse(iso) * 1000;
  const payment = (orderId: string, userId: string) => ({ orderId: { S: orderId }, userId: { S: userId }, courseId: { S: 'c1' } });

  test('writes the layout AWS writes, which the reader reads back exactly', async () => {
    const storage = runFolder();
    const changes: IncrementalExportLine[] = [
      incrementalExportLine({ keys: { orderId: { S: 'o1' } }, newImage: payment('o1', 'u1'), writeTimeMicros: at('2025-11-01T12:00:00.000Z') }),
      incrementalExportLine({ keys: { orderId: { S: 'o2' } }, oldImage: payment('o2', 'u2'), newImage: payment('o2', 'u3'), writeTimeMicros: at('2025-11-01T12:10:00.000Z') }),
      incrementalExportLine({ keys: { orderId: { S: 'o3' } }, oldImage: payment('o3', 'u4'), writeTimeMicros: at('2025-11-01T12:20:00.000Z') }),
      incrementalExportLine({
        keys: { orderId: { S: 'o4' } },
        newImage: { ...payment('o4', 'u5'), receipt: { B: new Uint8Array([0, 1, 2, 3, 4]) } },
        writeTimeMicros: at('2025-11-01T12:59:59.999Z'),
      }),
    ];
    const summaryKey = await writeIncrementalExport(storage, 'runs/r1/changes/payments', changes, { from, to, linesPerFile: 3 });
    expect(summaryKey).toBe('runs/r1/changes/payments/manifest-summary.json');

    const summary = JSON.parse((await storage.getText(summaryKey)) ?? '') as Record<string, unknown>;
    expect(summary).toEqual({
      version: '2023-08-01',
      startTime: expect.any(String),
      endTime: expect.any(String),
      exportFromTime: '2025-11-01T12:00:00.000Z',
      exportToTime: '2025-11-01T13:00:00.000Z',
      manifestFilesS3Key: 'runs/r1/changes/payments/manifest-files.json',
      billedSizeBytes: expect.any(Number),
      itemCount: 4,
      outputFormat: 'DYNAMODB_JSON',
      outputView: 'NEW_AND_OLD_IMAGES',
      exportType: 'INCREMENTAL_EXPORT',
    });

    // The manifests as a full export's reader reads them: two files (3 + 1 lines), checksums of their bytes.
    const manifests = await readManifests(storage, summaryKey);
    expect(manifests.itemCount).toBe(4);
    expect(manifests.files.map((file) => file.itemCount)).toEqual([3, 1]);
    const lines: unknown[] = [];
    for (const file of manifests.files) {
      const [path] = await storage.localPaths([file.dataFileS3Key]);
      const body = readFileSync(path ?? '');
      expect(file.dataFileS3Key).toMatch(/^runs\/r1\/changes\/payments\/data\/.+\.json\.gz$/);
      expect(file.md5Checksum).toBe(createHash('md5').update(body).digest('base64'));
      expect(file.etag).toBe(createHash('md5').update(body).digest('hex'));
      lines.push(...gunzipSync(body).toString().split('\n').filter(Boolean).map((line) => JSON.parse(line)));
    }
    expect(lines).toEqual([
      { Metadata: { WriteTimestampMicros: { N: '1761998400000000' } }, Keys: { orderId: { S: 'o1' } }, NewImage: payment('o1', 'u1') },
      { Metadata: { WriteTimestampMicros: { N: '1761999000000000' } }, Keys: { orderId: { S: 'o2' } }, OldImage: payment('o2', 'u2'), NewImage: payment('o2', 'u3') },
      { Metadata: { WriteTimestampMicros: { N: '1761999600000000' } }, Keys: { orderId: { S: 'o3' } }, OldImage: payment('o3', 'u4') },
      { Metadata: { WriteTimestampMicros: { N: '1762001999999000' } }, Keys: { orderId: { S: 'o4' } }, NewImage: { ...payment('o4', 'u5'), receipt: { B: 'AAECAwQ=' } } },
    ]);

    expect(await touchedUserIds(storage, summaryKey, { table: 'payments', userAttr: 'userId' })).toEqual({
      userIds: ['u1', 'u2', 'u3', 'u4', 'u5'],
      lines: 4,
      malformed: 0,
      withoutUser: 0,
      exportFromTime: '2025-11-01T12:00:00.000Z',
      exportToTime: '2025-11-01T13:00:00.000Z',
    });
  });

  test('the window is [from, to): a line written at `to` or before `from` is refused, an empty window too', async () => {
    const storage = runFolder();
    const line = (iso: string) => incrementalExportLine({ keys: { userId: { S: 'u' } }, newImage: { userId: { S: 'u' } }, writeTimeMicros: at(iso) });
    await expect(writeIncrementalExport(storage, 'a', [line('2025-11-01T13:00:00.000Z')], { from, to })).rejects.toThrow(/outside the export window/);
    await expect(writeIncrementalExport(storage, 'b', [line('2025-11-01T11:59:59.999Z')], { from, to })).rejects.toThrow(/outside the export window/);
    await expect(writeIncrementalExport(storage, 'c', [], { from: to, to })).rejects.toThrow(/is empty/);
    await expect(writeIncrementalExport(storage, 'd', [line('2025-11-01T12:00:00.000Z')], { from, to })).resolves.toBe('d/manifest-summary.json');
    expect(await storage.list('a')).toEqual([]);
  });
});
