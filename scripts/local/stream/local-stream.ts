import { STREAM_EVENT_SOURCE_SETTINGS } from '../../../lambdas/stream/event-source-settings';
import { STREAM_FILTER_PATTERNS } from '../../../lambdas/stream/filter-criteria';
import { LOCAL_REGION } from '../embedded-dynamodb';
import { startCaptureProxy } from './capture-proxy';
import type { FaultRule, InjectedFault } from './capture-proxy';
import { LocalEventSourceMapping } from './event-source-mapping';
import type { EventSourceMappingSettings, InvocationReport, StreamHandler } from './event-source-mapping';
import { JsonlFailureDestination } from './failure-destination';
import type { ShardLog } from './shard-log';
import type { ChangeLog } from './change-log';

export interface LocalStreamOptions {
  /** The dynalite endpoint. */
  readonly upstreamEndpoint: string;
  readonly paymentsTable: string;
  /** The stream Lambda's handler (or anything with its signature). */
  readonly handler: StreamHandler;
  /** JSONL file standing in for the on-failure queue; discarded batches are dropped without it. */
  readonly failureFile?: string;
  readonly region?: string;
  /** Overrides of the deployed mapping settings (STREAM_EVENT_SOURCE_SETTINGS, STREAM_FILTER_PATTERNS). */
  readonly settings?: Partial<EventSourceMappingSettings>;
  readonly retryDelayMs?: number;
  readonly now?: () => number;
  readonly onInvocation?: (report: InvocationReport) => void;
  /** Also record every write to both tables (the hourly sync's local change source). */
  readonly changeLog?: ChangeLog;
  readonly usersTable?: string;
}

export interface LocalStream {
  /** The DynamoDB endpoint whose payments writes are streamed: give it to the webhook-style writers. */
  readonly endpoint: string;
  readonly log: ShardLog;
  readonly mapping: LocalEventSourceMapping;
  injectFault(rule: FaultRule): InjectedFault;
  /** Resolves when every payments write so far has been delivered (or sent to the failure file). */
  idle(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * DynamoDB Streams + Lambda event source mapping, locally: a capture proxy in front of
 * dynalite turns payments writes into stream records, and a local mapping delivers them to
 * the handler with the deployed settings and filters.
 */
export async function startLocalStream(options: LocalStreamOptions): Promise<LocalStream> {
  const region = options.region ?? LOCAL_REGION;
  const proxy = await startCaptureProxy({
    upstreamEndpoint: options.upstreamEndpoint,
    tableName: options.paymentsTable,
    region,
    ...(options.changeLog ? { changeLog: options.changeLog, usersTableName: options.usersTable } : {}),
  });
  const mapping = new LocalEventSourceMapping({
    ...STREAM_EVENT_SOURCE_SETTINGS,
    filters: STREAM_FILTER_PATTERNS,
    ...options.settings,
    log: proxy.log,
    handler: options.handler,
    ...(options.failureFile && { failureDestination: new JsonlFailureDestination(options.failureFile) }),
    ...(options.retryDelayMs !== undefined && { retryDelayMs: options.retryDelayMs }),
    ...(options.now && { now: options.now }),
    ...(options.onInvocation && { onInvocation: options.onInvocation }),
  });
  return {
    endpoint: proxy.endpoint,
    log: proxy.log,
    mapping,
    injectFault: (rule) => proxy.injectFault(rule),
    idle: () => mapping.idle(),
    async stop() {
      await mapping.stop();
      await proxy.close();
    },
  };
}
