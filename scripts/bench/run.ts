import '../local/quiet';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import { loadConfig, type SyncConfig } from '../../lambdas/core/config';
import { createSyncDeps } from '../../lambdas/core/deps';
import { runFullReconciliation } from '../../lambdas/core/jobs/full-run/local-run';
import { FolderStorage } from '../../lambdas/core/storage/folder-storage';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { reconcileUser } from '../../lambdas/core/jobs/user-reconcile';
import { createStreamHandler } from '../../lambdas/stream/stream-batch';
import { createTables, DEFAULT_TABLES, LOCAL_CREDENTIALS, localClient } from '../local/embedded-dynamodb';
import { generateDemoData, loadDemoData } from '../local/demo-data';
import { startLocalStream } from '../local/stream/local-stream';
import { naiveSync } from './naive-baseline';

/**
 * Figures, not assertions: each measurement runs on fresh tables loaded with the same seeded
 * data, against dynalite in its own process (so the server does not share the client's event
 * loop), and every ratio is against the naive baseline measured in the same run.
 */
const { values } = parseArgs({ options: { users: { type: 'string', default: '2000' }, seed: { type: 'string', default: '42' }, live: { type: 'string', default: '200' } } });
const USERS = Number(values.users);
const SEED = Number(values.seed);
const LIVE_WRITES = Number(values.live);

async function startServer(): Promise<{ endpoint: string; process: ChildProcess }> {
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const child = spawn(process.execPath, [join(__dirname, '..', '..', 'node_modules', 'dynalite', 'cli.js'), '--port', String(port), '--host', '127.0.0.1', '--createTableMs', '0'], { stdio: 'ignore' });
  const endpoint = `http://127.0.0.1:${port}`;
  for (let attempt = 0; ; attempt++) {
    try {
      await fetch(endpoint);
      return { endpoint, process: child };
    } catch (error) {
      if (attempt > 100) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

let tableSuffix = 0;
/** Fresh, loaded tables on the shared server: every measurement starts from the same drift. */
async function freshTables(endpoint: string): Promise<SyncConfig> {
  tableSuffix++;
  const config = loadConfig({
    DYNAMODB_PAYMENTS_TABLE: `${DEFAULT_TABLES.paymentsTable}-${tableSuffix}`,
    DYNAMODB_USERS_TABLE: `${DEFAULT_TABLES.usersTable}-${tableSuffix}`,
    DYNAMODB_ENDPOINT: endpoint,
  });
  const client = localClient(endpoint);
  await createTables(client, { ...DEFAULT_TABLES, paymentsTable: config.paymentsTable, usersTable: config.usersTable });
  await loadDemoData(client, config, generateDemoData({ users: USERS, seed: SEED }, config));
  client.destroy();
  return config;
}

async function timed<T>(work: () => Promise<T>): Promise<{ ms: number; result: T }> {
  const started = performance.now();
  const result = await work();
  return { ms: performance.now() - started, result };
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function main(): Promise<void> {
  process.env.AWS_ACCESS_KEY_ID ??= LOCAL_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY ??= LOCAL_CREDENTIALS.secretAccessKey;
  const server = await startServer();
  const rows: Array<[string, number, string]> = [];
  try {
    const baselineConfig = await freshTables(server.endpoint);
    const baseline = await timed(() => naiveSync(localClient(server.endpoint), baselineConfig));
    const payments = baseline.result.payments;
    rows.push(['naive baseline: sequential scan + per-user get/put (grants only)', baseline.ms, '1.00']);

    for (const segments of [1, 4, 8]) {
      const config = await freshTables(server.endpoint);
      const deps = createSyncDeps(config);
      const fix = await timed(() =>
        runFullReconciliation(deps, new FolderStorage(mkdtempSync(join(tmpdir(), 'bench-'))), { runId: 'bench', mode: 'fix', dryRun: false, segments, buckets: 1, maxUserChanges: undefined }),
      );
      rows.push([`payment-fix, ${segments} segment(s): grants + dedupe, conditional writes`, fix.ms, (baseline.ms / fix.ms).toFixed(2)]);
      if (segments === 4) {
        const validate = await timed(() =>
          runFullReconciliation(deps, new FolderStorage(mkdtempSync(join(tmpdir(), 'bench-'))), { runId: 'bench', mode: 'validate', dryRun: true, segments, buckets: 1, maxUserChanges: undefined }),
        );
        rows.push(['payment-validate after the fix, 4 segments (read-only)', validate.ms, (baseline.ms / validate.ms).toFixed(2)]);
        const deep = await timed(() =>
          runFullReconciliation(deps, new FolderStorage(mkdtempSync(join(tmpdir(), 'bench-'))), { runId: 'bench', mode: 'validate', dryRun: true, segments, buckets: 1, maxUserChanges: undefined }),
        );
        rows.push(['payment-validate --deep, 4 segments (index query per user)', deep.ms, (baseline.ms / deep.ms).toFixed(2)]);
        const perUser = await timed(async () => {
          for (let i = 1; i <= 100; i++) await reconcileUser(deps, `user-${String(i).padStart(5, '0')}`, { dryRun: false, runId: 'bench' });
        });
        rows.push(['per-user fix, 100 users one after another (ms per user)', perUser.ms / 100, '']);
      }
      deps.client.destroy();
    }

    const config = await freshTables(server.endpoint);
    const deps = createSyncDeps(config);
    const stream = await startLocalStream({ upstreamEndpoint: server.endpoint, paymentsTable: config.paymentsTable, handler: createStreamHandler(deps) });
    const webhook = localClient(stream.endpoint);
    const latencies: number[] = [];
    for (let i = 1; i <= LIVE_WRITES; i++) {
      const started = performance.now();
      await webhook.send(
        new PutItemCommand({
          TableName: config.paymentsTable,
          Item: { orderId: { S: `LIVE-${i}` }, userId: { S: `user-${String(1 + (i % USERS)).padStart(5, '0')}` }, courseId: { S: `live-${i}` }, status: { S: 'settlement' } },
        }),
      );
      await stream.idle();
      latencies.push(performance.now() - started);
    }
    latencies.sort((a, b) => a - b);
    rows.push([`live grant, webhook write → stream → handler → write: p50 of ${LIVE_WRITES}`, percentile(latencies, 50), '']);
    rows.push([`live grant: p95 of ${LIVE_WRITES}`, percentile(latencies, 95), '']);
    webhook.destroy();
    await stream.stop();
    deps.client.destroy();

    console.log(`payment-sync benchmark · ${USERS} users, ${payments} payments (seed ${SEED}) · dynalite in its own process · ${process.version}`);
    console.log(`${'measurement'.padEnd(76)} ${'ms'.padStart(10)}  speed-up vs baseline`);
    for (const [name, ms, ratio] of rows) console.log(`${name.padEnd(76)} ${ms.toFixed(1).padStart(10)}  ${ratio}`);
    console.log('The baseline does less (grants only, no duplicates, no refunds, no conditions): a ratio under 1 is the price of safety.');
  } finally {
    server.process.kill();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
