import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { DynamoDBClient, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { logger } from '../../lambdas/core/observability';
import { ConfigError, InvalidEventError, loadConfig, PaymentSyncService } from '../../lambdas/service';
import { courseIdsOf, startTestTables, type TestTables } from '../support/local-tables';

const run = promisify(execFile);
const ROOT = join(__dirname, '..', '..');
const DIST = join(ROOT, 'dist');

/** Every built file is newer than its source; otherwise (or with no build) `npm run build`, as `npm ci` does on install. */
async function ensureBuilt(): Promise<void> {
  const entry = join(DIST, 'lambdas', 'service.js');
  const stale = (dir: string): boolean =>
    readdirSync(dir, { withFileTypes: true }).some((entry) => {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) return stale(path);
      if (!entry.name.endsWith('.js')) return false;
      const source = join(ROOT, relative(DIST, path)).replace(/\.js$/, '.ts');
      return !existsSync(source) || statSync(source).mtimeMs > statSync(path).mtimeMs;
    });
  if (existsSync(entry) && !stale(join(DIST, 'lambdas'))) return;
  await run(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], { cwd: ROOT });
}

/** The LMS's side: its own folder, the package in its node_modules (a link, as `npm install ../payment-sync` makes it). */
function consumerFolder(): string {
  const folder = mkdtempSync(join(tmpdir(), 'lms-'));
  mkdirSync(join(folder, 'node_modules'));
  symlinkSync(ROOT, join(folder, 'node_modules', 'payment-sync'), 'dir');
  writeFileSync(join(folder, 'package.json'), JSON.stringify({ name: 'lms', private: true }));
  return folder;
}

/** What the LMS's code runs: `require('payment-sync')`, each call in turn; the answers (or an error's name) as JSON. */
const CONSUMER = `
const { PaymentSyncService } = require('payment-sync');
const service = new PaymentSyncService();
(async () => {
  const answers = [];
  for (const [method, ...args] of JSON.parse(process.argv[2])) {
    try { answers.push(await service[method](...args)); } catch (error) { answers.push({ thrown: error.name }); }
  }
  service.destroy();
  console.log(JSON.stringify(answers));
})();
`;

