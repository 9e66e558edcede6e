import './local/quiet';
import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import { createSyncDeps } from '../lambdas/core/deps';
import { EnvironmentError } from '../lambdas/core/errors';
import { listedCourseIds } from '../lambdas/core/rules/courses-list';
import { localClient } from './local/embedded-dynamodb';
import { startEmbeddedDefault } from './local/environment';
import { parseCommandLine, runCommand } from './cli';

const say = (line = ''): void => void process.stdout.write(`${line}\n`);

/**
 * `npm start`: the product on its embedded default, the same data in `.local/` as every
 * command's (seeded with planted drift on first use), then validate → fix → validate, then a
 * payment settles through the webhook path and the stream Lambda grants it live.
 */
async function demo(): Promise<void> {
  const local = await startEmbeddedDefault();
  const { stream } = local;
  const deps = createSyncDeps(local.config, local.client);
  try {
    say(`payment-sync demo · embedded dynalite ${local.endpoint}`);
    for (const note of local.notes) say(`  ${note}`);
    if (local.seededNow) say(`planted drift: ${Object.entries(local.demo.planted).map(([kind, n]) => `${n} ${kind}`).join(', ')}`);
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
    // A new order and course each time: the data persists, and the user must not own it already.
    const stamp = Date.now().toString(36);
    const orderId = `ORDER-LIVE-${stamp.toUpperCase()}`;
    const courseId = `course-live-${stamp}`;
    const write = (status: string) =>
      webhook.send(
        new PutItemCommand({
          TableName: local.config.paymentsTable,
          Item: {
            orderId: { S: orderId },
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
    say(`  webhook: ${orderId} pending    → ${userId} has ${courseId}: ${await hasCourse()}`);
    const started = performance.now();
    await write('settlement');
    await stream.idle();
    const elapsed = performance.now() - started;
    say(`  webhook: ${orderId} settlement → ${userId} has ${courseId}: ${await hasCourse()} (write → stream record → handler → conditional write: ${elapsed.toFixed(1)} ms)`);
    say();
    say('Reports are in ./reports/<run id>/. `npm run payment-validate -- --help` lists the commands; README.md explains the rest.');
    if (local.dataDir) say('The data stays as this left it: the commands (npm run payment-validate, ...) work on it; `npm run local:reset` starts over.');
    webhook.destroy();
  } finally {
    await local.close();
  }
}

demo().catch((error: unknown) => {
  console.error(error instanceof EnvironmentError ? `demo: ${error.message}` : `demo failed: ${(error as Error).stack ?? error}`);
  process.exitCode = error instanceof EnvironmentError ? 2 : 1;
});
