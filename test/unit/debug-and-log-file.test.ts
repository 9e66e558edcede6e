import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, logLevelFrom } from '../../lambdas/core/config';
import { debugEnabled, logger, type PrintedLogLine } from '../../lambdas/core/observability';
import { main } from '../../scripts/cli';
import { configurationInEffect, DEFAULT_LOG_FILE, formatLogLine, logFilePath, openLogFile, stageLog } from '../../scripts/log-file';
import { startTestTables, type TestTables } from '../support/local-tables';

const REQUIRED = { DYNAMODB_PAYMENTS_TABLE: 'lms-payments', DYNAMODB_USERS_TABLE: 'lms-users' };
const LINE = /^\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)\] \[(DEBUG|INFO|WARN|ERROR)\] (.+)$/;

const tempDir = (): string => mkdtempSync(join(tmpdir(), 'log-file-'));
const linesOf = (path: string): string[] => readFileSync(path, 'utf8').trimEnd().split('\n');

/** Runs the command line in-process with its terminal output captured. */
async function runCli(argv: string[], env: Record<string, string | undefined>): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const out = jest.spyOn(process.stdout, 'write').mockImplementation((chunk) => ((stdout += String(chunk)), true));
  const err = jest.spyOn(process.stderr, 'write').mockImplementation((chunk) => ((stderr += String(chunk)), true));
  const log = jest.spyOn(console, 'log').mockImplementation((...args) => void (stdout += `${args.join(' ')}\n`));
  const error = jest.spyOn(console, 'error').mockImplementation((...args) => void (stderr += `${args.join(' ')}\n`));
  try {
    return { code: await main(argv, env as NodeJS.ProcessEnv), stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
    log.mockRestore();
    error.mockRestore();
  }
}

describe('DEBUG: the seed\'s switch, and nobody else\'s DEBUG is an error', () => {
  test.each(['true', 'TRUE', '1', 'yes', 'Yes', ' true '])('DEBUG=%p turns debug on, over LOG_LEVEL too (the quiet terminal\'s WARN)', (value) => {
    expect(logLevelFrom({ DEBUG: value })).toBe('DEBUG');
    expect(logLevelFrom({ DEBUG: value, LOG_LEVEL: 'WARN' })).toBe('DEBUG');
    expect(loadConfig({ ...REQUIRED, DEBUG: value, LOG_LEVEL: 'WARN' }).logLevel).toBe('DEBUG');
  });

  test.each(['*', 'express:*', 'false', '0', 'no', 'payment-sync,-express:*', 'maybe'])('DEBUG=%p is left to other tools: no error, no debug', (value) => {
    expect(() => loadConfig({ ...REQUIRED, DEBUG: value })).not.toThrow();
    expect(loadConfig({ ...REQUIRED, DEBUG: value }).logLevel).toBe('INFO');
    expect(loadConfig({ ...REQUIRED, DEBUG: value, LOG_LEVEL: 'WARN' }).logLevel).toBe('WARN');
  });

  test('the shared logger prints debug lines through a command line\'s printer only at DEBUG, without Powertools\' own keys', () => {
    const printed: PrintedLogLine[] = [];
    const before = logger.getLevelName();
    logger.printTo((line) => printed.push(line));
    try {
      logger.setLogLevel('INFO');
      expect(debugEnabled()).toBe(false);
      logger.debug('hidden', { userId: 'u-1' });
      expect(printed).toEqual([]);
      logger.setLogLevel(loadConfig({ ...REQUIRED, DEBUG: 'yes' }).logLevel);
      expect(debugEnabled()).toBe(true);
      logger.debug('user plan', { userId: 'u-1', orderIds: ['o-1'] });
      expect(printed).toEqual([{ level: 'DEBUG', message: 'user plan', fields: { userId: 'u-1', orderIds: ['o-1'] } }]);
    } finally {
      logger.printTo(undefined);
      logger.setLogLevel(before);
    }
  });
});

