import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { MetricUnit as MetricUnitName } from '@aws-lambda-powertools/metrics/types';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { AttributeValue as SdkAttributeValue } from '@aws-sdk/client-dynamodb';
import type { Context, DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import type { SyncDeps } from '../core/deps';
import { applyPaymentChange } from '../core/jobs/payment-change';
import type { PaymentChange, PaymentChangeOutcome } from '../core/jobs/payment-change';
import { isPermanentError } from '../core/errors';
import { logger as defaultLogger, metrics as defaultMetrics } from '../core/observability';
import { readText } from '../core/rules/attribute-values';
import type { WireItem, WireValue } from '../core/rules/attribute-values';

/** The parts of Powertools Logger and Metrics the stream handler uses. */
export interface StreamTelemetry {
  readonly logger: {
    info(message: string, extra: Record<string, unknown>): void;
    warn(message: string, extra: Record<string, unknown>): void;
    error(message: string, extra: Record<string, unknown>): void;
    addContext(context: Context): void;
  };
  readonly metrics: {
    addMetric(name: string, unit: MetricUnitName, value: number): unknown;
    publishStoredMetrics(): void;
  };
}

/** The metrics one invocation publishes (all of them, zeros included, so alarms never see gaps). */
export const STREAM_METRICS = {
  grants: 'GrantsApplied',
  revocations: 'RevocationsApplied',
  skippedByPolicy: 'RevocationsSkippedByPolicy',
  orphans: 'OrphanPayments',
  malformed: 'MalformedRecords',
  /** Records whose write DynamoDB refuses for good (an item past 400 KB): logged, never retried; the report of a full run lists the user. */
  rejected: 'RecordsRejected',
  /** Records reported in batchItemFailures for redelivery (transient failures and the records queued behind them). */
  failed: 'RecordsFailed',
  lag: 'ProcessingLagMs',
} as const;

type Counter = Exclude<keyof typeof STREAM_METRICS, 'lag'>;

/** A stream record that is not a payment change the sync can read: counted, logged, never retried. */
export class MalformedRecordError extends Error {
  override readonly name = 'MalformedRecordError';
}

/** An earlier record of the same user failed; this one must wait for its redelivery, not overtake it. */
export class EarlierRecordFailedError extends Error {
  override readonly name = 'EarlierRecordFailedError';
  constructor(readonly sequenceNumber: string | undefined) {
    super(`Held back: an earlier record of the same user in this batch failed (this one is ${sequenceNumber})`);
  }
}

/**
 * The stream Lambda's work: each record goes to the one decision function in core, and its
 * outcome becomes logs and metrics. Records of one user run in stream order (a grant and a
 * later refund of the same user must not swap); different users run in parallel. A record
 * that fails for a transient reason is reported by its sequence number, and so is every
 * later record of the same user in the batch, so Lambda retries them after it instead of
 * applying them before it. Bad records are counted and left to the scheduled reconciliation.
 */
export function createStreamHandler(
  deps: SyncDeps,
  telemetry: StreamTelemetry = { logger: defaultLogger, metrics: defaultMetrics },
): (event: DynamoDBStreamEvent, context?: Context) => Promise<DynamoDBBatchResponse> {
  const { logger, metrics } = telemetry;

  return async (event, context) => {
    if (context) logger.addContext(context);
    const counts: Record<Counter, number> = { grants: 0, revocations: 0, skippedByPolicy: 0, orphans: 0, malformed: 0, rejected: 0, failed: 0 };
    // A record that is not even an object has no sequence number to report for redelivery:
    // it is counted and logged as malformed, and the rest of the batch goes on.
    const all: unknown[] = Array.isArray(event?.Records) ? event.Records : [];
    const records = all.filter((record): record is DynamoDBRecord => typeof record === 'object' && record !== null && !Array.isArray(record));
    if (records.length < all.length) {
      counts.malformed += all.length - records.length;
      logger.warn('malformed stream record', { reason: `${all.length - records.length} record(s) of the batch are not objects`, records: all.length });
    }
    const sequencer = new UserSequencer(records, (record) => userOf(record, deps));

    const handleRecord = (record: DynamoDBRecord) =>
      sequencer.run(record, async () => {
        let change: PaymentChange;
        try {
          change = paymentChange(record);
        } catch (error) {
          if (!(error instanceof MalformedRecordError)) throw error;
          counts.malformed += 1;
          logger.warn('malformed stream record', {
            orderId: orderOf(record, deps),
            userId: userOf(record, deps),
            reason: error.message,
            sequenceNumber: sequenceOf(record),
          });
          return;
        }
        let outcome: PaymentChangeOutcome;
        try {
          outcome = await applyPaymentChange(deps, change);
        } catch (error) {
          // Redelivery would fail the same way, holding this user's later records back for an hour.
          if (!isPermanentError(error)) throw error;
          counts.rejected += 1;
          logger.error('record rejected: DynamoDB refuses this write for good; not retried', {
            orderId: orderOf(record, deps),
            userId: userOf(record, deps),
            sequenceNumber: sequenceOf(record),
            reason: `${(error as Error).name}: ${(error as Error).message}`,
          });
          return;
        }
        tally(outcome, counts);
        const extra = { ...outcome, sequenceNumber: sequenceOf(record) };
        if (BAD_RECORD_OUTCOMES.has(outcome.kind)) logger.warn(outcome.kind, extra);
        else logger.info(outcome.kind, extra);
        const created = record.dynamodb?.ApproximateCreationDateTime;
        if (created !== undefined) metrics.addMetric(STREAM_METRICS.lag, MetricUnit.Milliseconds, Math.max(0, deps.now() - created * 1000));
      }).catch((error: unknown) => {
        counts.failed += 1;
        const extra = { orderId: orderOf(record, deps), userId: userOf(record, deps), sequenceNumber: sequenceOf(record) };
        if (error instanceof EarlierRecordFailedError) logger.warn('record held back for redelivery', extra);
        else logger.error('record failed; reported for redelivery', { ...extra, error });
        throw error;
      });

    try {
      // A processor per invocation: its state belongs to one batch, even when invocations overlap locally.
      const processor = new BatchProcessor(EventType.DynamoDBStreams);
      // A batch whose every record failed is still answered with batchItemFailures rather than
      // thrown: the failures are per record (transient), not a crash of the function.
      return await processPartialResponse({ Records: records }, handleRecord, processor, {
        throwOnFullBatchFailure: false,
        ...(context && { context }),
      });
    } finally {
      for (const [counter, name] of Object.entries(STREAM_METRICS)) {
        if (counter !== 'lag') metrics.addMetric(name, MetricUnit.Count, counts[counter as Counter]);
      }
      metrics.publishStoredMetrics();
    }
  };
}

/** Outcomes that point at bad data rather than a normal transition: logged as warnings. */
const BAD_RECORD_OUTCOMES = new Set<PaymentChangeOutcome['kind']>(['orphan-payment', 'malformed-payment', 'unknown-status']);

function tally(outcome: PaymentChangeOutcome, counts: Record<Counter, number>): void {
  switch (outcome.kind) {
    case 'granted':
      counts.grants += 1;
      break;
    case 'revoked':
      counts.revocations += 1;
      break;
    case 'revoke-skipped-by-policy':
      counts.skippedByPolicy += 1;
      break;
    case 'orphan-payment':
      counts.orphans += 1;
      break;
    case 'malformed-payment':
    case 'unknown-status':
      counts.malformed += 1;
      break;
    case 'no-change':
    case 'ignored':
      break;
  }
}

const EVENT_NAMES = new Set(['INSERT', 'MODIFY', 'REMOVE']);

/** The record as core's input; an image the SDK could not unmarshal makes the record malformed. */
function paymentChange(record: DynamoDBRecord): PaymentChange {
  const { eventName } = record;
  if (!eventName || !EVENT_NAMES.has(eventName)) throw new MalformedRecordError(`event name ${String(eventName)}`);
  return { eventName, oldImage: image(record, 'OldImage'), newImage: image(record, 'NewImage') };
}

function image(record: DynamoDBRecord, which: 'OldImage' | 'NewImage'): WireItem | undefined {
  const value: unknown = record.dynamodb?.[which];
  if (value === undefined) return undefined;
  try {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new TypeError('not a map');
    unmarshall(value as Record<string, SdkAttributeValue>);
  } catch (error) {
    throw new MalformedRecordError(`${which} does not unmarshal: ${(error as Error).message}`);
  }
  return value as WireItem;
}

/** Reads an attribute of the newest image the record has, without trusting its shape. */
function attributeOf(record: DynamoDBRecord, attribute: string): string | undefined {
  for (const which of ['NewImage', 'OldImage'] as const) {
    const item: unknown = record.dynamodb?.[which];
    if (typeof item !== 'object' || item === null) continue;
    const value: unknown = (item as Record<string, unknown>)[attribute];
    if (typeof value === 'object' && value !== null) {
      const text = readText(value as WireValue);
      if (text !== undefined) return text;
    }
  }
  return undefined;
}

const userOf = (record: DynamoDBRecord, deps: SyncDeps) => attributeOf(record, deps.config.payment.user);
const orderOf = (record: DynamoDBRecord, deps: SyncDeps) => attributeOf(record, deps.config.payment.id);
const sequenceOf = (record: DynamoDBRecord) => record.dynamodb?.SequenceNumber;

/**
 * Chains the records of each user in batch order. Each record's task starts once the previous
 * record of its user has finished; if that one failed, the task does not run and the record
 * fails with EarlierRecordFailedError. Records without a user id form a chain of their own.
 * Slots are found by record identity (the batch processor hands over the event's own records),
 * one slot per occurrence, so even a record listed twice gets its own place in the chain.
 */
class UserSequencer {
  private readonly slots = new Map<DynamoDBRecord, Array<{ after: Promise<void> | undefined; done: Deferred }>>();

  constructor(records: readonly DynamoDBRecord[], userOf: (record: DynamoDBRecord) => string | undefined) {
    const lastOfUser = new Map<string, Promise<void>>();
    for (const record of records) {
      const done = deferred();
      const user = userOf(record);
      const after = user === undefined ? undefined : lastOfUser.get(user);
      if (user !== undefined) lastOfUser.set(user, done.promise);
      const slots = this.slots.get(record) ?? [];
      slots.push({ after, done });
      this.slots.set(record, slots);
    }
  }

  async run(record: DynamoDBRecord, task: () => Promise<void>): Promise<void> {
    const slot = this.slots.get(record)?.shift();
    try {
      await slot?.after?.catch(() => {
        throw new EarlierRecordFailedError(sequenceOf(record));
      });
      await task();
      slot?.done.resolve();
    } catch (error) {
      slot?.done.reject(error);
      throw error;
    }
  }
}

interface Deferred {
  readonly promise: Promise<void>;
  resolve(): void;
  reject(error: unknown): void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Settled whether or not a later record waits on it.
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}
