import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { loadConfig } from '../lambdas/core/config';
import { createSyncDeps, type SyncDeps } from '../lambdas/core/deps';
import { ConfigError, EnvironmentError } from '../lambdas/core/errors';
import { runFullReconciliation } from '../lambdas/core/jobs/full-run/local-run';
import { checkHealth } from '../lambdas/core/jobs/health';
import { reconcileUsers, summarizeUsers } from '../lambdas/core/jobs/user-reconcile';
import { FolderSink } from '../lambdas/core/report/folder-sink';
import { newRunId, type RunMode, type RunSummary } from '../lambdas/core/report/report';
import { FolderStorage } from '../lambdas/core/storage/folder-storage';
import { backupUsersTable, exportUsersToFile, type BackupReceipt } from '../lambdas/core/store/users-backup';
import { startDemoEnvironment } from './local/environment';
import { progressPrinter } from './progress';
import { printSummary } from './summary-printer';

/** The seed's commands: what each one runs. */
const COMMANDS = {
  validate: { mode: 'validate', writes: false, capped: false, about: 'payment-validate: report every issue, change nothing' },
  fix: { mode: 'fix', writes: true, capped: false, about: 'payment-fix: validate and fix (grant missing, drop duplicates, revoke by policy)' },
  migrate: { mode: 'migrate', writes: true, capped: false, about: 'payment-sync: one-time migration of all payment history; backs up users first' },
  'cron-sync': { mode: 'cron-sync', writes: true, capped: true, about: 'payment-cron-sync: the scheduled sync, with the change cap' },
  'cron-validate': { mode: 'cron-validate', writes: false, capped: false, about: 'payment-cron-validate: the scheduled validation' },
  health: { mode: undefined, writes: false, capped: false, about: 'payment-cron-health: tables, index, stream' },
} as const;
type CommandName = keyof typeof COMMANDS;

const USAGE = `usage: npm run <payment-validate|payment-fix|payment-sync|payment-cron-sync|payment-cron-validate|payment-cron-health> -- [options]
  --user ID          only this user (repeatable); per-user validate/fix
  --dry-run          plan and report, write nothing
  --deep             accepted for the old scripts' sake: full runs always judge each course's origin (unbacked)
  --max-changes N    stop writing after N users changed; 0 writes nothing (scheduled runs default to MAX_USER_CHANGES_PER_RUN)
  --segments N       parallel scan segments per table for the snapshot (default SCAN_SEGMENTS)
  --buckets N        join buckets, each planned on its own (default JOIN_BUCKETS)
  --report-dir DIR   where the run's report folder goes (default ./reports)
  --json             print the summary as one JSON object on the last line of stdout
  --demo-users N     size of the embedded demo data set (embedded default only; default 200)
  --demo-seed N      seed of the embedded demo data set (default 7)
With no DYNAMODB_ENDPOINT and no table variables set, runs against an embedded dynalite with demo data.
${Object.values(COMMANDS).map((command) => `  ${command.about}`).join('\n')}`;

class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Flags that take a number: `--max-changes -1` is read as a (bad) value, not as an unknown option. */
const NUMERIC_FLAGS = new Set(['--max-changes', '--segments', '--buckets', '--demo-users', '--demo-seed']);

function joinNegativeValues(argv: readonly string[]): string[] {
  const joined: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const next = argv[i + 1];
    if (NUMERIC_FLAGS.has(arg) && next !== undefined && /^-\d/.test(next)) {
      joined.push(`${arg}=${next}`);
      i++;
    } else joined.push(arg);
  }
  return joined;
}

