import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import type { DiscardCondition, StreamFailureMessage } from './failure-destination';
import { matchesFilters } from './filter-pattern';
import type { FilterPattern } from './filter-pattern';
import type { ShardLog } from './shard-log';

/** The function the mapping invokes: the stream Lambda's `handler`. */
export type StreamHandler = (event: DynamoDBStreamEvent) => Promise<DynamoDBBatchResponse | void>;

/** The event source mapping settings Lambda has for a DynamoDB stream (same names, same meaning). */
export interface EventSourceMappingSettings {
  readonly batchSize: number;
  readonly maximumBatchingWindowInSeconds: number;
  /** -1: retry until the record expires. */
  readonly maximumRetryAttempts: number;
  /** -1: records never expire (the stream's 24 hours do, in AWS). */
  readonly maximumRecordAgeInSeconds: number;
  readonly bisectBatchOnFunctionError: boolean;
  /** FunctionResponseTypes ReportBatchItemFailures: without it a returned response is ignored. */
  readonly reportBatchItemFailures: boolean;
  /** FilterCriteria patterns; records matching none are dropped before batching. */
  readonly filters: readonly FilterPattern[];
}

/** Lambda's defaults for a DynamoDB stream event source mapping. */
export const LAMBDA_DEFAULT_SETTINGS: EventSourceMappingSettings = {
  batchSize: 100,
  maximumBatchingWindowInSeconds: 0,
  maximumRetryAttempts: -1,
  maximumRecordAgeInSeconds: -1,
  bisectBatchOnFunctionError: false,
  reportBatchItemFailures: false,
  filters: [],
};

export interface InvocationReport {
  readonly records: readonly DynamoDBRecord[];
  readonly outcome: 'success' | 'partial-failure' | 'error';
  /** Identifiers the function reported in batchItemFailures. */
  readonly batchItemFailures: readonly string[];
  readonly error?: unknown;
}

export interface FailureDestination {
  send(message: StreamFailureMessage): Promise<void>;
}

export interface EventSourceMappingOptions extends Partial<EventSourceMappingSettings> {
  readonly log: ShardLog;
  readonly handler: StreamHandler;
  /** Where discarded batches are described; without one they are dropped, as in Lambda. */
  readonly failureDestination?: FailureDestination;
  readonly functionArn?: string;
  /** Pause before retrying a failed batch, so a failing handler does not spin. */
  readonly retryDelayMs?: number;
  /** Clock for record age; a test may move it instead of waiting. */
  readonly now?: () => number;
  /** Called after every invocation, for tests and the demo. */
  readonly onInvocation?: (report: InvocationReport) => void;
}

export class InvalidMappingSettingsError extends Error {
  override readonly name = 'InvalidMappingSettingsError';
  constructor(readonly problems: readonly string[]) {
    super(`Invalid event source mapping settings: ${problems.join('; ')}`);
  }
}

export class EventSourceMappingStoppedError extends Error {
  override readonly name = 'EventSourceMappingStoppedError';
  constructor() {
    super('The event source mapping was stopped before the stream was processed');
  }
}

interface ResponseContext {
  readonly statusCode: number;
  readonly executedVersion: string;
  readonly functionError?: string;
}

/** Records on their way to the function: a fresh batch, a retry of its failed rest, or a bisected half. */
interface PendingBatch {
  readonly records: DynamoDBRecord[];
  readonly retries: number;
  readonly invokeCount: number;
  readonly lastResponse?: ResponseContext;
}

interface InvocationResult {
  /** Index of the first record to retry; undefined when the whole batch succeeded. */
  readonly failedFrom?: number;
  readonly functionError: boolean;
  readonly response: ResponseContext;
}

/**
 * Lambda's poller for one shard, in process. It delivers the shard log in order, one batch
 * at a time, and follows Lambda's rules for a stream source:
 * - records matching no filter are dropped (and never count towards a batch);
 * - a batch waits up to the batching window to fill up;
 * - with ReportBatchItemFailures, records before the lowest failed sequence number are
 *   checkpointed and the rest is retried; an unknown or empty identifier fails the whole batch;
 * - a thrown error fails the whole batch, which is bisected first when configured (bisecting
 *   does not use up retries);
 * - after maximumRetryAttempts retries, or once records are older than maximumRecordAgeInSeconds,
 *   the records are skipped and their position is sent to the on-failure destination.
 */
export class LocalEventSourceMapping {
  readonly settings: EventSourceMappingSettings;
  private readonly log: ShardLog;
  private readonly options: EventSourceMappingOptions;
  private readonly now: () => number;
  private readonly functionArn: string;
  /** Index in the log of the first record not yet taken into a batch. */
  private position = 0;
  private readonly work: PendingBatch[] = [];
  private parked = false;
  private signaled = false;
  private release: (() => void) | undefined;
  private stopped = false;
  private failure: unknown;
  private idleWaiters: Array<{ resolve: () => void; reject: (error: unknown) => void }> = [];
  private readonly unsubscribe: () => void;
  private readonly loop: Promise<void>;

