import type { TableDescription } from '@aws-sdk/client-dynamodb';
import type { SyncDeps } from '../deps';
import { describeTable } from '../store/table-checks';

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

/** Counts the scheduled syncs that completed within the last `minutes`; a port over CloudWatch metrics. */
export type CompletedRunsReader = (minutes: number) => Promise<number>;

export interface HealthOptions {
  /** False where no DynamoDB stream exists by design (the embedded dynalite: the local capture serves it). */
  readonly expectStream: boolean;
  readonly failureQueueDepth?: QueueDepthReader | undefined;
  /** With the sync schedule's interval: a sync should have completed within two of them. */
  readonly completedSyncs?: { readonly read: CompletedRunsReader; readonly intervalMinutes: number } | undefined;
}

const describe = (deps: SyncDeps, tableName: string): Promise<TableDescription | undefined> => describeTable(deps.client, tableName);

function tableCheck(name: string, table: TableDescription | undefined): HealthCheck {
  if (!table) return { name, status: 'fail', detail: 'table not found' };
  if (table.TableStatus !== 'ACTIVE') return { name, status: 'warn', detail: `table is ${table.TableStatus}` };
  return { name, status: 'pass', detail: `ACTIVE, about ${table.ItemCount ?? 0} items` };
}

/**
 * The seed's `payment-cron-health`: can the sync run at all (tables, index), and is the
 * real-time path whole (stream on, nothing parked in the failure queue)?
 */
export async function checkHealth(deps: SyncDeps, options: HealthOptions): Promise<HealthReport> {
  const checks: HealthCheck[] = [];
  const attempt = async (name: string, run: () => Promise<HealthCheck | HealthCheck[]>): Promise<void> => {
    try {
      checks.push(...[await run()].flat());
    } catch (error) {
      checks.push({ name, status: 'fail', detail: `${(error as Error).name}: ${(error as Error).message}` });
    }
  };
  const { config } = deps;
  await attempt('paymentsTable', async () => {
    const table = await describe(deps, config.paymentsTable);
    const index = table?.GlobalSecondaryIndexes?.find((gsi) => gsi.IndexName === config.paymentsUserIndex);
    const found: HealthCheck[] = [
      tableCheck('paymentsTable', table),
      !index
        ? { name: 'paymentsUserIndex', status: 'fail', detail: `index ${config.paymentsUserIndex} not found` }
        : { name: 'paymentsUserIndex', status: index.IndexStatus === 'ACTIVE' ? 'pass' : 'warn', detail: `${index.IndexStatus}` },
    ];
    if (options.expectStream) {
      const stream = table?.StreamSpecification;
      const whole = stream?.StreamEnabled && stream.StreamViewType === 'NEW_AND_OLD_IMAGES';
      found.push({ name: 'paymentsStream', status: whole ? 'pass' : 'warn', detail: whole ? 'NEW_AND_OLD_IMAGES' : 'stream off or without old and new images: real-time sync is not running' });
    }
    return found;
  });
  await attempt('usersTable', async () => tableCheck('usersTable', await describe(deps, config.usersTable)));
  const readFailureQueueDepth = options.failureQueueDepth;
  if (readFailureQueueDepth) {
    await attempt('failureQueue', async () => {
      const depth = await readFailureQueueDepth();
      return { name: 'failureQueue', status: depth === 0 ? 'pass' : 'warn', detail: `${depth} failed stream batch(es) waiting` };
    });
  }
  const completedSyncs = options.completedSyncs;
  if (completedSyncs) {
    await attempt('scheduledSync', async () => {
      const window = completedSyncs.intervalMinutes * 2;
      const completed = await completedSyncs.read(window);
      return {
        name: 'scheduledSync',
        status: completed > 0 ? 'pass' : 'warn',
        detail: completed > 0 ? `${completed} scheduled sync(s) completed in the last ${window} minutes` : `no scheduled sync completed in the last ${window} minutes`,
      };
    });
  }
  const status: HealthStatus = checks.some((check) => check.status === 'fail')
    ? 'unhealthy'
    : checks.some((check) => check.status === 'warn')
      ? 'degraded'
      : 'healthy';
  return { status, checks };
}