function parseFlags(argv: string[]) {
  try {
    return parseArgs({
      args: joinNegativeValues(argv),
      allowPositionals: true,
      options: {
        user: { type: 'string', multiple: true },
        'dry-run': { type: 'boolean', default: false },
        deep: { type: 'boolean', default: false },
        'max-changes': { type: 'string' },
        segments: { type: 'string' },
        buckets: { type: 'string' },
        'report-dir': { type: 'string', default: 'reports' },
        json: { type: 'boolean', default: false },
        'demo-users': { type: 'string', default: '200' },
        'demo-seed': { type: 'string', default: '7' },
        help: { type: 'boolean', default: false },
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

export function parseCommandLine(argv: string[]) {
  const { values, positionals } = parseFlags(argv);
  const name = positionals[0];
  if (values.help) throw new UsageError('');
  if (!name || !(name in COMMANDS)) throw new UsageError(`unknown command "${name ?? ''}"`);
  const whole = (flag: string, value: string | undefined, min = 1): number | undefined => {
    if (value === undefined) return undefined;
    const number = Number(value);
    if (value.trim() === '' || !Number.isInteger(number) || number < min) throw new UsageError(`--${flag} takes a whole number of ${min} or more (got "${value}")`);
    return number;
  };
  return {
    command: name as CommandName,
    users: values.user ?? [],
    dryRun: values['dry-run'],
    deep: values.deep,
    // 0 is a run that writes nothing and reports, as CAPPED, what it would have changed.
    maxChanges: whole('max-changes', values['max-changes'], 0),
    segments: whole('segments', values.segments),
    buckets: whole('buckets', values.buckets),
    reportDir: values['report-dir'],
    json: values.json,
    demoUsers: whole('demo-users', values['demo-users']) ?? 200,
    demoSeed: whole('demo-seed', values['demo-seed']) ?? 7,
  };
}
type CommandLine = ReturnType<typeof parseCommandLine>;

/** Exit statuses of the command line (the README's runbook lists them). */
export const EXIT = { completed: 0, unhealthy: 1, couldNotRun: 2, capped: 3, usersInError: 4 } as const;

/**
 * A run that completed says so only when nothing was left undone: a cap that stopped its
 * writes, or users it could not read or write, each have their own status for scripts and cron.
 */
export function exitCodeOf(summary: RunSummary & Record<string, unknown>): number {
  if (summary.capped === true) return EXIT.capped;
  if (summary.issues.error > 0) return EXIT.usersInError;
  return EXIT.completed;
}

/** Fails before any work when a table or the index is not there, with the names an operator needs. */
async function assertTablesReachable(deps: SyncDeps): Promise<void> {
  for (const table of [deps.config.paymentsTable, deps.config.usersTable]) {
    try {
      await deps.client.send(new DescribeTableCommand({ TableName: table }));
    } catch (error) {
      const name = (error as Error).name;
      if (name === 'ResourceNotFoundException') throw new EnvironmentError(`table ${table} does not exist at ${deps.config.endpoint ?? `AWS ${deps.config.region}`}`);
      throw new EnvironmentError(`cannot reach DynamoDB at ${deps.config.endpoint ?? `AWS ${deps.config.region}`}: ${name}: ${(error as Error).message}`);
    }
  }
}

export async function runCommand(cli: CommandLine, deps: SyncDeps, embedded: boolean, say: (line: string) => void): Promise<{ summary: unknown; exitCode: number }> {
  const spec = COMMANDS[cli.command];
  if (spec.mode === undefined) {
    const report = await checkHealth(deps, { expectStream: !embedded });
    for (const check of report.checks) say(`  ${check.status.padEnd(4)} ${check.name}: ${check.detail}`);
    say(`health: ${report.status}`);
    return { summary: report, exitCode: report.status === 'unhealthy' ? EXIT.unhealthy : EXIT.completed };
  }
  const mode: RunMode = spec.mode;
  const dryRun = cli.dryRun || !spec.writes;
  const runId = newRunId(mode);
  const folder = join(cli.reportDir, runId);
  let backup: BackupReceipt | undefined;
  if (mode === 'migrate' && !dryRun) {
    mkdirSync(folder, { recursive: true });
    backup = embedded || deps.config.endpoint
      ? await exportUsersToFile(deps.client, deps.config, join(folder, 'users-backup.jsonl'))
      : await backupUsersTable(deps.client, deps.config, runId);
    say(`backup of ${deps.config.usersTable} before migrating: ${backup.kind} ${backup.location}`);
  }
  let summary: RunSummary & Record<string, unknown>;
  if (cli.users.length > 0) {
    const sink = new FolderSink(folder);
    const outcomes = await reconcileUsers(deps, cli.users, { dryRun, runId });
    for (const { result, change } of outcomes) {
      for (const issue of result.issues) sink.issue({ ...issue, runId, applied: result.status === 'fixed' && issue.fix !== 'none' });
      if (change) sink.change(change);
      say(`  ${result.userId}: ${result.status}${result.error ? ` (${result.error})` : ''}${result.added.length ? ` +${result.added.join(',')}` : ''}${result.removed.length ? ` -${result.removed.join(',')}` : ''}${result.duplicatesRemoved.length ? ` dup-${result.duplicatesRemoved.join(',')}` : ''}`);
    }
    summary = { ...summarizeUsers(runId, mode, dryRun, outcomes), users: outcomes.map(({ result }) => result) };
    await sink.close(summary);
  } else {
    const progress = progressPrinter();
    const storage = new FolderStorage(cli.reportDir);
    const result = await runFullReconciliation(deps, storage, {
      runId,
      mode,
      dryRun,
      segments: cli.segments ?? deps.config.scanSegments,
      buckets: cli.buckets ?? deps.config.joinBuckets,
      maxUserChanges: cli.maxChanges ?? (spec.capped ? deps.config.maxUserChangesPerRun : undefined),
      onProgress: (update) => progress.update(update),
    });
    progress.done();
    summary = { ...result, ...(backup ? { backup } : {}) };
    if (backup) await storage.put(`${runId}/summary.json`, `${JSON.stringify(summary, null, 2)}\n`);
  }
  printSummary(summary, folder, say);
  return { summary, exitCode: exitCodeOf(summary) };
}

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let cli: CommandLine;
  try {
    cli = parseCommandLine(argv);
  } catch (error) {
    const asked = error instanceof UsageError && !error.message;
    if (asked) console.log(USAGE);
    else console.error(`payment-sync: ${(error as Error).message}\n\n${USAGE}`);
    return asked ? 0 : 2;
  }
  // With --json, stdout carries only the summary line; everything else goes to stderr.
  const say = (line: string): void => void (cli.json ? process.stderr : process.stdout).write(`${line}\n`);
  const embedded = !env.DYNAMODB_ENDPOINT && !env.DYNAMODB_PAYMENTS_TABLE && !env.DYNAMODB_USERS_TABLE;
  let local: Awaited<ReturnType<typeof startDemoEnvironment>> | undefined;
  try {
    if (embedded) {
      local = await startDemoEnvironment(cli.demoUsers, cli.demoSeed);
      say(`no DYNAMODB_ENDPOINT or table names set: embedded dynalite at ${local.endpoint} with ${local.dataset.users.length} demo users and ${local.dataset.payments.length} payments`);
    }
    const config = loadConfig(local ? { ...env, ...local.env } : env);
    const deps = createSyncDeps(config);
    await assertTablesReachable(deps);
    const { summary, exitCode } = await runCommand(cli, deps, embedded, say);
    if (cli.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
    return exitCode;
  } catch (error) {
    if (error instanceof ConfigError || error instanceof EnvironmentError) console.error(`payment-sync: ${error.message}`);
    else console.error(`payment-sync: the run could not complete: ${(error as Error).stack ?? error}`);
    return 2;
  } finally {
    await local?.close();
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
