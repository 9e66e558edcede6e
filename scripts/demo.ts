import './local/quiet';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import { createSyncDeps } from '../lambdas/core/deps';
import { listedCourseIds } from '../lambdas/core/rules/courses-list';
import { createStreamHandler } from '../lambdas/stream/stream-batch';
import { localClient } from './local/embedded-dynamodb';
import { startDemoEnvironment } from './local/environment';
import { startLocalStream } from './local/stream/local-stream';
import { parseCommandLine, runCommand } from './cli';

const say = (line = ''): void => void process.stdout.write(`${line}\n`);

/**
 * `npm start`: the product on its embedded default. Demo data with planted drift, then
 * validate → fix → validate, then a payment settles through the webhook path and the stream
 * Lambda grants it live.
 */
async function demo(): Promise<void> {
  const local = await startDemoEnvironment(200, 7);
  const deps = createSyncDeps(local.config, local.client);
  const failureFile = join(mkdtempSync(join(tmpdir(), 'payment-sync-')), 'stream-failures.jsonl');
  const stream = await startLocalStream({
    upstreamEndpoint: local.endpoint,
    paymentsTable: local.config.paymentsTable,
    handler: createStreamHandler(deps),
    failureFile,
  });
  try {
    say(`payment-sync demo · embedded dynalite ${local.endpoint} · ${local.dataset.users.length} users · ${local.dataset.payments.length} payments`);
    say(`planted drift: ${Object.entries(local.dataset.planted).map(([kind, n]) => `${n} ${kind}`).join(', ')}`);
    const steps: Array<[string, string[]]> = [
      ['1/4 npm run payment-validate   (read-only)', ['validate']],
      ['2/4 npm run payment-fix        (grant missing, drop duplicates)', ['fix']],
      ['3/4 npm run payment-validate -- --deep   (again: what is left is report-only)', ['validate', '--deep']],
    ];
    for (const [title, argv] of steps) {
      say();
      say(title);
      await runCommand(parseCommandLine([...argv, '--report-dir', 'reports']), deps, true, say);
    }

    say();
    say('4/4 live: the Midtrans webhook writes a payment; the stream Lambda grants it');
    const webhook = localClient(stream.endpoint);
    const userId = 'user-00001';
    const courseId = 'course-live-demo';
    const write = (status: string) =>
      webhook.send(
        new PutItemCommand({
          TableName: local.config.paymentsTable,
          Item: {
            orderId: { S: 'ORDER-LIVE-0001' },
            userId: { S: userId },
            courseId: { S: courseId },
            status: { S: status },
            updatedAt: { S: new Date().toISOString() },
          },
        }),
      );
    const hasCourse = async (): Promise<boolean> => listedCourseIds((await deps.users.get(userId)).courses).includes(courseId);
    await write('pending');
    await stream.idle();
    say(`  webhook: ORDER-LIVE-0001 pending    → ${userId} has ${courseId}: ${await hasCourse()}`);
    const started = performance.now();
    await write('settlement');
    await stream.idle();
    const elapsed = performance.now() - started;
    say(`  webhook: ORDER-LIVE-0001 settlement → ${userId} has ${courseId}: ${await hasCourse()} (write → stream record → handler → conditional write: ${elapsed.toFixed(1)} ms)`);
    say();
    say('Reports are in ./reports/<run id>/. `npm run payment-validate -- --help` lists the commands; README.md explains the rest.');
    webhook.destroy();
  } finally {
    await stream.stop();
    await local.close();
  }
}

demo().catch((error: unknown) => {
  console.error(`demo failed: ${(error as Error).stack ?? error}`);
  process.exitCode = 1;
});
