import './local/quiet';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { loadConfig, type SyncConfig } from '../lambdas/core/config';
import { createSyncDeps, type SyncDeps } from '../lambdas/core/deps';
import { ConfigError, EnvironmentError } from '../lambdas/core/errors';
import { isSkipped } from '../lambdas/core/jobs/full-run/prepare';
import { checkHealth, createHealthReaders } from '../lambdas/core/jobs/health';
import { undoRun, type UndoResult } from '../lambdas/core/jobs/undo';
import { reconcileUsers, summarizeUsers } from '../lambdas/core/jobs/user-reconcile';
import { FolderSink } from '../lambdas/core/report/folder-sink';
import { newRunId, RUN_ID_PATTERN, type RunMode, type RunSummary } from '../lambdas/core/report/report';
import { FolderStorage } from '../lambdas/core/storage/folder-storage';
import { RunRecords } from '../lambdas/core/runs/run-records';
import { logger } from '../lambdas/core/observability';
import { describeTable, dynamoLocation } from '../lambdas/core/store/table-checks';
import { checkEnvironment, printEnvChecks } from './env-check';
import { configurationInEffect, configurationLine, formatLogLine, logFilePath, openLogFile, stageLog, type LogFile } from './log-file';
import { startEmbeddedDefault, type EmbeddedDefault } from './local/environment';
import { runStateMachineLocally } from './local/run-state-machine';
import { progressPrinter } from './progress';
import { printSummary } from './summary-printer';