  constructor(options: EventSourceMappingOptions) {
    this.options = options;
    this.log = options.log;
    this.settings = validated({
      batchSize: options.batchSize ?? LAMBDA_DEFAULT_SETTINGS.batchSize,
      maximumBatchingWindowInSeconds:
        options.maximumBatchingWindowInSeconds ?? LAMBDA_DEFAULT_SETTINGS.maximumBatchingWindowInSeconds,
      maximumRetryAttempts: options.maximumRetryAttempts ?? LAMBDA_DEFAULT_SETTINGS.maximumRetryAttempts,
      maximumRecordAgeInSeconds: options.maximumRecordAgeInSeconds ?? LAMBDA_DEFAULT_SETTINGS.maximumRecordAgeInSeconds,
      bisectBatchOnFunctionError: options.bisectBatchOnFunctionError ?? LAMBDA_DEFAULT_SETTINGS.bisectBatchOnFunctionError,
      reportBatchItemFailures: options.reportBatchItemFailures ?? LAMBDA_DEFAULT_SETTINGS.reportBatchItemFailures,
      filters: options.filters ?? LAMBDA_DEFAULT_SETTINGS.filters,
    });
    this.now = options.now ?? Date.now;
    this.functionArn =
      options.functionArn ?? `arn:aws:lambda:${this.log.region}:000000000000:function:payment-sync-stream`;
    this.unsubscribe = this.log.subscribe(() => this.wake());
    this.loop = this.run();
  }

