import type { Environment } from 'aws-cdk-lib';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Node } from 'constructs';
import { z } from 'zod';
import { loadConfig, METRICS_NAMESPACE, SERVICE_NAME } from '../lambdas/core/config';
import { ISSUE_KINDS } from '../lambdas/core/rules/plan';

/**
 * The deploy configuration: one typed object read from CDK context, validated once at
 * synth, and the one place the Lambdas' environment contract (DESIGN.md) is derived from.
 *
 * Context layout (cdk.json, or `-c` on the command line):
 * - `stage`: `dev` (default) or `prod`;
 * - `paymentSync`: the settings below, with optional per-stage overlays in
 *   `paymentSync.stages.<stage>` (deep-merged over the base);
 * - `paymentSync.<path>=value`: a single setting overridden from the command line, e.g.
 *   `-c paymentSync.alarms.email=ops@example.com` (strings are coerced where a number,
 *   flag or list is expected).
 */

export const CONTEXT_KEY = 'paymentSync';
/** Powertools identity of every function, defined with the Lambdas' contract; alarms and the dashboard read metrics under it. */
export { METRICS_NAMESPACE, SERVICE_NAME };

export const STAGES = ['dev', 'prod'] as const;
export type Stage = (typeof STAGES)[number];

/** The Lambda loader's own defaults: reading them from it keeps deploy and runtime in step. */
const LAMBDA_DEFAULTS = loadConfig({ DYNAMODB_PAYMENTS_TABLE: 'defaults', DYNAMODB_USERS_TABLE: 'defaults' });

const STREAM_ARN = /^arn:(aws[a-z-]*):dynamodb:([a-z0-9-]+):(\d{12}):table\/([A-Za-z0-9_.-]{3,255})\/stream\/\S+$/;
const RATE = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/;
const CRON = /^cron\((\S+) (\S+) (\S+) (\S+) (\S+) (\S+)\)$/;
const RETENTION_DAYS = Object.values(RetentionDays).filter((value): value is number => typeof value === 'number');

const text = z.string({ error: 'must be a non-empty string' }).trim().min(1, 'must be a non-empty string');
const tableName = z
  .string({ error: 'is required in import mode' })
  .regex(/^[A-Za-z0-9_.-]{3,255}$/, 'must be a DynamoDB table name (3-255 characters of A-Z a-z 0-9 _ . -)');
const wholeNumber = (min: number, max: number, fallback: number) =>
  z.coerce
    .number({ error: `must be a whole number from ${min} to ${max}` })
    .refine((value) => Number.isInteger(value) && value >= min && value <= max, `must be a whole number from ${min} to ${max}`)
    .default(fallback);
const flag = (fallback: boolean) =>
  z
    .union([z.boolean(), z.enum(['true', 'false']).transform((value) => value === 'true')], { error: 'must be true or false' })
    .default(fallback);
/** A list from cdk.json (an array) or from `-c` (a comma-separated string). */
const list = z.union([z.array(z.string()), z.string().transform((value) => value.split(','))], {
  error: 'must be a list (or a comma-separated string)',
});
/** Status words, lower-cased like the Lambda does. */
const wordList = (fallback: readonly string[]) =>
  list
    .transform((words) => words.map((word) => word.trim().toLowerCase()).filter(Boolean))
    .refine((words) => words.length > 0, 'must list at least one word')
    .refine((words) => words.every((word) => !word.includes(',')), 'words must not contain commas')
    .default([...fallback]);
const scheduleExpression = (fallback: string) =>
  z
    .string()
    .trim()
    .refine((value) => RATE.test(value) || CRON.test(value), 'must be rate(N minutes|hours|days) or cron(min hour day month weekday year)')
    .default(fallback);

const importedTables = z.strictObject({
  mode: z.literal('import'),
  paymentsTableName: tableName,
  usersTableName: tableName,
  paymentsStreamArn: z
    .string({ error: 'is required in import mode' })
    .regex(STREAM_ARN, 'must be a DynamoDB stream ARN (arn:aws:dynamodb:REGION:ACCOUNT:table/NAME/stream/LABEL)'),
  paymentsUserIndex: text.default(LAMBDA_DEFAULTS.paymentsUserIndex),
});
const createdTables = z.strictObject({
  mode: z.literal('create'),
  paymentsUserIndex: text.default(LAMBDA_DEFAULTS.paymentsUserIndex),
});