/** The seed's commands: what each one runs. */
const COMMANDS = {
  validate: { mode: 'validate', writes: false, trigger: 'manual', about: 'payment-validate: report every issue, change nothing' },
  fix: { mode: 'fix', writes: true, trigger: 'manual', about: 'payment-fix: validate and fix (grant missing, drop duplicates, revoke by policy)' },
  migrate: { mode: 'migrate', writes: true, trigger: 'manual', about: 'payment-sync: one-time migration of all payment history; backs up users first' },
  'cron-sync': { mode: 'cron-sync', writes: true, trigger: 'schedule', about: 'payment-cron-sync: the scheduled sync, with the change cap' },
  'cron-validate': { mode: 'cron-validate', writes: false, trigger: 'schedule', about: 'payment-cron-validate: the scheduled validation' },
  health: { mode: undefined, writes: false, trigger: 'manual', about: 'payment-cron-health: tables, index, stream, the last sync and validation, the run lock, the hold, failures, point-in-time recovery' },
  'release-hold': { mode: undefined, writes: true, trigger: 'manual', about: 'payment-release-hold: lift the hold a capped scheduled run set, so scheduled fixes write again' },
  'env-check': { mode: undefined, writes: false, trigger: 'manual', about: 'payment-env-check: what a run needs (configuration, credentials, tables, index, stream, point-in-time recovery, run table, bucket), each with its fix' },
  undo: { mode: undefined, writes: true, trigger: 'manual', about: 'payment-undo -- <run id> [--dry-run]: put back the lists a run changed, where they are still what it wrote' },
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
  // undo's run id is the one positional after the command.
  const runId = name === 'undo' ? positionals[1] : undefined;
  if (name === 'undo') {
    if (!runId) throw new UsageError('undo needs the run id: npm run payment-undo -- <run id> [--dry-run] [--json] [--report-dir DIR]');
    if (!RUN_ID_PATTERN.test(runId)) throw new UsageError(`"${runId}" is not a run id (the name of a run's folder in the report directory)`);
    if (values.user) throw new UsageError('undo restores a whole run; --user is not an undo option');
  }
  const whole = (flag: string, value: string | undefined, min = 1): number | undefined => {
    if (value === undefined) return undefined;
    const number = Number(value);
    if (value.trim() === '' || !Number.isInteger(number) || number < min) throw new UsageError(`--${flag} takes a whole number of ${min} or more (got "${value}")`);
    return number;
  };
  return {
    command: name as CommandName,
    runId,
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
export const EXIT = { completed: 0, unhealthy: 1, couldNotRun: 2, capped: 3, usersInError: 4, undoConflicts: 5 } as const;

/**
 * A run that completed says so only when nothing was left undone: a run that failed, a cap
 * that stopped its writes or a hold that kept it report-only, and users it could not read or
 * write each have their own status for scripts and cron.
 */
export function exitCodeOf(summary: RunSummary & Record<string, unknown>): number {
  if (summary.status === 'failed') return EXIT.couldNotRun;
  if (summary.capped === true || summary.held === true) return EXIT.capped;
  if (summary.issues.error > 0) return EXIT.usersInError;
  return EXIT.completed;
}

/** Fails before any work when a table or the index is not there, with the names an operator needs. */
async function assertTablesReachable(deps: SyncDeps): Promise<void> {
  const where = dynamoLocation(deps.config);
  for (const table of [deps.config.paymentsTable, deps.config.usersTable]) {
    let found: unknown;
    try {
      found = await describeTable(deps.client, table);
    } catch (error) {
      throw new EnvironmentError(`cannot reach DynamoDB at ${where}: ${(error as Error).name}: ${(error as Error).message} (npm run payment-env-check says what is missing)`);
    }
    if (!found) throw new EnvironmentError(`table ${table} does not exist at ${where} (npm run payment-env-check says what is missing)`);
  }
}

/** `payment-env-check`: every check with its status and fix; exit 1 (as an unhealthy health check) when one fails. */
async function runEnvCheck(load: () => SyncConfig, say: (line: string) => void, client?: DynamoDBClient): Promise<{ summary: unknown; exitCode: number }> {
  const checks = await checkEnvironment(load, { client });
  const ok = printEnvChecks(checks, say);
  return { summary: { ok, checks }, exitCode: ok ? EXIT.completed : EXIT.unhealthy };
}

/** An undo with users it could not read or write exits 4 (a rerun retries them); else with conflicts, 5. */
export function undoExitCode(result: Pick<UndoResult, 'errors' | 'conflicts'>): number {
  if (result.errors > 0) return EXIT.usersInError;
  if (result.conflicts > 0) return EXIT.undoConflicts;
  return EXIT.completed;
}

/** `payment-undo <run id>`: the run's folder in the report directory, its users restored one by one. */
async function runUndo(cli: CommandLine, deps: SyncDeps, say: (line: string) => void): Promise<{ summary: UndoResult; exitCode: number }> {
  const runId = cli.runId as string;
  const result = await undoRun(deps, new FolderStorage(cli.reportDir), { folder: runId, runId, dryRun: cli.dryRun });
  for (const user of result.users) {
    if (user.status === 'conflict' || user.status === 'not-found' || user.status === 'error') say(`  ${user.userId}: ${user.status}${user.error ? ` (${user.error})` : ''}`);
  }
  say(`undo of run ${runId}${result.dryRun ? ' · dry run (nothing written)' : ''}`);
  say(`  ${result.restored} ${result.dryRun ? 'would be restored' : 'restored'}, ${result.alreadyRestored} already restored, ${result.conflicts} conflicts (changed since the run: left as they are), ${result.notFound} not found, ${result.errors} errors`);
  say(`  report: ${join(cli.reportDir, result.report.lines)}`);
  return { summary: result, exitCode: undoExitCode(result) };
}

/**
 * `embedded`: the command runs on the embedded default; given as the default itself, its
 * capture of writes lets an hourly sync read only what changed.
 */
export async function runCommand(cli: CommandLine, deps: SyncDeps, embedded: boolean | Pick<EmbeddedDefault, 'changeLog' | 'changesSince' | 'streamFailures'>, say: (line: string) => void, log: LogFile = openLogFile(undefined)): Promise<{ summary: unknown; exitCode: number }> {
  if (cli.command === 'undo') return runUndo(cli, deps, say);
  if (cli.command === 'release-hold') {
    const released = await new RunRecords(deps.client, deps.config.runsTable, deps.now).releaseHold();
    say(released ? `hold released (set by run ${released.runId} at ${released.setAt}: ${released.reason}); scheduled fixes write again` : 'no hold was in force');
    return { summary: { released: released ?? null }, exitCode: EXIT.completed };
  }
  if (cli.command === 'env-check') return runEnvCheck(() => deps.config, say, deps.client);
  const spec = COMMANDS[cli.command];
  if (spec.mode === undefined) {
    // The health Lambda's checks, with the same readers (failure queue when configured, stream lag on AWS).
    const { readers, destroy } = createHealthReaders(deps.config);
    try {
      const report = await checkHealth(deps, { expectStream: embedded === false, ...readers });
      const width = Math.max(...report.checks.map((check) => check.name.length));
      for (const check of report.checks) say(`  ${(check.status === 'fail' ? 'FAIL' : check.status).padEnd(4)} ${check.name.padEnd(width)}  ${check.detail}`);
      say(`health: ${report.status}`);
      return { summary: report, exitCode: report.status === 'unhealthy' ? EXIT.unhealthy : EXIT.completed };
    } finally {
      destroy();
    }
  }
  const mode: RunMode = spec.mode;
  const dryRun = cli.dryRun || !spec.writes;
  const runId = newRunId(mode);
  const folder = join(cli.reportDir, runId);
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
    const stages = stageLog(log);
    const storage = new FolderStorage(cli.reportDir);
    const outcome = await runStateMachineLocally(
      { deps, storage, runs: new RunRecords(deps.client, deps.config.runsTable, deps.now) },
      {
        runId,
        mode,
        trigger: spec.trigger,
        dryRun,
        ...(cli.maxChanges !== undefined ? { maxUserChanges: cli.maxChanges } : {}),
        ...(cli.segments !== undefined ? { segments: cli.segments } : {}),
        ...(cli.buckets !== undefined ? { buckets: cli.buckets } : {}),
      },
      {
        onProgress: (update) => {
          progress.update(update);
          stages.update(update);
        },
        ...(typeof embedded === 'object' ? { changeLog: embedded.changeLog, changesSince: embedded.changesSince, streamFailures: embedded.streamFailures } : {}),
      },
    );
    progress.done();
    stages.done();
    if (isSkipped(outcome)) {
      say(`skipped: run ${outcome.skipped.runningRunId} (${outcome.skipped.mode}) is in progress since ${outcome.skipped.since}; two full runs never overlap`);
      return { summary: outcome, exitCode: EXIT.couldNotRun };
    }
    // A backup file's location is a key of the report folder: as a path, for the person reading it.
    const backup = outcome.backup && (outcome.backup.kind === 'file' ? { ...outcome.backup, location: join(cli.reportDir, outcome.backup.location) } : outcome.backup);
    if (backup) say(`backup of ${deps.config.usersTable} before migrating: ${backup.kind} ${backup.location}`);
    summary = { ...outcome, ...(backup ? { backup } : {}) };
  }
  printSummary(summary, folder, say);
  return { summary, exitCode: exitCodeOf(summary) };
}

const exitName = (code: number): string => Object.entries(EXIT).find(([, value]) => value === code)?.[0] ?? 'unknown';

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  // LOG_FILE is the command line's own setting, read here with the embedded default's test rather
  // than by loadConfig: the file must be open before the configuration is loaded, so that a bad
  // configuration is logged too, and no Lambda ever writes a log file (CloudWatch has their lines).
  const log = openLogFile(logFilePath(env.LOG_FILE));
  const levelBefore = logger.getLevelName();
  // The shared logger's lines (DEBUG=true: configuration, stages, each user's plan) go to stderr
  // (stdout stays the summary's under --json) and to the log file, in the file's format.
  logger.printTo(({ level, message, fields }) => {
    process.stderr.write(`${process.stderr.isTTY ? '\r\x1b[K' : ''}${formatLogLine(new Date(), level, message, fields)}`);
    log.write(level, message, fields);
  });
  const startedAt = Date.now();
  try {
    const exitCode = await runMain(argv, env, log);
    log.write(exitCode === EXIT.completed ? 'INFO' : exitCode === EXIT.couldNotRun ? 'ERROR' : 'WARN', `end: exit ${exitCode} (${exitName(exitCode)}) after ${((Date.now() - startedAt) / 1000).toFixed(1)} s`);
    return exitCode;
  } finally {
    logger.printTo(undefined);
    logger.setLogLevel(levelBefore);
    log.close();
  }
}