  /** Resolves once every record in the log (including ones written meanwhile) is processed or discarded. */
  idle(): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.stopped) return Promise.reject(new EventSourceMappingStoppedError());
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve, reject) => this.idleWaiters.push({ resolve, reject }));
  }

  /** Stops polling after the invocation in flight, like disabling the mapping. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe();
    this.wake();
    await this.loop;
    this.settleIdleWaiters(new EventSourceMappingStoppedError());
  }

  private isIdle(): boolean {
    return this.parked && this.work.length === 0 && this.position >= this.log.length;
  }

  private wake(): void {
    this.signaled = true;
    this.parked = false;
    const release = this.release;
    this.release = undefined;
    release?.();
  }

  /** Waits for a new record (or stop), or for `timeoutMs` when given. */
  private async nextSignal(timeoutMs?: number): Promise<void> {
    if (!this.signaled) {
      await new Promise<void>((resolve) => {
        this.release = resolve;
        if (timeoutMs !== undefined) setTimeout(resolve, timeoutMs).unref();
      });
    }
    this.release = undefined;
    this.signaled = false;
  }

  private settleIdleWaiters(error?: unknown): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const waiter of waiters) {
      if (error === undefined) waiter.resolve();
      else waiter.reject(error);
    }
  }

  private async run(): Promise<void> {
    try {
      while (!this.stopped) {
        const batch = this.work.shift() ?? (await this.nextFreshBatch());
        if (batch) {
          await this.deliver(batch);
          continue;
        }
        if (this.stopped) break;
        this.parked = true;
        if (this.isIdle()) this.settleIdleWaiters();
        await this.nextSignal();
      }
    } catch (error) {
      this.failure = error;
      this.settleIdleWaiters(error);
    }
  }

  /** The next records from the log that pass the filters, after the batching window. */
  private async nextFreshBatch(): Promise<PendingBatch | undefined> {
    let taken = this.collect();
    const windowMs = this.settings.maximumBatchingWindowInSeconds * 1000;
    if (taken.records.length > 0 && windowMs > 0) {
      const deadline = Date.now() + windowMs;
      while (taken.records.length < this.settings.batchSize && Date.now() < deadline && !this.stopped) {
        await this.nextSignal(deadline - Date.now());
        taken = this.collect();
      }
    }
    this.position = taken.end;
    return taken.records.length > 0 ? { records: taken.records, retries: 0, invokeCount: 0 } : undefined;
  }

  private collect(): { records: DynamoDBRecord[]; end: number } {
    const records: DynamoDBRecord[] = [];
    let end = this.position;
    while (end < this.log.length && records.length < this.settings.batchSize) {
      const record = this.log.at(end) as DynamoDBRecord;
      end += 1;
      if (matchesFilters(this.settings.filters, record)) records.push(record);
    }
    return { records, end };
  }

  private async deliver(pending: PendingBatch): Promise<void> {
    if (pending.retries > 0 && !this.stopped) await sleep(this.options.retryDelayMs ?? 100);
    // Records are in arrival order, so the expired ones are a prefix of the batch.
    const maxAgeMs = this.settings.maximumRecordAgeInSeconds * 1000;
    const now = this.now();
    const fresh =
      maxAgeMs < 0
        ? 0
        : pending.records.findIndex((r) => now - (r.dynamodb?.ApproximateCreationDateTime ?? 0) * 1000 <= maxAgeMs);
    const expiredCount = fresh === -1 ? pending.records.length : fresh;
    if (expiredCount > 0) await this.discard(pending.records.slice(0, expiredCount), 'RecordAgeExceeded', pending);
    const records = pending.records.slice(expiredCount);
    if (records.length === 0) return;

    const invokeCount = pending.invokeCount + 1;
    const result = await this.invoke(records);
    if (result.failedFrom === undefined) return;

    const rest: PendingBatch = {
      records: records.slice(result.failedFrom),
      retries: pending.retries,
      invokeCount,
      lastResponse: result.response,
    };
    if (result.functionError && this.settings.bisectBatchOnFunctionError && rest.records.length > 1) {
      const half = Math.ceil(rest.records.length / 2);
      this.work.unshift(
        { ...rest, records: rest.records.slice(0, half) },
        { ...rest, records: rest.records.slice(half) },
      );
      return;
    }
    const maxRetries = this.settings.maximumRetryAttempts;
    if (maxRetries >= 0 && rest.retries >= maxRetries) {
      await this.discard(rest.records, 'RetryAttemptsExhausted', rest);
      return;
    }
    this.work.unshift({ ...rest, retries: rest.retries + 1 });
  }

  private async invoke(records: DynamoDBRecord[]): Promise<InvocationResult> {
    const report = (outcome: InvocationReport['outcome'], batchItemFailures: string[], error?: unknown) =>
      this.options.onInvocation?.({ records, outcome, batchItemFailures, ...(error !== undefined && { error }) });
    let answer: DynamoDBBatchResponse | void;
    try {
      answer = await this.options.handler({ Records: records });
    } catch (error) {
      report('error', [], error);
      return { failedFrom: 0, functionError: true, response: { ...OK_RESPONSE, functionError: 'Unhandled' } };
    }
    const failures = this.settings.reportBatchItemFailures ? (answer?.batchItemFailures ?? []) : [];
    if (failures.length === 0) {
      report('success', []);
      return { functionError: false, response: OK_RESPONSE };
    }
    const identifiers = failures.map((failure) => failure?.itemIdentifier);
    report('partial-failure', identifiers.map(String));
    const indexes = identifiers.map((id) =>
      typeof id === 'string' && id !== '' ? records.findIndex((r) => r.dynamodb?.SequenceNumber === id) : -1,
    );
    // An identifier that names no record of the batch makes Lambda treat the whole batch as failed.
    const failedFrom = indexes.includes(-1) ? 0 : Math.min(...indexes);
    return { failedFrom, functionError: false, response: OK_RESPONSE };
  }

  private async discard(records: DynamoDBRecord[], condition: DiscardCondition, pending: PendingBatch): Promise<void> {
    const destination = this.options.failureDestination;
    if (!destination) return;
    const first = records[0]?.dynamodb;
    const last = records[records.length - 1]?.dynamodb;
    await destination.send({
      requestContext: {
        requestId: randomUUID(),
        functionArn: this.functionArn,
        condition,
        approximateInvokeCount: pending.invokeCount,
      },
      ...(pending.lastResponse && { responseContext: pending.lastResponse }),
      version: '1.0',
      timestamp: new Date(this.now()).toISOString(),
      DDBStreamBatchInfo: {
        shardId: this.log.shardId,
        startSequenceNumber: first?.SequenceNumber ?? '',
        endSequenceNumber: last?.SequenceNumber ?? '',
        approximateArrivalOfFirstRecord: arrival(first?.ApproximateCreationDateTime),
        approximateArrivalOfLastRecord: arrival(last?.ApproximateCreationDateTime),
        batchSize: records.length,
        streamArn: this.log.streamArn,
      },
    });
  }
}

const OK_RESPONSE: ResponseContext = { statusCode: 200, executedVersion: '$LATEST' };

function arrival(seconds: number | undefined): string {
  return new Date((seconds ?? 0) * 1000).toISOString().replace('.000Z', 'Z');
}

/** Lambda's own limits, so a setting that would not deploy does not pass locally either. */
function validated(settings: EventSourceMappingSettings): EventSourceMappingSettings {
  const problems: string[] = [];
  const within = (name: keyof EventSourceMappingSettings, value: number, min: number, max: number) => {
    if (!Number.isInteger(value) || value < min || value > max) problems.push(`${name} must be ${min}..${max}`);
  };
  within('batchSize', settings.batchSize, 1, 10_000);
  within('maximumBatchingWindowInSeconds', settings.maximumBatchingWindowInSeconds, 0, 300);
  within('maximumRetryAttempts', settings.maximumRetryAttempts, -1, 10_000);
  if (settings.maximumRecordAgeInSeconds !== -1) {
    within('maximumRecordAgeInSeconds', settings.maximumRecordAgeInSeconds, 60, 604_800);
  }
  if (problems.length > 0) throw new InvalidMappingSettingsError(problems);
  return settings;
}