describe('the log file: [timestamp] [level] message, appended', () => {
  test('the configuration in effect shows everything but secrets (a loopback endpoint signs with the environment\'s key pair)', () => {
    const config = loadConfig({ ...REQUIRED, DYNAMODB_ENDPOINT: 'http://127.0.0.1:8000', AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE', AWS_SECRET_ACCESS_KEY: 'do-not-print-me', MAX_REVOCATIONS_PER_RUN: '7' });
    const shown = configurationInEffect(config);
    expect(JSON.stringify(shown)).not.toMatch(/do-not-print-me|AKIAEXAMPLE/);
    expect(shown).toMatchObject({ paymentsTable: 'lms-payments', endpoint: 'http://127.0.0.1:8000', paymentsUserIndex: 'userId-index', maxRevocationsPerRun: 7, paidStatuses: ['settlement', 'success', 'paid', 'completed'], payment: { id: 'orderId' } });
  });

  test('one event is one line in the seed\'s format; fields as JSON; a stack stays on its line', () => {
    const at = new Date('2025-01-02T03:04:05.006Z');
    expect(formatLogLine(at, 'info', 'start: validate')).toBe('[2025-01-02T03:04:05.006Z] [INFO] start: validate\n');
    expect(formatLogLine(at, 'DEBUG', 'user plan', { userId: 'u-1', orderIds: ['o-1'] })).toBe('[2025-01-02T03:04:05.006Z] [DEBUG] user plan {"userId":"u-1","orderIds":["o-1"]}\n');
    expect(formatLogLine(at, 'ERROR', 'Error: boom\n    at a (x.ts:1)\n    at b (y.ts:2)')).toBe('[2025-01-02T03:04:05.006Z] [ERROR] Error: boom | at a (x.ts:1) | at b (y.ts:2)\n');
  });

  test('LOG_FILE: unset is logs/payment-sync.log, set moves it, set but empty turns it off', () => {
    expect(DEFAULT_LOG_FILE).toBe('logs/payment-sync.log');
    expect(logFilePath(undefined)).toBe('logs/payment-sync.log');
    expect(logFilePath('/var/log/payment-sync.log')).toBe('/var/log/payment-sync.log');
    expect(logFilePath('')).toBeUndefined();
    expect(logFilePath('  ')).toBeUndefined();
    const off = openLogFile(undefined);
    off.write('INFO', 'nowhere');
    expect(off.path).toBeUndefined();
  });

  test('appends across processes\' opens, creating its folder; stage ends are logged once with their count', () => {
    const path = join(tempDir(), 'nested', 'deeper', 'payment-sync.log');
    const first = openLogFile(path, () => new Date('2025-01-01T00:00:00.000Z'));
    first.write('INFO', 'first run');
    first.close();
    const second = openLogFile(path);
    const stages = stageLog(second);
    stages.update({ stage: 'snapshot', done: 10 });
    stages.update({ stage: 'snapshot', done: 568 });
    stages.update({ stage: 'plan', done: 200 });
    stages.done();
    stages.done();
    second.write('WARN', 'second run');
    second.close();
    const lines = linesOf(path);
    expect(lines[0]).toBe('[2025-01-01T00:00:00.000Z] [INFO] first run');
    expect(lines.slice(1).map((line) => LINE.exec(line)?.[3])).toEqual([
      'stage snapshot done: 568 items of both tables read',
      'stage plan done: 200 users joined and planned',
      'second run',
    ]);
    for (const line of lines) expect(line).toMatch(LINE);
  });

  test('the command line writes logs/payment-sync.log under the working directory by default, LOG_FILE elsewhere, LOG_FILE= nowhere', async () => {
    const cwd = process.cwd();
    const here = tempDir();
    const moved = join(tempDir(), 'elsewhere.log');
    const off = tempDir();
    try {
      process.chdir(here);
      expect((await runCli(['no-such-command'], {})).code).toBe(2);
      expect((await runCli(['no-such-command', '--json'], { LOG_FILE: moved })).code).toBe(2);
      process.chdir(off);
      expect((await runCli(['no-such-command'], { LOG_FILE: '' })).code).toBe(2);
    } finally {
      process.chdir(cwd);
    }
    const [usage, end] = linesOf(join(here, 'logs', 'payment-sync.log'));
    expect(usage).toMatch(/^\[[^\]]+\] \[ERROR\] usage: unknown command "no-such-command" \(arguments: no-such-command\)$/);
    expect(end).toMatch(/^\[[^\]]+\] \[ERROR\] end: exit 2 \(couldNotRun\) after \d+\.\d s$/);
    expect(linesOf(moved)[0]).toMatch(/\[ERROR\] usage: .*arguments: no-such-command --json/);
    expect(existsSync(join(off, 'logs'))).toBe(false);
  });

  test('a log file that cannot be written is said once and the run goes on with its own exit code', async () => {
    const blocker = join(tempDir(), 'a-file');
    writeFileSync(blocker, '');
    const run = await runCli(['no-such-command'], { LOG_FILE: join(blocker, 'payment-sync.log') });
    expect(run.code).toBe(2);
    expect(run.stderr.match(/cannot write the log file/g)).toHaveLength(1);
  });
});