describe('PaymentSyncService, as the LMS imports it', () => {
  let tables: TestTables;
  let consumer: string;

  /** Runs calls in a separate Node process that requires the package by name, against these tables. */
  async function callsFromTheLms(calls: unknown[][]): Promise<Array<Record<string, unknown>>> {
    const { stdout } = await run(process.execPath, ['consumer.js', JSON.stringify(calls)], {
      cwd: consumer,
      env: { PATH: process.env.PATH, ...tables.env, LOG_LEVEL: 'ERROR', POWERTOOLS_METRICS_DISABLED: 'true' },
    });
    return JSON.parse(stdout.trim().split('\n').pop() as string);
  }

  beforeAll(async () => {
    [tables] = await Promise.all([startTestTables(), ensureBuilt()]);
    consumer = consumerFolder();
    writeFileSync(join(consumer, 'consumer.js'), CONSUMER);
    await tables.putUser('u1', { L: [{ S: 'c1' }] });
    await tables.putPayment('o1', { userId: 'u1', courseId: 'c1', status: 'settlement' });
    await tables.putPayment('o2', { userId: 'u1', courseId: 'c2', status: 'settlement' });
    const owned = { M: { courseId: { S: 'c9' }, purchasedAt: { S: '2024-05-01' }, orderId: { S: 'o-old' }, note: { S: 'gift' } } };
    await tables.putUser('u2', { L: [owned] }, { name: { S: 'Sari' } });
  });
  afterAll(async () => {
    await tables.close();
    rmSync(consumer, { recursive: true, force: true });
  });

  test('package.json exports the built service with its types', () => {
    const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, Record<string, string>>; files: string[] };
    expect(manifest.exports['.']).toEqual({ types: './dist/lambdas/service.d.ts', default: './dist/lambdas/service.js' });
    expect(existsSync(join(ROOT, manifest.exports['.']!.types!))).toBe(true);
    expect(manifest.files).toEqual(['dist/lambdas']);
  });

  test('validateUserData and a dry-run syncUserPayments report the missing course and write nothing', async () => {
    const before = await tables.dump('users');
    const [validation, dryRun] = await callsFromTheLms([
      ['validateUserData', 'u1'],
      ['syncUserPayments', 'u1', { dryRun: true }],
    ]);
    const missing = { kind: 'missing', userId: 'u1', courseId: 'c2', orderIds: ['o2'], fix: 'grant' };
    expect(validation).toEqual({ userId: 'u1', status: 'would-fix', added: ['c2'], removed: [], duplicatesRemoved: [], issues: [expect.objectContaining(missing)] });
    expect(dryRun).toEqual(validation);
    expect(await tables.dump('users')).toEqual(before);
  });

  test('syncUserPayments grants the missing course; the webhook grant goes through the conditional write path', async () => {
    await tables.putPayment('o-web', { userId: 'u2', courseId: 'c3', status: 'settlement' });
    await tables.putPayment('o-ghost', { userId: 'u-ghost', courseId: 'c3', status: 'settlement' });
    const answers = await callsFromTheLms([
      ['syncUserPayments', 'u1'],
      ['validateUserData', 'u1'],
      ['applyPayment', 'o-web'],
      ['applyPayment', 'o-web'],
      ['applyPayment', 'o-ghost'],
      ['applyPayment', 'o-none'],
      ['applyPayment', { orderId: 'o-obj', userId: 'u1', courseId: 'c4', status: 'capture', fraudStatus: 'accept' }],
      ['syncUserPayments', ''],
    ]);
    const [synced, validated, webhook, replay, ghost, none, asItem, bad] = answers;
    expect(synced).toEqual({ userId: 'u1', status: 'fixed', added: ['c2'], removed: [], duplicatesRemoved: [], issues: [expect.objectContaining({ kind: 'missing', courseId: 'c2' })] });
    expect(validated).toMatchObject({ userId: 'u1', status: 'in-sync', added: [], issues: [] });
    expect(webhook).toMatchObject({ kind: 'granted', userId: 'u2', orderId: 'o-web', courseIds: ['c3'] });
    expect(replay).toMatchObject({ kind: 'no-change', reason: 'every course already listed' });
    expect(ghost).toEqual({ kind: 'orphan-payment', userId: 'u-ghost', orderId: 'o-ghost' });
    expect(none).toMatchObject({ kind: 'payment-not-found', orderId: 'o-none' });
    expect(asItem).toMatchObject({ kind: 'granted', userId: 'u1', courseIds: ['c4'] });
    expect(bad).toEqual({ thrown: 'InvalidEventError' });

    expect(await tables.userCourses('u1')).toEqual({ L: [{ S: 'c1' }, { S: 'c2' }, { S: 'c4' }] });
    // The list keeps its format and every entry and field the sync does not own; the user's other attributes stay.
    const u2 = await tables.userItem('u2');
    expect(courseIdsOf(u2?.purchasedCourses)).toEqual(['c9', 'c3']);
    expect(u2?.purchasedCourses?.L?.[0]).toEqual({ M: { courseId: { S: 'c9' }, purchasedAt: { S: '2024-05-01' }, orderId: { S: 'o-old' }, note: { S: 'gift' } } });
    expect(u2?.purchasedCourses?.L?.[1]?.M).toMatchObject({ courseId: { S: 'c3' }, orderId: { S: 'o-web' } });
    expect(u2?.name).toEqual({ S: 'Sari' });
    // The write is conditional on the user existing: a paid payment never creates a user.
    expect(await tables.userItem('u-ghost')).toBeUndefined();
  });

  test('the types resolve through the exports, as a Next.js app (moduleResolution bundler) compiles them', async () => {
    writeFileSync(
      join(consumer, 'route.ts'),
      `import { PaymentSyncService, type PaymentOutcome, type UserResult } from 'payment-sync';
const service = new PaymentSyncService({ env: { DYNAMODB_PAYMENTS_TABLE: 'p', DYNAMODB_USERS_TABLE: 'u' } });
export async function POST(): Promise<string[]> {
  const result: UserResult = await service.syncUserPayments('u1', { dryRun: true });
  const status: 'in-sync' | 'fixed' | 'would-fix' | 'not-found' | 'error' = result.status;
  const outcome: PaymentOutcome = await service.applyPayment('o1');
  // @ts-expect-error dryRun is a boolean
  await service.syncUserPayments('u1', { dryRun: 'yes' });
  return outcome.kind === 'granted' ? [...outcome.courseIds] : [status];
}
`,
    );
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const flags = ['--noEmit', '--strict', '--skipLibCheck', '--module', 'esnext', '--moduleResolution', 'bundler', '--target', 'es2022', 'route.ts'];
    await expect(run(process.execPath, [tsc, ...flags], { cwd: consumer })).resolves.toBeDefined();
  });
});

