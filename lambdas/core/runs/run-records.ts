import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { IssueCounts, RunCounts, RunMode } from '../report/report';

/** Who started a run: a schedule (capped, held) or a person. */
export type RunTrigger = 'schedule' | 'manual';

/** `skipped`: another run held the lock; `failed`: a stage failed and finalize closed the run. */
export type RunStatus = 'running' | 'completed' | 'failed' | 'skipped';

/** The longest a full run may take: the state machine's timeout and the lock's lifetime. */
export const MAX_RUN_HOURS = 12;
/** Run records expire (DynamoDB TTL) this long after they are written. */
export const RUN_RECORD_DAYS = 90;

export interface RunRecord {
  readonly runId: string;
  readonly mode: RunMode;
  readonly trigger: RunTrigger;
  readonly status: RunStatus;
  readonly dryRun: boolean;
  /** A hold made this scheduled fix report-only. */
  readonly held: boolean;
  readonly startedAt: string;
  readonly snapshotAt?: string;
  readonly finishedAt?: string;
  readonly counts?: RunCounts;
  readonly issues?: IssueCounts;
  readonly consumedCapacity?: number;
  readonly capped?: boolean;
  readonly error?: string;
  /** Users changed and courses revoked so far: what later repair batches of a capped run have left. */
  readonly changesUsed?: number;
  readonly revocationsUsed?: number;
}

export interface RunLock {
  readonly runId: string;
  readonly mode: RunMode;
  readonly acquiredAt: string;
  /** Epoch ms; a lock past this is stale (its run died without finalize) and may be taken. */
  readonly lockedUntil: number;
}

/** A lock its run still holds; past `lockedUntil` it is stale (the run died) and the next run takes it over. */
export function isLockHeld(lock: RunLock, now: number): boolean {
  return lock.lockedUntil >= now;
}

export interface RunHold {
  readonly runId: string;
  readonly setAt: string;
  readonly reason: string;
}

const RUN = (runId: string) => `run#${runId}`;
const LOCK = 'lock';
const HOLD = 'hold';
const LAST = (mode: RunMode) => `last#${mode}`;

/** An item's own fields, without the table's key and expiry. */
function withoutTableKeys(item: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(item).filter(([name]) => name !== 'pk' && name !== 'expiresAt'));
}

const isConditionFailure = (error: unknown): boolean => (error as Error).name === 'ConditionalCheckFailedException';

/**
 * The run table: one record per full run, the lock that keeps two full runs from overlapping,
 * the hold that makes scheduled fixes report-only after a capped run, and a pointer to each
 * mode's last completed run (what health and the incremental sync read).
 */
export class RunRecords {
  private readonly documents: DynamoDBDocumentClient;

  constructor(
    client: DynamoDBClient,
    private readonly table: string,
    private readonly now: () => number = Date.now,
  ) {
    this.documents = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
  }

  private expiresAt(): number {
    return Math.floor(this.now() / 1000) + RUN_RECORD_DAYS * 86_400;
  }

  private async get<T>(pk: string): Promise<T | undefined> {
    const { Item } = await this.documents.send(new GetCommand({ TableName: this.table, Key: { pk }, ConsistentRead: true }));
    return Item ? (withoutTableKeys(Item) as T) : undefined;
  }

  /**
   * Takes the lock for a run, or answers who holds it. Taking it again for the same run
   * succeeds (a retried prepare), and a lock past its expiry is taken over.
   */
  async acquireLock(runId: string, mode: RunMode): Promise<{ acquired: true } | { acquired: false; holder: RunLock }> {
    const now = this.now();
    const lock: RunLock = { runId, mode, acquiredAt: new Date(now).toISOString(), lockedUntil: now + MAX_RUN_HOURS * 3_600_000 };
    try {
      await this.documents.send(
        new PutCommand({
          TableName: this.table,
          Item: { pk: LOCK, ...lock },
          // Free, stale (isLockHeld's rule, on the server's side of the race), or already this run's.
          ConditionExpression: 'attribute_not_exists(pk) OR lockedUntil < :now OR runId = :runId',
          ExpressionAttributeValues: { ':now': now, ':runId': runId },
        }),
      );
      return { acquired: true };
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      const holder = await this.readLock();
      // Released between the write and the read: try once more.
      if (!holder) return this.acquireLock(runId, mode);
      return { acquired: false, holder };
    }
  }

  readLock(): Promise<RunLock | undefined> {
    return this.get<RunLock>(LOCK);
  }

  /** The lock, if a run still holds it (a stale one is no obstacle). */
  async readHeldLock(): Promise<RunLock | undefined> {
    const lock = await this.readLock();
    return lock && isLockHeld(lock, this.now()) ? lock : undefined;
  }

  /** Releases the lock if this run holds it; a lock taken over by another run is left alone. */
  async releaseLock(runId: string): Promise<void> {
    try {
      await this.documents.send(new DeleteCommand({ TableName: this.table, Key: { pk: LOCK }, ConditionExpression: 'runId = :runId', ExpressionAttributeValues: { ':runId': runId } }));
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
    }
  }

  async putRun(record: RunRecord): Promise<void> {
    await this.documents.send(new PutCommand({ TableName: this.table, Item: { pk: RUN(record.runId), ...record, expiresAt: this.expiresAt() } }));
  }

  getRun(runId: string): Promise<RunRecord | undefined> {
    return this.get<RunRecord>(RUN(runId));
  }

  /** A run's final record; a completed one also becomes its mode's last completed run. */
  async finishRun(record: RunRecord): Promise<void> {
    await this.putRun(record);
    if (record.status === 'completed') {
      await this.documents.send(new PutCommand({ TableName: this.table, Item: { pk: LAST(record.mode), ...record } }));
    }
  }

  lastCompleted(mode: RunMode): Promise<RunRecord | undefined> {
    return this.get<RunRecord>(LAST(mode));
  }

  /** Adds a repair batch's changes to the run's totals. */
  async addUsage(runId: string, changes: number, revocations: number): Promise<void> {
    await this.documents.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { pk: RUN(runId) },
        UpdateExpression: 'ADD changesUsed :changes, revocationsUsed :revocations',
        ExpressionAttributeValues: { ':changes': changes, ':revocations': revocations },
      }),
    );
  }

  readHold(): Promise<RunHold | undefined> {
    return this.get<RunHold>(HOLD);
  }

  async setHold(runId: string, reason: string): Promise<RunHold> {
    const hold: RunHold = { runId, setAt: new Date(this.now()).toISOString(), reason };
    await this.documents.send(new PutCommand({ TableName: this.table, Item: { pk: HOLD, ...hold } }));
    return hold;
  }

  /** Lifts the hold; answers the hold that was in force, if any. */
  async releaseHold(): Promise<RunHold | undefined> {
    const { Attributes } = await this.documents.send(new DeleteCommand({ TableName: this.table, Key: { pk: HOLD }, ReturnValues: 'ALL_OLD' }));
    return Attributes ? (withoutTableKeys(Attributes) as unknown as RunHold) : undefined;
  }
}