const settingsSchema = z
  .strictObject({
    tables: z.discriminatedUnion('mode', [importedTables, createdTables], {
      error: 'must choose mode "import" (existing tables) or "create" (new tables, for a dev account)',
    }),
    attributes: z
      .strictObject({
        paymentId: text.default(LAMBDA_DEFAULTS.payment.id),
        paymentUser: text.default(LAMBDA_DEFAULTS.payment.user),
        paymentCourse: text.default(LAMBDA_DEFAULTS.payment.course),
        paymentStatus: text.default(LAMBDA_DEFAULTS.payment.status),
        paymentFraud: text.default(LAMBDA_DEFAULTS.payment.fraud),
        paymentUpdated: text.default(LAMBDA_DEFAULTS.payment.updated),
        userKey: text.default(LAMBDA_DEFAULTS.user.key),
        userCourses: text.default(LAMBDA_DEFAULTS.user.courses),
      })
      .prefault({}),
    statuses: z
      .strictObject({
        paid: wordList(LAMBDA_DEFAULTS.paidStatuses),
        revoked: wordList(LAMBDA_DEFAULTS.revokedStatuses),
      })
      .prefault({}),
    sync: z
      .strictObject({
        revokeOnRefund: flag(LAMBDA_DEFAULTS.revokeOnRefund),
        coursesFormat: z.enum(['auto', 'ids', 'objects']).default(LAMBDA_DEFAULTS.coursesFormat),
        graceMinutes: wholeNumber(0, 1440, LAMBDA_DEFAULTS.graceMinutes),
        maxUserChangesPerRun: wholeNumber(1, 10_000_000, LAMBDA_DEFAULTS.maxUserChangesPerRun),
        maxRevocationsPerRun: wholeNumber(0, 10_000_000, LAMBDA_DEFAULTS.maxRevocationsPerRun),
        scanSegments: wholeNumber(1, 1000, LAMBDA_DEFAULTS.scanSegments),
        /** Read capacity units a second a scan snapshot may use; 0 = unlimited. */
        scanReadUnitsPerSecond: wholeNumber(0, 10_000_000, LAMBDA_DEFAULTS.scanReadUnitsPerSecond ?? 0),
        joinBuckets: wholeNumber(1, 1024, LAMBDA_DEFAULTS.joinBuckets),
        /** Buckets joined at once, each in its own function. */
        joinConcurrency: wholeNumber(1, 1000, 10),
        /** Candidate files repaired at once (1 while a cap is in force). */
        repairConcurrency: wholeNumber(1, 1000, LAMBDA_DEFAULTS.repairConcurrency),
        /** `export` (no table reads; needs point-in-time recovery) or `scan`; default: export for created tables, scan for imported ones. */
        snapshotMode: z.enum(['scan', 'export']).optional(),
      })
      .prefault({}),
    reports: z
      .strictObject({
        /** Run folders (snapshot, report, change log) expire from the bucket after this many days. */
        retentionDays: wholeNumber(1, 3650, 90),
      })
      .prefault({}),
    schedules: z
      .strictObject({
        timeZone: z
          .string()
          .refine(isTimeZone, 'must be an IANA time zone such as Asia/Jakarta')
          .default('Asia/Jakarta'),
        sync: scheduleExpression('cron(0 * * * ? *)'),
        validate: scheduleExpression('cron(30 2 * * ? *)'),
        fullFix: scheduleExpression('cron(0 3 ? * SUN *)'),
        health: scheduleExpression('rate(15 minutes)'),
      })
      .prefault({}),
    alarms: z
      .strictObject({
        email: z
          .string()
          .trim()
          .refine((value) => value === '' || /^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(value), 'must be an e-mail address (or empty)')
          .default(''),
        /** Issues of these kinds found by the runs of one sync period, above which the alarm fires. */
        issuesThreshold: wholeNumber(0, 10_000_000, 10),
        issueKinds: list
          .transform((kinds) => kinds.map((kind) => kind.trim()))
          .pipe(z.array(z.enum(ISSUE_KINDS)).min(1, 'must name at least one issue kind'))
          .default(['missing', 'duplicate']),
        iteratorAgeMinutes: wholeNumber(1, 1440, 5),
      })
      .prefault({}),
    logging: z
      .strictObject({
        level: z.enum(['DEBUG', 'INFO', 'WARN', 'ERROR']).default(LAMBDA_DEFAULTS.logLevel),
        /** Default by stage: the logs are the audit trail of every change (before and after lists). */
        retentionDays: z.coerce
          .number()
          .refine((days) => RETENTION_DAYS.includes(days), `must be one of ${RETENTION_DAYS.join(', ')}`)
          .optional(),
      })
      .prefault({}),
  })
  .superRefine((settings, context) => {
    const overlap = settings.statuses.paid.filter((status) => settings.statuses.revoked.includes(status));
    if (overlap.length > 0) {
      context.addIssue({ code: 'custom', path: ['statuses'], message: `paid and revoked share ${overlap.join(', ')}` });
    }
    const tables = settings.tables;
    if (tables.mode === 'import') {
      const streamTable = STREAM_ARN.exec(tables.paymentsStreamArn)?.[4];
      if (streamTable && streamTable !== tables.paymentsTableName) {
        context.addIssue({
          code: 'custom',
          path: ['tables', 'paymentsStreamArn'],
          message: `is the stream of table "${streamTable}", not of paymentsTableName "${tables.paymentsTableName}"`,
        });
      }
    }
    for (const job of ['sync', 'health'] as const) {
      if (scheduleIntervalMinutes(settings.schedules[job]) === undefined) {
        context.addIssue({
          code: 'custom',
          path: ['schedules', job],
          message: 'must repeat at a fixed interval (a rate, or an hourly or daily cron) so its alarm knows the period',
        });
      }
    }
  });

