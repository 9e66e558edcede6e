import { ConfigError } from './errors';

/** How new entries are written when a list has no entries to copy the format from. */
export type CoursesFormat = 'auto' | 'ids' | 'objects';

export interface PaymentAttributes {
  readonly id: string;
  readonly user: string;
  readonly course: string;
  readonly status: string;
  readonly fraud: string;
  readonly updated: string;
}

export interface UserAttributes {
  readonly key: string;
  readonly courses: string;
}

export interface SyncConfig {
  readonly paymentsTable: string;
  readonly usersTable: string;
  readonly endpoint: string | undefined;
  readonly region: string;
  readonly paymentsUserIndex: string;
  readonly payment: PaymentAttributes;
  readonly user: UserAttributes;
  readonly coursesFormat: CoursesFormat;
  /** Lower-case status words; `capture` is decided by the fraud status, not by these lists. */
  readonly paidStatuses: readonly string[];
  readonly revokedStatuses: readonly string[];
  readonly revokeOnRefund: boolean;
  /** Payments changed this recently are still in flight on the stream: full runs leave them alone. */
  readonly graceMinutes: number;
  /** Blast-radius limits of one scheduled run. */
  readonly maxUserChangesPerRun: number;
  readonly maxRevocationsPerRun: number;
  readonly scanSegments: number;
  /** Full runs: read capacity units per second a scan snapshot may use; undefined = unlimited. */
  readonly scanReadUnitsPerSecond: number | undefined;
  /** Full runs: buckets the join is split into (by a hash of the user id), each a unit of work. */
  readonly joinBuckets: number;
  /** Full runs: DuckDB's memory limit for one bucket's join, in MiB; past it, it spills to disk. */
  readonly joinMemoryMb: number;
  /** Full runs: how the snapshot is taken; `export` needs point-in-time recovery and runs on AWS only. */
  readonly snapshotMode: SnapshotMode;
  /** Full runs: candidate files repaired at once (the repair Map's concurrency, the run's write rate). */
  readonly repairConcurrency: number;
  /** Hourly syncs read what changed since the last completed sync's snapshot, less this overlap (minutes). */
  readonly incrementalOverlapMinutes: number;
  /** Full runs: buckets joined at once (each a task with its own memory: 1 on one machine, more on Lambda). */
  readonly joinConcurrency: number;
  /** Run records, the run lock and the hold. */
  readonly runsTable: string;
  /** Where runs keep their snapshot and reports on AWS; undefined = a local folder. */
  readonly reportsBucket: string | undefined;
  /** The state machines the entry points start (set by the stack; unset locally). */
  readonly syncStateMachineArn: string | undefined;
  readonly validationStateMachineArn: string | undefined;
  /** Health: the stream's failure queue (FAILURE_QUEUE_URL, set by the stack); unset = no queue-depth check. */
  readonly failureQueueUrl?: string;
  /** Health: minutes between scheduled syncs (SYNC_INTERVAL_MINUTES, set by the stack); unset = the sync's age is reported, not judged. */
  readonly syncIntervalMinutes?: number;
  readonly logLevel: LogLevel;
  /** Powertools identity: the logger's service name and the metrics' namespace. */
  readonly observability: ObservabilityNames;
  /**
   * How the client signs for an endpoint on this machine (DYNAMODB_ENDPOINT on 127.*, localhost,
   * [::1]): the environment's AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY pair (DynamoDB Local keeps
   * tables per key id), else the local pair. Undefined = the SDK's credential chain: any other
   * endpoint (AWS), or AWS_PROFILE set with no pair.
   */
  readonly loopbackCredentials: StaticCredentials | undefined;
}

export interface StaticCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

/** Credentials a local DynamoDB-compatible server accepts (dynalite and DynamoDB Local check no signature). */
export const LOCAL_CREDENTIALS: StaticCredentials = { accessKeyId: 'local', secretAccessKey: 'local' };

const LOOPBACK_ENDPOINT = /^https?:\/\/(127\.|localhost|\[::1\])/;

function loopbackCredentials(endpoint: string | undefined, env: Env): StaticCredentials | undefined {
  if (endpoint === undefined || !LOOPBACK_ENDPOINT.test(endpoint)) return undefined;
  const accessKeyId = env.AWS_ACCESS_KEY_ID?.trim();
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY?.trim();
  const sessionToken = env.AWS_SESSION_TOKEN?.trim();
  if (accessKeyId && secretAccessKey) return { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) };
  return accessKeyId || env.AWS_PROFILE?.trim() ? undefined : LOCAL_CREDENTIALS;
}

