import { CloudWatchClient, GetMetricStatisticsCommand } from '@aws-sdk/client-cloudwatch';
import { DescribeContinuousBackupsCommand, type TableDescription } from '@aws-sdk/client-dynamodb';
import { GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { SyncConfig } from '../config';
import type { SyncDeps } from '../deps';
import type { RunMode } from '../report/report';
import { isLockHeld, RunRecords, type RunHold, type RunLock, type RunRecord } from '../runs/run-records';
import { describeTable, dynamoLocation, findIndex } from '../store/table-checks';
import type { STREAM_METRICS } from '../../stream/stream-batch';

export type CheckStatus = 'pass' | 'warn' | 'fail';
export type HealthStatus = 'healthy' | 'degraded' | 'unhealthy';

export interface HealthCheck {
  readonly name: string;
  readonly status: CheckStatus;
  readonly detail: string;
}

export interface HealthReport {
  readonly status: HealthStatus;
  readonly checks: readonly HealthCheck[];
}

/** Reads a queue's depth; a port so the job needs no SQS client where there is no queue. */
export type QueueDepthReader = () => Promise<number>;

/**
 * The stream's lag over the last `minutes`: the largest time, in ms, between a payment change and
 * the stream function applying it (its `ProcessingLagMs`, the iterator age as the function sees
 * it), or undefined when no record was processed. A port over CloudWatch metrics.
 */
export type StreamLagReader = (minutes: number) => Promise<number | undefined>;

/** What health reads outside DynamoDB, each only where it exists. */
export interface HealthReaders {
  /** Only when a failure queue is configured (FAILURE_QUEUE_URL). */
  readonly failureQueueDepth?: QueueDepthReader | undefined;
  /** Only on AWS: CloudWatch has the stream function's metrics. */
  readonly streamLag?: StreamLagReader | undefined;
}

export interface HealthOptions extends HealthReaders {
  /** False where no DynamoDB stream exists by design (the embedded dynalite: the local capture serves it). */
  readonly expectStream: boolean;
}

/** A sync is late past 1.5 intervals (one scheduled run missed, with half an interval of slack for run time) … */
export const SYNC_LATE_INTERVALS = 1.5;
/** … and missing past 2 intervals: two scheduled runs in a row did not complete. */
export const SYNC_MISSING_INTERVALS = 2;
/** Stream lag above which grants count as late: the stack's default `alarms.iteratorAgeMinutes`. */
export const STREAM_LAG_LIMIT_MINUTES = 5;
/** The window the stream lag is read over: the health schedule's default period. */
export const STREAM_LAG_WINDOW_MINUTES = 15;

/** The stream function's lag metric (a type-only import: the name cannot drift, the stream code stays out of this bundle). */
const STREAM_LAG_METRIC: (typeof STREAM_METRICS)['lag'] = 'ProcessingLagMs';

/** Full runs that write like the scheduled sync: any of them reconciles every user. */
const SYNC_MODES = ['cron-sync', 'fix', 'migrate'] as const satisfies readonly RunMode[];
const VALIDATION_MODES = ['cron-validate', 'validate'] as const satisfies readonly RunMode[];
/** Issue kinds a fix repairs by itself; the others are report-only or need a person. */
const FIXABLE_KINDS = ['missing', 'duplicate'] as const;

const RELEASE_HOLD = 'npm run payment-release-hold, or invoke the sync Lambda with {"releaseHold": true}';

const errorText = (error: unknown): string => {
  const { name, message } = error as Error;
  return name && name !== 'Error' ? `${name}: ${message}` : message;
};

function duration(ms: number): string {
  const minutes = Math.max(0, Math.round(ms / 60_000));
  if (minutes < 120) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ${minutes % 60} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

/** An ISO time with how long ago it was: what an operator compares with the schedule. */
const at = (iso: string, now: number): string => `${iso} (${duration(now - Date.parse(iso))} ago)`;
const finishedAt = (run: RunRecord): string => run.finishedAt ?? run.startedAt;
const snapshotOf = (run: RunRecord): string => run.snapshotAt ?? run.startedAt;
const newest = (runs: readonly (RunRecord | undefined)[], time: (run: RunRecord) => string): RunRecord | undefined =>
  runs.filter((run): run is RunRecord => run !== undefined).sort((a, b) => Date.parse(time(b)) - Date.parse(time(a)))[0];
const describeRun = (run: RunRecord): string =>
  `run ${run.runId} (${run.mode}, ${run.trigger}${run.held ? ', held: report-only' : run.dryRun ? ', dry run' : ''}${run.capped ? ', capped' : ''})`;
/** A run that wrote whatever its plan asked: the users it found drifting are repaired. */
const repairedAll = (run: RunRecord): boolean => run.status === 'completed' && !run.dryRun && !run.held && !run.capped && (run.issues?.error ?? 0) === 0;

/** The run table's items health reads, all at once. */
interface RunState {
  readonly lock: RunLock | undefined;
  readonly hold: RunHold | undefined;
  readonly last: Readonly<Record<(typeof SYNC_MODES)[number] | (typeof VALIDATION_MODES)[number], RunRecord | undefined>>;
}

async function readRunState(runs: RunRecords): Promise<RunState> {
  const [lock, hold, cronSync, fix, migrate, cronValidate, validate] = await Promise.all([
    runs.readLock(),
    runs.readHold(),
    runs.lastCompleted('cron-sync'),
    runs.lastCompleted('fix'),
    runs.lastCompleted('migrate'),
    runs.lastCompleted('cron-validate'),
    runs.lastCompleted('validate'),
  ]);
  return { lock, hold, last: { 'cron-sync': cronSync, fix, migrate, 'cron-validate': cronValidate, validate } };
}

async function tableChecks(deps: SyncDeps, expectStream: boolean): Promise<HealthCheck[]> {
  const { config } = deps;
  const where = dynamoLocation(config);
  const checks: HealthCheck[] = [];
  const described = async (name: string, tableName: string, variable: string): Promise<TableDescription | undefined> => {
    let table: TableDescription | undefined;
    try {
      table = await describeTable(deps.client, tableName);
    } catch (error) {
      checks.push({ name, status: 'fail', detail: `${tableName}: cannot reach DynamoDB at ${where}: ${errorText(error)} (npm run payment-env-check says what is missing)` });
      return undefined;
    }
    if (!table) checks.push({ name, status: 'fail', detail: `${tableName} does not exist at ${where}: check ${variable}${config.endpoint ? '' : ` and AWS_REGION (${config.region})`}` });
    else if (table.TableStatus !== 'ACTIVE') checks.push({ name, status: 'warn', detail: `${tableName} is ${table.TableStatus}: runs wait until it is ACTIVE` });
    else checks.push({ name, status: 'pass', detail: `${tableName}: ACTIVE at ${where}` });
    return table;
  };

  const payments = await described('paymentsTable', config.paymentsTable, 'DYNAMODB_PAYMENTS_TABLE');
  const indexName = config.paymentsUserIndex;
  const index = findIndex(payments, indexName);
  if (!payments) checks.push({ name: 'paymentsUserIndex', status: 'fail', detail: `${indexName}: not checked (no payments table)` });
  else if (!index) checks.push({ name: 'paymentsUserIndex', status: 'fail', detail: `index ${indexName} not found on ${config.paymentsTable}: every per-user reconcile queries it; set PAYMENTS_USER_INDEX or create it (npm run payment-env-check prints the command)` });
  else if (index.IndexStatus !== 'ACTIVE') checks.push({ name: 'paymentsUserIndex', status: 'warn', detail: `index ${indexName} is ${index.IndexStatus} (backfilling): per-user reconciles wait for it` });
  else checks.push({ name: 'paymentsUserIndex', status: 'pass', detail: `${indexName}: ACTIVE` });
  if (expectStream) {
    const stream = payments?.StreamSpecification;
    if (!payments) checks.push({ name: 'paymentsStream', status: 'warn', detail: 'not checked (no payments table)' });
    else if (stream?.StreamEnabled && stream.StreamViewType === 'NEW_AND_OLD_IMAGES') checks.push({ name: 'paymentsStream', status: 'pass', detail: 'enabled, NEW_AND_OLD_IMAGES' });
    else {
      checks.push({
        name: 'paymentsStream',
        status: 'warn',
        detail: `stream ${stream?.StreamEnabled ? `view type ${stream.StreamViewType}` : 'off'} on ${config.paymentsTable}: real-time grants and revocations are not running (they need NEW_AND_OLD_IMAGES; npm run payment-env-check prints the fix)`,
      });
    }
  }
  await described('usersTable', config.usersTable, 'DYNAMODB_USERS_TABLE');
  return checks;
}

/**
 * Age of the last completed sync against the schedule. The newest of the last completed
 * `cron-sync` and the last completed full `fix` or `migrate` that wrote (not a dry run) counts:
 * each of those reconciles every user, so the tables are as fresh as the newest of them. When
 * a manual fix is what keeps them fresh while the schedule itself has fallen behind, the check
 * is degraded, not healthy: the schedule is broken even if the data is not stale yet.
 */
function lastSyncCheck(config: SyncConfig, state: RunState, now: number): HealthCheck {
  const name = 'lastSync';
  const interval = config.syncIntervalMinutes;
  const cronSync = state.last['cron-sync'];
  const fullFixes = [state.last.fix, state.last.migrate].filter((run) => run !== undefined && !run.dryRun);
  const last = newest([cronSync, ...fullFixes], finishedAt);
  const lock = state.lock && isLockHeld(state.lock, now) ? `; run ${state.lock.runId} (${state.lock.mode}) holds the lock since ${state.lock.acquiredAt}, so scheduled syncs are skipped until it ends` : '';
  if (!last) {
    if (interval === undefined) return { name, status: 'pass', detail: `no completed sync in ${config.runsTable} yet; SYNC_INTERVAL_MINUTES unset, so its age is not judged (npm run payment-cron-sync runs one)${lock}` };
    return {
      name,
      status: 'warn',
      detail: `no completed sync in ${config.runsTable} yet: the schedule (every ${interval} min) completes one within ${interval} min of deployment; if this stays, read the sync function's log and the state machine's failed executions${lock}`,
    };
  }
  const ended = finishedAt(last);
  const age = now - Date.parse(ended);
  const found = `${describeRun(last)} finished ${at(ended, now)}`;
  if (interval === undefined) return { name, status: 'pass', detail: `last completed sync: ${found}; SYNC_INTERVAL_MINUTES unset, so its age is not judged${lock}` };
  const lateAfter = interval * SYNC_LATE_INTERVALS;
  const missingAfter = interval * SYNC_MISSING_INTERVALS;
  const thresholds = `(every ${interval} min: degraded past ${lateAfter} min, unhealthy past ${missingAfter} min)`;
  if (age > missingAfter * 60_000) {
    return { name, status: 'fail', detail: `no sync completed for ${duration(age)}: last ${found} ${thresholds}; read the sync function's log and the state machine's failed executions${lock}` };
  }
  if (age > lateAfter * 60_000) return { name, status: 'warn', detail: `the last sync is late: ${found} ${thresholds}${lock}` };
  if (last !== cronSync && (!cronSync || now - Date.parse(finishedAt(cronSync)) > lateAfter * 60_000)) {
    const scheduled = cronSync ? `the last scheduled cron-sync finished ${at(finishedAt(cronSync), now)}` : 'no scheduled cron-sync has completed yet';
    return { name, status: 'warn', detail: `the tables were reconciled by ${found}, but ${scheduled} ${thresholds}: check the sync schedule${lock}` };
  }
  return { name, status: 'pass', detail: `${found} ${thresholds}` };
}

/**
 * The newest validation's fixable issues (missing, duplicate), unless a full fix that repaired
 * everything it found (completed, wrote, not held or capped, no user in error) snapshotted the
 * tables after that validation did: then they are fixed, and the next validation confirms it.
 */
function lastValidationCheck(state: RunState, now: number): HealthCheck {
  const name = 'lastValidation';
  const validation = newest(VALIDATION_MODES.map((mode) => state.last[mode]), snapshotOf);
  if (!validation) return { name, status: 'pass', detail: 'no completed validation yet (the daily schedule runs one; npm run payment-validate by hand)' };
  const counts = FIXABLE_KINDS.map((kind) => ({ kind, count: validation.issues?.[kind] ?? 0 }));
  const found = counts.map(({ kind, count }) => `${count} ${kind}`).join(', ');
  const snapshot = `in the snapshot of ${at(snapshotOf(validation), now)}`;
  const about = `validation run ${validation.runId} (${validation.mode}) found ${found} ${snapshot}`;
  if (counts.every(({ count }) => count === 0)) return { name, status: 'pass', detail: about };
  const since = Date.parse(snapshotOf(validation));
  const fixedSince = newest(
    SYNC_MODES.map((mode) => state.last[mode]).filter((run) => run !== undefined && repairedAll(run) && Date.parse(snapshotOf(run)) > since),
    snapshotOf,
  );
  if (fixedSince) return { name, status: 'pass', detail: `${about}; ${describeRun(fixedSince)}, a full fix from a later snapshot (${snapshotOf(fixedSince)}), repaired everything it found; the next validation confirms` };
  return {
    name,
    status: 'warn',
    detail: `${about}, not fixed since: npm run payment-fix repairs them (or the next scheduled sync, unless a hold is in force); the run's issues.jsonl lists each with its order ids`,
  };
}

function lockCheck(state: RunState, now: number): HealthCheck {
  const name = 'runLock';
  const { lock } = state;
  if (!lock) return { name, status: 'pass', detail: 'no full run in progress' };
  const expires = new Date(lock.lockedUntil).toISOString();
  if (!isLockHeld(lock, now)) {
    return {
      name,
      status: 'warn',
      detail: `run ${lock.runId} (${lock.mode}) holds a stale lock since ${at(lock.acquiredAt, now)}: it expired at ${expires} without the run's finalize releasing it (the run died); the next run takes it over`,
    };
  }
  return { name, status: 'pass', detail: `run ${lock.runId} (${lock.mode}) in progress since ${at(lock.acquiredAt, now)} (its lock expires at ${expires})` };
}

function holdCheck(state: RunState, now: number): HealthCheck {
  const name = 'hold';
  const { hold } = state;
  if (!hold) return { name, status: 'pass', detail: 'no hold: scheduled fixes write' };
  return {
    name,
    status: 'warn',
    detail: `run ${hold.runId} set a hold at ${at(hold.setAt, now)}: ${hold.reason}; scheduled fixes only report until a person releases it: read that run's report, then ${RELEASE_HOLD}`,
  };
}

/** The four checks of the run table; when it cannot be read, each says so. */
async function runChecks(deps: SyncDeps): Promise<HealthCheck[]> {
  const { config } = deps;
  const names = ['lastSync', 'lastValidation', 'runLock', 'hold'];
  let state: RunState;
  try {
    state = await readRunState(new RunRecords(deps.client, config.runsTable, deps.now));
  } catch (error) {
    const where = dynamoLocation(config);
    const detail =
      (error as Error).name === 'ResourceNotFoundException'
        ? `run table ${config.runsTable} does not exist at ${where}: check RUNS_TABLE (the stack's RunTableName output)`
        : `cannot read run table ${config.runsTable} at ${where}: ${errorText(error)}`;
    return names.map((name) => ({ name, status: 'fail', detail }));
  }
  const now = deps.now();
  return [lastSyncCheck(config, state, now), lastValidationCheck(state, now), lockCheck(state, now), holdCheck(state, now)];
}

async function failureQueueCheck(read: QueueDepthReader): Promise<HealthCheck> {
  const depth = await read();
  if (depth === 0) return { name: 'failureQueue', status: 'pass', detail: 'no failed stream batch waiting' };
  return {
    name: 'failureQueue',
    status: 'warn',
    detail: `${depth} failed stream batch(es) waiting in the failure queue: find each message's cause in the stream function's log for its sequence range, repair the users (the next sync does), then delete the message (docs/REALTIME.md)`,
  };
}

async function streamLagCheck(read: StreamLagReader): Promise<HealthCheck> {
  const name = 'streamLag';
  const window = STREAM_LAG_WINDOW_MINUTES;
  const lag = await read(window);
  if (lag === undefined) return { name, status: 'pass', detail: `no payment change reached the stream function in the last ${window} min` };
  const seconds = Math.round(lag / 1000);
  if (lag > STREAM_LAG_LIMIT_MINUTES * 60_000) {
    return {
      name,
      status: 'warn',
      detail: `payment changes waited up to ${duration(lag)} (${seconds} s) for the stream function in the last ${window} min, over ${STREAM_LAG_LIMIT_MINUTES} min: grants are late; look at the stream function's errors and throttles`,
    };
  }
  return { name, status: 'pass', detail: `payment changes applied within ${seconds} s in the last ${window} min (degraded over ${STREAM_LAG_LIMIT_MINUTES} min)` };
}

/**
 * Point-in-time recovery of both tables: SNAPSHOT_MODE=export reads the tables through
 * ExportTableToPointInTime and fails without it (unhealthy); otherwise informative. A local
 * endpoint is never judged: dynalite does not implement DescribeContinuousBackups.
 */
async function pointInTimeRecoveryCheck(deps: SyncDeps): Promise<HealthCheck> {
  const name = 'pointInTimeRecovery';
  const { config } = deps;
  const required = config.snapshotMode === 'export';
  const found: string[] = [];
  const off: string[] = [];
  for (const table of [config.paymentsTable, config.usersTable]) {
    try {
      const answer = await deps.client.send(new DescribeContinuousBackupsCommand({ TableName: table }));
      const status = answer.ContinuousBackupsDescription?.PointInTimeRecoveryDescription?.PointInTimeRecoveryStatus ?? 'unknown';
      found.push(`${table}: ${status}`);
      if (status !== 'ENABLED') off.push(table);
    } catch (error) {
      if (config.endpoint) return { name, status: 'pass', detail: `unknown locally: ${config.endpoint} does not answer DescribeContinuousBackups (${(error as Error).name}); only informative here` };
      if (required) return { name, status: 'fail', detail: `${table}: cannot read it (${errorText(error)}); SNAPSHOT_MODE=export needs it on both tables: the credentials need dynamodb:DescribeContinuousBackups` };
      found.push(`${table}: cannot read it (${errorText(error)})`);
    }
  }
  const listed = found.join('; ');
  if (config.endpoint) return { name, status: 'pass', detail: `${listed} (a local endpoint: only informative)` };
  if (off.length > 0 && required) {
    return {
      name,
      status: 'fail',
      detail: `${listed}: SNAPSHOT_MODE=export needs it on both tables, full runs fail without it: ${off.map((table) => `aws dynamodb update-continuous-backups --table-name ${table} --point-in-time-recovery-specification PointInTimeRecoveryEnabled=true`).join('; ')} (or SNAPSHOT_MODE=scan)`,
    };
  }
  return { name, status: 'pass', detail: required ? `${listed}: as SNAPSHOT_MODE=export needs` : `${listed} (informative: SNAPSHOT_MODE=${config.snapshotMode} does not need it; on ${config.usersTable} it is the roll-back of last resort)` };
}

/**
 * The seed's `payment-cron-health`, grown with the run table: can the sync run (tables, index),
 * do the runs run (the last completed sync against its schedule, a stale lock, a hold, the last
 * validation's unfixed issues), is the real-time path whole (stream, failure queue, lag), and
 * can an export snapshot work (point-in-time recovery). A check that cannot run fails with why.
 */
export async function checkHealth(deps: SyncDeps, options: HealthOptions): Promise<HealthReport> {
  const attempt = async (name: string, run: () => Promise<HealthCheck | HealthCheck[]>): Promise<HealthCheck[]> => {
    try {
      return [await run()].flat();
    } catch (error) {
      return [{ name, status: 'fail', detail: errorText(error) }];
    }
  };
  const { failureQueueDepth, streamLag } = options;
  const groups = await Promise.all([
    attempt('paymentsTable', () => tableChecks(deps, options.expectStream)),
    attempt('runTable', () => runChecks(deps)),
    failureQueueDepth ? attempt('failureQueue', () => failureQueueCheck(failureQueueDepth)) : [],
    streamLag ? attempt('streamLag', () => streamLagCheck(streamLag)) : [],
    attempt('pointInTimeRecovery', () => pointInTimeRecoveryCheck(deps)),
  ]);
  const checks = groups.flat();
  return { status: overallStatus(checks), checks };
}

export function overallStatus(checks: readonly HealthCheck[]): HealthStatus {
  if (checks.some((check) => check.status === 'fail')) return 'unhealthy';
  return checks.some((check) => check.status === 'warn') ? 'degraded' : 'healthy';
}

/** The `HealthStatus` metric's value, which the `Unhealthy` alarm watches (at 2). */
export const HEALTH_STATUS_VALUE: Readonly<Record<HealthStatus, number>> = { healthy: 0, degraded: 1, unhealthy: 2 };

/**
 * The readers over SQS and CloudWatch, each only where it applies: the failure queue's depth
 * when FAILURE_QUEUE_URL is configured, the stream's lag on AWS (no DYNAMODB_ENDPOINT). The
 * health Lambda and `payment-cron-health` use the same, so both print the same checks.
 */
export function createHealthReaders(config: SyncConfig): { readonly readers: HealthReaders; destroy(): void } {
  const queueUrl = config.failureQueueUrl;
  const sqs = queueUrl ? new SQSClient({ region: config.region }) : undefined;
  const cloudwatch = config.endpoint ? undefined : new CloudWatchClient({ region: config.region });
  const failureQueueDepth: QueueDepthReader | undefined =
    sqs && queueUrl
      ? async () => {
          const answer = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages'] }));
          return Number(answer.Attributes?.ApproximateNumberOfMessages ?? 0);
        }
      : undefined;
  const streamLag: StreamLagReader | undefined = cloudwatch
    ? async (minutes) => {
        const end = new Date();
        const answer = await cloudwatch.send(
          new GetMetricStatisticsCommand({
            Namespace: config.observability.metricsNamespace,
            MetricName: STREAM_LAG_METRIC,
            Dimensions: [{ Name: 'service', Value: config.observability.serviceName }],
            StartTime: new Date(end.getTime() - minutes * 60_000),
            EndTime: end,
            Period: minutes * 60,
            Statistics: ['Maximum'],
          }),
        );
        const points = (answer.Datapoints ?? []).map((point) => point.Maximum).filter((value): value is number => value !== undefined);
        return points.length > 0 ? Math.max(...points) : undefined;
      }
    : undefined;
  return {
    readers: { failureQueueDepth, streamLag },
    destroy: () => {
      sqs?.destroy();
      cloudwatch?.destroy();
    },
  };
}