describe('PaymentSyncService in-process', () => {
  let tables: TestTables;
  /** The tables' variables without their credential pair: on a loopback endpoint the client then signs with the local one. */
  let env: Record<string, string>;
  beforeAll(async () => {
    logger.setLogLevel('ERROR');
    tables = await startTestTables();
    env = Object.fromEntries(Object.entries(tables.env).filter(([name]) => !/^AWS_(ACCESS_KEY_ID|SECRET_ACCESS_KEY)$/.test(name)));
  });
  afterAll(() => tables.close());

  test('a bad environment is one ConfigError naming every problem; bad arguments are InvalidEventError, before any call', async () => {
    expect(() => new PaymentSyncService({ env: { GRACE_MINUTES: 'soon' } })).toThrow(ConfigError);
    expect(() => new PaymentSyncService({ env: { GRACE_MINUTES: 'soon' } })).toThrow(/DYNAMODB_PAYMENTS_TABLE is required.*DYNAMODB_USERS_TABLE is required.*GRACE_MINUTES/);
    const service = new PaymentSyncService({ env });
    await expect(service.validateUserData(42 as unknown as string)).rejects.toBeInstanceOf(InvalidEventError);
    await expect(service.syncUserPayments('u1', { dryRun: 'yes' as unknown as boolean })).rejects.toBeInstanceOf(InvalidEventError);
    await expect(service.applyPayment(' ')).rejects.toBeInstanceOf(InvalidEventError);
    service.destroy();
  });

  test('the webhook grant is an UpdateItem on condition that the user exists and the list is what was read', async () => {
    await tables.putUser('w1', { L: [{ S: 'c1' }] });
    await tables.putPayment('o-w', { userId: 'w1', courseId: 'c2', status: 'settlement' });
    const service = new PaymentSyncService({ config: loadConfig(env) });
    const send = jest.spyOn(DynamoDBClient.prototype, 'send');
    try {
      expect(await service.applyPayment('o-w')).toMatchObject({ kind: 'granted', courseIds: ['c2'] });
      const updates = send.mock.calls.map(([command]) => command).filter((command) => command instanceof UpdateItemCommand);
      expect(updates).toHaveLength(1);
      expect((updates[0] as UpdateItemCommand).input.ConditionExpression).toBe('attribute_exists(#key) AND #courses = :before');
      expect((updates[0] as UpdateItemCommand).input.ExpressionAttributeValues?.[':before']).toEqual({ L: [{ S: 'c1' }] });
    } finally {
      send.mockRestore();
      service.destroy();
    }
    expect(await tables.userCourses('w1')).toEqual({ L: [{ S: 'c1' }, { S: 'c2' }] });
  });
});