async function runMain(argv: string[], env: NodeJS.ProcessEnv, log: LogFile): Promise<number> {
  let cli: CommandLine;
  try {
    cli = parseCommandLine(argv);
  } catch (error) {
    const asked = error instanceof UsageError && !error.message;
    if (asked) console.log(USAGE);
    else {
      console.error(`payment-sync: ${(error as Error).message}\n\n${USAGE}`);
      log.write('ERROR', `usage: ${(error as Error).message} (arguments: ${argv.join(' ')})`);
    }
    return asked ? 0 : 2;
  }
  const { command, ...flags } = cli;
  log.write('INFO', `start: ${command} (pid ${process.pid}, ${process.cwd()})`, flags);
  // With --json, stdout carries only the summary line; everything else goes to stderr. The log file gets every line.
  const say = (line: string): void => {
    (cli.json ? process.stderr : process.stdout).write(`${line}\n`);
    log.write('INFO', line);
  };
  const embedded = !env.DYNAMODB_ENDPOINT && !env.DYNAMODB_PAYMENTS_TABLE && !env.DYNAMODB_USERS_TABLE;
  let local: EmbeddedDefault | undefined;
  try {
    if (embedded) {
      // Kept in .local/ between commands (created and seeded on first use); see scripts/local/environment.ts.
      const demoFlags = argv.some((arg) => /^--demo-(users|seed)(=|$)/.test(arg));
      local = await startEmbeddedDefault({ ...(demoFlags && { users: cli.demoUsers, seed: cli.demoSeed }), env });
      say(`no DYNAMODB_ENDPOINT or table names set: the embedded dynalite at ${local.endpoint}`);
      for (const note of local.notes) say(`  ${note}`);
    }
    const runEnv = local ? { ...env, ...local.env } : env;
    if (cli.command === 'env-check') {
      // Before loadConfig: a configuration that does not load is the first check's finding, not an exit 2.
      const { summary, exitCode } = await runEnvCheck(() => loadConfig(runEnv), say);
      if (cli.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
      return exitCode;
    }
    const config = loadConfig(runEnv);
    logger.setLogLevel(config.logLevel);
    log.write('INFO', `configuration: ${configurationLine(config)}`);
    logger.debug('configuration in effect', { config: configurationInEffect(config) });
    const deps = createSyncDeps(config);
    await assertTablesReachable(deps);
    const { summary, exitCode } = await runCommand(cli, deps, local ?? false, say, log);
    if (cli.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
    return exitCode;
  } catch (error) {
    if (error instanceof ConfigError || error instanceof EnvironmentError) console.error(`payment-sync: ${error.message}`);
    else console.error(`payment-sync: the run could not complete: ${(error as Error).stack ?? error}`);
    log.write('ERROR', error instanceof ConfigError || error instanceof EnvironmentError ? error.message : `the run could not complete: ${(error as Error).stack ?? error}`);
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