describe('DEBUG on a real run: the points an operator needs, on the terminal (stderr) and in the log file', () => {
  let tables: TestTables;
  let env: Record<string, string>;
  beforeAll(async () => {
    tables = await startTestTables();
    await tables.putUser('u-1', { L: [{ S: 'c-9' }] });
    await tables.putPayment('o-1', { userId: 'u-1', courseId: 'c-1', status: 'settlement' });
    await tables.putPayment('o-2', { userId: 'u-1', courseId: 'c-9', status: 'settlement' });
    // A local endpoint needs no credentials: the client signs with its loopback pair.
    env = Object.fromEntries(Object.entries(tables.env).filter(([name]) => !name.startsWith('AWS_ACCESS_KEY') && !name.startsWith('AWS_SECRET')));
  });
  afterAll(() => tables.close());

  test.each(['true', '1', 'YES'])('DEBUG=%s: the configuration in effect and each user\'s plan with its order ids', async (value) => {
    const path = join(tempDir(), 'payment-sync.log');
    const run = await runCli(['validate', '--user', 'u-1', '--report-dir', tempDir()], { ...env, DEBUG: value, LOG_FILE: path });
    expect(run.code).toBe(0);
    const log = readFileSync(path, 'utf8');
    expect(log).toMatch(/\[INFO\] start: validate .*"users":\["u-1"\]/);
    expect(log).toMatch(/\[INFO\] configuration: payments lms-payments \(index userId-index\), users lms-users, .*log level DEBUG/);
    expect(log).toMatch(/\[DEBUG\] configuration in effect \{"config":\{"paymentsTable":"lms-payments".*"paidStatuses":\[/);
    const plan = /\[DEBUG\] user plan (\{.*\})$/m.exec(log);
    expect(JSON.parse(plan?.[1] ?? '{}')).toMatchObject({
      userId: 'u-1',
      status: 'would-fix',
      added: ['c-1'],
      issues: [expect.objectContaining({ kind: 'missing', courseId: 'c-1', orderIds: ['o-1'], fix: 'grant' })],
    });
    expect(log).toMatch(/\[INFO\] end: exit 0 \(completed\)/);
    // The terminal shows the same debug lines, on stderr: stdout stays the run's.
    expect(run.stderr).toMatch(/\[DEBUG\] user plan \{"runId":"[^"]+","userId":"u-1"/);
    expect(run.stdout).not.toMatch(/\[DEBUG\]/);
  });

  test.each(['*', 'express:*', 'false'])('DEBUG=%p: the run runs (exit 0), with no debug line anywhere', async (value) => {
    const path = join(tempDir(), 'payment-sync.log');
    const run = await runCli(['validate', '--user', 'u-1', '--report-dir', tempDir()], { ...env, DEBUG: value, LOG_FILE: path });
    expect(run.code).toBe(0);
    const log = readFileSync(path, 'utf8');
    expect(log).toMatch(/\[INFO\] start: validate/);
    expect(log).toMatch(/\[INFO\] end: exit 0 \(completed\)/);
    expect(log).not.toMatch(/\[DEBUG\]/);
    expect(run.stderr).not.toMatch(/\[DEBUG\]/);
  });

  test('a full fix with DEBUG=true logs each stage\'s counts: snapshot per table, plan per bucket, repair per batch', async () => {
    const path = join(tempDir(), 'payment-sync.log');
    const run = await runCli(['fix', '--report-dir', tempDir()], { ...env, DEBUG: 'true', LOG_FILE: path });
    expect(run.code).toBe(0);
    const lines = linesOf(path);
    for (const line of lines) expect(line).toMatch(LINE);
    const debug = (message: string): Record<string, unknown>[] =>
      lines.flatMap((line) => {
        const found = new RegExp(`\\[DEBUG\\] ${message} (\\{.*\\})$`).exec(line);
        return found ? [JSON.parse(found[1] as string) as Record<string, unknown>] : [];
      });
    expect(debug('snapshot: table done')).toEqual(
      expect.arrayContaining([expect.objectContaining({ table: 'payments', items: 2 }), expect.objectContaining({ table: 'users', items: 1 })]),
    );
    expect(debug('plan: bucket done')).toEqual([expect.objectContaining({ bucket: 0, users: 1, payments: 2, candidates: 1 })]);
    expect(debug('repair: batch done')).toEqual([expect.objectContaining({ users: 1, usersFixed: 1, coursesAdded: 1 })]);
    expect(debug('user plan')).toEqual([expect.objectContaining({ userId: 'u-1', status: 'fixed', added: ['c-1'] })]);
    const messages = lines.map((line) => LINE.exec(line)?.[3] ?? '');
    expect(messages).toEqual(expect.arrayContaining(['stage snapshot done: 3 items of both tables read', 'stage plan done: 1 users joined and planned', 'stage repair done: 1 candidate users confirmed']));
    expect(messages[messages.length - 1]).toMatch(/^end: exit 0 \(completed\)/);
  });
});