type Settings = z.output<typeof settingsSchema>;

export type DeployConfig = Omit<Settings, 'logging'> & {
  readonly stage: Stage;
  readonly logging: { readonly level: Settings['logging']['level']; readonly retentionDays: RetentionDays };
};

/** Every problem of the configuration at once, so the operator fixes cdk.json in one pass. */
export class DeployConfigError extends Error {
  override readonly name = 'DeployConfigError';
  constructor(readonly problems: readonly string[]) {
    super(`Invalid payment-sync deploy configuration (CDK context):\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
  }
}

/** Reads and validates the configuration of the stage selected by the `stage` context key. */
export function loadDeployConfig(node: Node): DeployConfig {
  const stage = String(node.tryGetContext('stage') ?? 'dev');
  const raw: unknown = node.tryGetContext(CONTEXT_KEY) ?? {};
  const problems: string[] = [];
  if (!(STAGES as readonly string[]).includes(stage)) problems.push(`stage must be one of ${STAGES.join(', ')} (got "${stage}")`);
  if (!isPlainObject(raw)) {
    throw new DeployConfigError([...problems, `${CONTEXT_KEY} must be an object`]);
  }
  const { stages = {}, ...base } = raw;
  const overlay = isPlainObject(stages) ? stages[stage] : undefined;
  const merged = deepMerge(base, isPlainObject(overlay) ? overlay : {});
  applyCommandLineOverrides(merged, node.getAllContext() as Record<string, unknown>);

  const parsed = settingsSchema.safeParse(merged);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const where = [CONTEXT_KEY, ...issue.path.map(String)].join('.');
      problems.push(`${where}: ${issue.message}`);
    }
  }
  if (problems.length > 0 || !parsed.success) throw new DeployConfigError(problems);
  const settings = parsed.data;
  return {
    ...settings,
    stage: stage as Stage,
    logging: {
      level: settings.logging.level,
      retentionDays: settings.logging.retentionDays ?? (stage === 'prod' ? RetentionDays.ONE_YEAR : RetentionDays.ONE_MONTH),
    },
  };
}

export interface TableNames {
  readonly payments: string;
  readonly users: string;
}

/** The environment contract of DESIGN.md, for every function. AWS_REGION is set by Lambda itself. */
export function lambdaEnvironment(config: DeployConfig, tables: TableNames): Record<string, string> {
  const { attributes, statuses, sync } = config;
  const environment: Record<string, string> = {
    DYNAMODB_PAYMENTS_TABLE: tables.payments,
    DYNAMODB_USERS_TABLE: tables.users,
    PAYMENTS_USER_INDEX: config.tables.paymentsUserIndex,
    PAYMENT_ID_ATTR: attributes.paymentId,
    PAYMENT_USER_ATTR: attributes.paymentUser,
    PAYMENT_COURSE_ATTR: attributes.paymentCourse,
    PAYMENT_STATUS_ATTR: attributes.paymentStatus,
    PAYMENT_FRAUD_ATTR: attributes.paymentFraud,
    PAYMENT_UPDATED_ATTR: attributes.paymentUpdated,
    USER_KEY_ATTR: attributes.userKey,
    USER_COURSES_ATTR: attributes.userCourses,
    PURCHASED_COURSES_FORMAT: sync.coursesFormat,
    PAID_STATUSES: statuses.paid.join(','),
    REVOKED_STATUSES: statuses.revoked.join(','),
    REVOKE_ON_REFUND: String(sync.revokeOnRefund),
    GRACE_MINUTES: String(sync.graceMinutes),
    MAX_USER_CHANGES_PER_RUN: String(sync.maxUserChangesPerRun),
    MAX_REVOCATIONS_PER_RUN: String(sync.maxRevocationsPerRun),
    SCAN_SEGMENTS: String(sync.scanSegments),
    LOG_LEVEL: config.logging.level,
    POWERTOOLS_SERVICE_NAME: SERVICE_NAME,
    POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
  };
  assertLambdaAccepts(environment);
  return environment;
}

/**
 * Share of a full-run function's memory given to DuckDB's join (its `memory_limit`; past it,
 * the join spills to /tmp). The rest is Node's: the handler, the SDK, a chunk of joined rows
 * and the repair batches, plus DuckDB's own allocations outside its buffer manager.
 */
export const JOIN_MEMORY_SHARE = 0.6;

/** A full run's settings; the join task also sizes DuckDB to its memory (`joinMemorySizeMb`, MB). */
export function fullRunEnvironment(config: DeployConfig, tables: TableNames, joinMemorySizeMb?: number): Record<string, string> {
  const environment = {
    ...lambdaEnvironment(config, tables),
    // In whole hundreds of MB, rounded down: 3008 MB gives 1800.
    ...(joinMemorySizeMb === undefined ? {} : { JOIN_MEMORY_MB: String(Math.floor((joinMemorySizeMb * JOIN_MEMORY_SHARE) / 100) * 100) }),
    JOIN_BUCKETS: String(config.sync.joinBuckets),
    SCAN_READ_UNITS_PER_SECOND: String(config.sync.scanReadUnitsPerSecond),
  };
  assertLambdaAccepts(environment);
  return environment;
}

/** Where the full runs keep their records and files. */
export interface RunResources {
  readonly runsTable: string;
  readonly reportsBucket: string;
}

/** The snapshot mode in force: configured, or export where the stack turned point-in-time recovery on. */
export function snapshotModeOf(config: DeployConfig): 'scan' | 'export' {
  return config.sync.snapshotMode ?? (config.tables.mode === 'create' ? 'export' : 'scan');
}

/** The state machine's tasks: the full-run environment plus the run table, the bucket and the run's shape. */
export function runTaskEnvironment(config: DeployConfig, tables: TableNames, resources: RunResources, joinMemorySizeMb?: number): Record<string, string> {
  const environment = {
    ...fullRunEnvironment(config, tables, joinMemorySizeMb),
    RUNS_TABLE: resources.runsTable,
    REPORTS_BUCKET: resources.reportsBucket,
    SNAPSHOT_MODE: snapshotModeOf(config),
    JOIN_CONCURRENCY: String(config.sync.joinConcurrency),
    REPAIR_CONCURRENCY: String(config.sync.repairConcurrency),
  };
  assertLambdaAccepts(environment);
  return environment;
}

/** The health function also inspects the stream's failure queue. */
export function healthEnvironment(config: DeployConfig, tables: TableNames, failureQueueUrl: string, runsTable: string): Record<string, string> {
  const syncInterval = scheduleIntervalMinutes(config.schedules.sync);
  return {
    ...lambdaEnvironment(config, tables),
    FAILURE_QUEUE_URL: failureQueueUrl,
    // The run records it reads, and whether point-in-time recovery is required (export mode).
    RUNS_TABLE: runsTable,
    SNAPSHOT_MODE: snapshotModeOf(config),
    ...(syncInterval === undefined ? {} : { SYNC_INTERVAL_MINUTES: String(syncInterval) }),
  };
}

/**
 * Where the stack goes: with imported tables, the account and region of their stream (a
 * deploy with other credentials then fails early); otherwise the CLI's current account.
 */
export function deploymentEnvironment(config: DeployConfig): Environment {
  if (config.tables.mode === 'import') {
    const [, , region, account] = STREAM_ARN.exec(config.tables.paymentsStreamArn) ?? [];
    return { account, region };
  }
  return { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION };
}

/**
 * Minutes between two runs of a schedule, or undefined when it has no fixed interval.
 * Understands rates and the hourly (`cron(M * * * ? *)`, every N hours as `cron(M 0/N * * ? *)`)
 * and daily (`cron(M H * * ? *)`) crons; the alarms use it as their period.
 */
export function scheduleIntervalMinutes(expression: string): number | undefined {
  const rate = RATE.exec(expression);
  if (rate) {
    const unit = rate[2]!.replace(/s$/, '');
    return Number(rate[1]) * (unit === 'minute' ? 1 : unit === 'hour' ? 60 : 1440);
  }
  const cron = CRON.exec(expression);
  if (!cron) return undefined;
  const [, minute, hour, dayOfMonth, month, dayOfWeek, year] = cron as unknown as string[];
  const everyDay = ['*', '?'].includes(dayOfMonth!) && month === '*' && ['*', '?'].includes(dayOfWeek!) && year === '*';
  if (!everyDay || !/^\d+$/.test(minute!)) return undefined;
  if (hour === '*') return 60;
  const everyNHours = /^(?:\*|0)\/(\d+)$/.exec(hour!);
  if (everyNHours && 24 % Number(everyNHours[1]) === 0) return Number(everyNHours[1]) * 60;
  return /^\d+$/.test(hour!) ? 1440 : undefined;
}

function assertLambdaAccepts(environment: Record<string, string>): void {
  try {
    loadConfig(environment);
  } catch (error) {
    const problems = (error as { problems?: readonly string[] }).problems ?? [String(error)];
    throw new DeployConfigError(problems.map((problem) => `the Lambda configuration loader rejects the derived environment: ${problem}`));
  }
}

function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function deepMerge(base: Record<string, unknown>, overlay: Record<string, unknown>): Record<string, unknown> {
  const merged: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(overlay)) {
    const current = merged[key];
    merged[key] = isPlainObject(current) && isPlainObject(value) ? deepMerge(current, value) : value;
  }
  return merged;
}

/** `-c paymentSync.alarms.email=x` sets `alarms.email` of the merged settings. */
function applyCommandLineOverrides(settings: Record<string, unknown>, context: Record<string, unknown>): void {
  const prefix = `${CONTEXT_KEY}.`;
  for (const [key, value] of Object.entries(context)) {
    if (!key.startsWith(prefix)) continue;
    const path = key.slice(prefix.length).split('.');
    const leaf = path.pop()!;
    let target = settings;
    for (const segment of path) {
      if (!isPlainObject(target[segment])) target[segment] = {};
      target = target[segment] as Record<string, unknown>;
    }
    target[leaf] = value;
  }
}
