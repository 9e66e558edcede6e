import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { SyncConfig } from '../lambdas/core/config';
import { dynamoLocation } from '../lambdas/core/store/table-checks';

/** Where the command line appends its log when LOG_FILE is unset, relative to the working directory (the seed's place). */
export const DEFAULT_LOG_FILE = 'logs/payment-sync.log';

/** LOG_FILE: unset = `logs/payment-sync.log`; set but empty = no log file; otherwise that path. */
export function logFilePath(value: string | undefined): string | undefined {
  if (value === undefined) return DEFAULT_LOG_FILE;
  return value.trim() === '' ? undefined : value.trim();
}

/**
 * One event as one line, in the seed's format: `[timestamp] [LEVEL] message`, the ISO time and
 * the upper-case level, then the event's fields as JSON when it has any. A message of several
 * lines (a stack) is joined with ` | ` so that one event stays one line for grep and logrotate.
 */
export function formatLogLine(at: Date, level: string, message: string, fields?: Readonly<Record<string, unknown>>): string {
  const text = message.trim().replace(/\s*\r?\n\s*/g, ' | ');
  const extra = fields && Object.keys(fields).length > 0 ? ` ${JSON.stringify(fields)}` : '';
  return `[${at.toISOString()}] [${level.toUpperCase()}] ${text}${extra}\n`;
}

export interface LogFile {
  /** The absolute path written to, or undefined when the log file is off. */
  readonly path: string | undefined;
  /** `level`: DEBUG, INFO, WARN, ERROR (the logger's own words); written upper-case. */
  write(level: string, message: string, fields?: Readonly<Record<string, unknown>>): void;
  close(): void;
}

/**
 * Appends to the command line's log file, one line per event, written as it happens (a run
 * killed midway leaves every line before it). Several processes may append to one file: each
 * line is one append. A file that cannot be written is said once on stderr and the run goes
 * on without it: the log is for reading afterwards, never a reason for a run to fail.
 */
export function openLogFile(path: string | undefined, now: () => Date = () => new Date()): LogFile {
  if (path === undefined) return { path: undefined, write: () => undefined, close: () => undefined };
  const absolute = resolve(path);
  let fd: number | undefined;
  let broken = false;
  const fail = (error: unknown): void => {
    broken = true;
    process.stderr.write(`payment-sync: cannot write the log file ${absolute} (${(error as Error).message}); going on without it (LOG_FILE moves it, LOG_FILE= turns it off)\n`);
  };
  return {
    path: absolute,
    write(level, message, fields) {
      if (broken) return;
      try {
        if (fd === undefined) {
          mkdirSync(dirname(absolute), { recursive: true });
          fd = openSync(absolute, 'a');
        }
        writeSync(fd, formatLogLine(now(), level, message, fields));
      } catch (error) {
        fail(error);
      }
    },
    close() {
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
    },
  };
}

/** What the log needs of a full run's progress updates (the progress display gets the same ones). */
export interface StageProgress {
  readonly stage: string;
  readonly done: number;
}

const STAGE_UNITS: Readonly<Record<string, string>> = { snapshot: 'items of both tables read', plan: 'users joined and planned', repair: 'candidate users confirmed' };

/** Follows a full run's progress and logs each stage's end with its count, once: when the next stage starts, and at the end. */
export function stageLog(log: LogFile): { update(progress: StageProgress): void; done(): void } {
  let last: StageProgress | undefined;
  const end = (): void => {
    if (last) log.write('INFO', `stage ${last.stage} done: ${last.done} ${STAGE_UNITS[last.stage] ?? 'items'}`);
    last = undefined;
  };
  return {
    update(progress) {
      if (last && last.stage !== progress.stage) end();
      last = progress;
    },
    done: end,
  };
}

/** The configuration in a line for the log: what a run reads and where (DEBUG logs all of it). No secrets: the configuration holds none. */
export function configurationLine(config: SyncConfig): string {
  return [
    `payments ${config.paymentsTable} (index ${config.paymentsUserIndex})`,
    `users ${config.usersTable}`,
    `runs ${config.runsTable}`,
    `at ${dynamoLocation(config)}`,
    `reports ${config.reportsBucket ? `s3://${config.reportsBucket}` : 'local folder'}`,
    `revoke on refund ${config.revokeOnRefund}`,
    `log level ${config.logLevel}`,
  ].join(', ');
}

const SECRET_KEY = /credential|secret|password|token/i;

/**
 * The configuration for the DEBUG line "configuration in effect": all of it (tables, endpoint,
 * region, index, attribute names, statuses, caps) except what could be a secret (credentials a
 * loopback endpoint signs with): those say only whether they are set.
 */
export function configurationInEffect(config: SyncConfig): Record<string, unknown> {
  return JSON.parse(JSON.stringify(config, (key, value: unknown) => (key && SECRET_KEY.test(key) && value !== undefined && typeof value !== 'boolean' ? '(set, not shown)' : value))) as Record<string, unknown>;
}