/** Powertools identity of every function; the stack's alarms and dashboard read metrics under it. */
export const SERVICE_NAME = 'payment-sync';
export const METRICS_NAMESPACE = 'PaymentSync';

export interface ObservabilityNames {
  readonly serviceName: string;
  readonly metricsNamespace: string;
}

export interface ObservabilityConfig extends ObservabilityNames {
  readonly logLevel: LogLevel;
}

export const SNAPSHOT_MODES = ['scan', 'export'] as const;
export type SnapshotMode = (typeof SNAPSHOT_MODES)[number];
/** The run table's name when RUNS_TABLE is unset (the embedded default creates it). */
export const DEFAULT_RUNS_TABLE = 'payment-sync-runs';

export const DEFAULT_PAID_STATUSES = ['settlement', 'success', 'paid', 'completed'] as const;
export const DEFAULT_REVOKED_STATUSES = ['refund', 'chargeback'] as const;

type Env = Readonly<Record<string, string | undefined>>;

export const LOG_LEVELS = ['DEBUG', 'INFO', 'WARN', 'ERROR'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const TRUE_WORDS = ['true', '1', 'yes'];
const FALSE_WORDS = ['false', '0', 'no'];

function namedLogLevel(env: Env): LogLevel | undefined {
  const level = (env.LOG_LEVEL?.trim() || 'INFO').toUpperCase();
  return LOG_LEVELS.find((candidate) => candidate === level);
}

/**
 * The one place DEBUG is read. `DEBUG=true` (the seed's switch; also `1`, `yes`, any case) wins
 * over `LOG_LEVEL`; other DEBUG values are left to other tools. Undefined when LOG_LEVEL is not a level.
 */
export function logLevelFrom(env: Env): LogLevel | undefined {
  if (TRUE_WORDS.includes(env.DEBUG?.trim().toLowerCase() ?? '')) return 'DEBUG';
  return namedLogLevel(env);
}

/**
 * What the logger and metrics need. They are created when their module loads, before any
 * configuration is validated, so this never fails: a LOG_LEVEL that names no level logs at INFO
 * here and is one of loadConfig's problems.
 */
export function loadObservabilityConfig(env: Env = process.env): ObservabilityConfig {
  return { ...observabilityNames(env), logLevel: logLevelFrom(env) ?? 'INFO' };
}

function observabilityNames(env: Env): ObservabilityNames {
  return {
    serviceName: env.POWERTOOLS_SERVICE_NAME?.trim() || SERVICE_NAME,
    metricsNamespace: env.POWERTOOLS_METRICS_NAMESPACE?.trim() || METRICS_NAMESPACE,
  };
}

/**
 * Parses the environment contract of DESIGN.md. Every problem is collected so that one
 * error names all of them: an operator fixes the deployment once, not once per variable.
 */
export function loadConfig(env: Env = process.env): SyncConfig {
  const problems: string[] = [];
  const text = (name: string, fallback?: string): string => {
    const value = env[name]?.trim();
    if (value) return value;
    if (fallback === undefined) {
      problems.push(`${name} is required`);
      return '';
    }
    return fallback;
  };
  const oneOf = <T extends string>(name: string, allowed: readonly T[], fallback: T): T => {
    const value = (env[name]?.trim() || fallback).toLowerCase();
    const match = allowed.find((candidate) => candidate.toLowerCase() === value);
    if (!match) problems.push(`${name} must be one of ${allowed.join(', ')} (got "${env[name]}")`);
    return match ?? fallback;
  };
  const bool = (name: string, fallback: boolean): boolean => {
    const value = env[name]?.trim().toLowerCase();
    if (!value) return fallback;
    if (TRUE_WORDS.includes(value)) return true;
    if (FALSE_WORDS.includes(value)) return false;
    problems.push(`${name} must be true or false (got "${env[name]}")`);
    return fallback;
  };
  const int = (name: string, fallback: number, min: number, max: number): number => {
    const raw = env[name]?.trim();
    if (!raw) return fallback;
    // Decimal digits only: Number() would also read 0x10, 1e2 and 0b11.
    const value = /^\d+$/.test(raw) ? Number(raw) : NaN;
    if (!Number.isInteger(value) || value < min || value > max) {
      problems.push(`${name} must be a whole number from ${min} to ${max} (got "${raw}")`);
      return fallback;
    }
    return value;
  };
  const list = (name: string, fallback: readonly string[]): string[] => {
    const raw = env[name];
    if (raw === undefined || raw.trim() === '') return [...fallback];
    const words = raw.split(',').map((word) => word.trim().toLowerCase()).filter(Boolean);
    if (words.length === 0) problems.push(`${name} must list at least one status`);
    return words;
  };
  const endpoint = env.DYNAMODB_ENDPOINT?.trim() || undefined;
  if (endpoint && !/^https?:\/\/[^\s]+$/.test(endpoint)) {
    problems.push(`DYNAMODB_ENDPOINT must be an http(s) URL (got "${endpoint}")`);
  }
  const failureQueueUrl = env.FAILURE_QUEUE_URL?.trim();
  if (failureQueueUrl && !/^https?:\/\/[^\s]+$/.test(failureQueueUrl)) {
    problems.push(`FAILURE_QUEUE_URL must be an SQS queue URL, http(s) (got "${failureQueueUrl}")`);
  }

  // DEBUG is read by logLevelFrom only: any value but true/1/yes (`*`, `express:*`, `false`) is
  // another tool's (the `debug` package's namespaces), so it is never a problem here.
  const logLevel = logLevelFrom(env);
  if (!namedLogLevel(env)) problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')} (got "${env.LOG_LEVEL}")`);
  const config: SyncConfig = {
    paymentsTable: text('DYNAMODB_PAYMENTS_TABLE'),
    usersTable: text('DYNAMODB_USERS_TABLE'),
    endpoint,
    region: text('AWS_REGION', env.AMPLIFY_AWS_REGION?.trim() || 'ap-southeast-1'),
    paymentsUserIndex: text('PAYMENTS_USER_INDEX', 'userId-index'),
    payment: {
      id: text('PAYMENT_ID_ATTR', 'orderId'),
      user: text('PAYMENT_USER_ATTR', 'userId'),
      course: text('PAYMENT_COURSE_ATTR', 'courseId'),
      status: text('PAYMENT_STATUS_ATTR', 'status'),
      fraud: text('PAYMENT_FRAUD_ATTR', 'fraudStatus'),
      updated: text('PAYMENT_UPDATED_ATTR', 'updatedAt'),
    },
    user: {
      key: text('USER_KEY_ATTR', 'userId'),
      courses: text('USER_COURSES_ATTR', 'purchasedCourses'),
    },
    coursesFormat: oneOf('PURCHASED_COURSES_FORMAT', ['auto', 'ids', 'objects'] as const, 'auto'),
    paidStatuses: list('PAID_STATUSES', DEFAULT_PAID_STATUSES),
    revokedStatuses: list('REVOKED_STATUSES', DEFAULT_REVOKED_STATUSES),
    revokeOnRefund: bool('REVOKE_ON_REFUND', false),
    graceMinutes: int('GRACE_MINUTES', 5, 0, 1440),
    maxUserChangesPerRun: int('MAX_USER_CHANGES_PER_RUN', 1000, 1, 10_000_000),
    maxRevocationsPerRun: int('MAX_REVOCATIONS_PER_RUN', 100, 0, 10_000_000),
    scanSegments: int('SCAN_SEGMENTS', 4, 1, 1000),
    scanReadUnitsPerSecond: int('SCAN_READ_UNITS_PER_SECOND', 0, 0, 10_000_000) || undefined,
    joinBuckets: int('JOIN_BUCKETS', 1, 1, 1024),
    joinMemoryMb: int('JOIN_MEMORY_MB', 1024, 128, 1_048_576),
    snapshotMode: oneOf('SNAPSHOT_MODE', SNAPSHOT_MODES, 'scan'),
    repairConcurrency: int('REPAIR_CONCURRENCY', 2, 1, 1000),
    joinConcurrency: int('JOIN_CONCURRENCY', 1, 1, 1000),
    incrementalOverlapMinutes: int('INCREMENTAL_OVERLAP_MINUTES', 15, 15, 720),
    runsTable: text('RUNS_TABLE', DEFAULT_RUNS_TABLE),
    reportsBucket: env.REPORTS_BUCKET?.trim() || undefined,
    syncStateMachineArn: env.SYNC_STATE_MACHINE_ARN?.trim() || undefined,
    validationStateMachineArn: env.VALIDATION_STATE_MACHINE_ARN?.trim() || undefined,
    failureQueueUrl: failureQueueUrl || undefined,
    // A week at most: the stack derives it from the sync schedule (a rate, an hourly or a daily cron).
    syncIntervalMinutes: env.SYNC_INTERVAL_MINUTES?.trim() ? int('SYNC_INTERVAL_MINUTES', 0, 1, 10_080) : undefined,
    observability: observabilityNames(env),
    loopbackCredentials: loopbackCredentials(endpoint, env),
    logLevel: logLevel ?? 'INFO',
  };
  const overlap = config.paidStatuses.filter((status) => config.revokedStatuses.includes(status));
  if (overlap.length > 0) {
    problems.push(`PAID_STATUSES and REVOKED_STATUSES share ${overlap.join(', ')}`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}
