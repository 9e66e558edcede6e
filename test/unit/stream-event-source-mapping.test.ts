import type { DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  EventSourceMappingStoppedError,
  InvalidMappingSettingsError,
  LocalEventSourceMapping,
} from '../../scripts/local/stream/event-source-mapping';
import type { EventSourceMappingOptions, InvocationReport } from '../../scripts/local/stream/event-source-mapping';
import type { StreamFailureMessage } from '../../scripts/local/stream/failure-destination';
import { ShardLog } from '../../scripts/local/stream/shard-log';

const ids = (records: readonly DynamoDBRecord[]) => records.map((r) => r.dynamodb?.NewImage?.id?.S);
const seq = (record: DynamoDBRecord | undefined) => record?.dynamodb?.SequenceNumber as string;

function write(log: ShardLog, ...names: string[]): DynamoDBRecord[] {
  return names.map(
    (id) =>
      log.append({ keys: { id: { S: id } }, oldImage: undefined, newImage: { id: { S: id }, kind: { S: id.startsWith('skip') ? 'skip' : 'keep' } } }) as DynamoDBRecord,
  );
}

/** A mapping over a fresh log that records every invocation and failure message. */
function setUp(
  handler: (event: DynamoDBStreamEvent) => Promise<DynamoDBBatchResponse | void>,
  settings: Partial<EventSourceMappingOptions> = {},
) {
  const log = new ShardLog({ tableName: 'lms-payments', region: 'ap-southeast-1' });
  const invocations: InvocationReport[] = [];
  const failures: StreamFailureMessage[] = [];
  const mapping = new LocalEventSourceMapping({
    log,
    handler,
    reportBatchItemFailures: true,
    retryDelayMs: 0,
    failureDestination: { send: async (message) => void failures.push(message) },
    onInvocation: (report) => invocations.push(report),
    ...settings,
  });
  const batches = () => invocations.map((report) => ids(report.records));
  return { log, mapping, invocations, failures, batches };
}

const mappings: LocalEventSourceMapping[] = [];
afterEach(async () => {
  await Promise.all(mappings.splice(0).map((mapping) => mapping.stop()));
});
function track<T extends { mapping: LocalEventSourceMapping }>(setup: T): T {
  mappings.push(setup.mapping);
  return setup;
}

describe('local event source mapping', () => {
  it('delivers the shard in order, in batches of at most batchSize', async () => {
    const { log, mapping, batches } = track(setUp(async () => undefined, { batchSize: 2 }));
    write(log, 'a', 'b', 'c', 'd', 'e');
    await mapping.idle();
    expect(batches()).toEqual([['a', 'b'], ['c', 'd'], ['e']]);
    write(log, 'f');
    await mapping.idle();
    expect(batches().flat()).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);
  });

  it('drops records that match no filter before batching', async () => {
    const { log, mapping, batches } = track(
      setUp(async () => undefined, { batchSize: 2, filters: [{ dynamodb: { NewImage: { kind: { S: ['keep'] } } } }] }),
    );
    write(log, 'a', 'skip-1', 'skip-2', 'b', 'skip-3', 'c');
    await mapping.idle();
    expect(batches()).toEqual([['a', 'b'], ['c']]);
  });

  it('checkpoints the records before the lowest failed sequence number and retries from it', async () => {
    let calls = 0;
    const { log, mapping, batches } = track(
      setUp(async (event) => {
        calls += 1;
        // First call: b and d fail; the retry must start at b (the lowest), d included.
        if (calls === 1) return { batchItemFailures: [{ itemIdentifier: seq(event.Records[3]) }, { itemIdentifier: seq(event.Records[1]) }] };
        return { batchItemFailures: [] };
      }),
    );
    write(log, 'a', 'b', 'c', 'd');
    await mapping.idle();
    expect(batches()).toEqual([['a', 'b', 'c', 'd'], ['b', 'c', 'd']]);
  });

  it('treats an identifier that names no record of the batch as a whole-batch failure', async () => {
    let calls = 0;
    const { log, mapping, batches } = track(
      setUp(async () => {
        calls += 1;
        return calls === 1 ? { batchItemFailures: [{ itemIdentifier: '' }] } : undefined;
      }),
    );
    write(log, 'a', 'b');
    await mapping.idle();
    expect(batches()).toEqual([['a', 'b'], ['a', 'b']]);
  });

  it('ignores the response when ReportBatchItemFailures is off', async () => {
    const { log, mapping, batches } = track(
      setUp(async (event) => ({ batchItemFailures: [{ itemIdentifier: seq(event.Records[0]) }] }), {
        reportBatchItemFailures: false,
      }),
    );
    write(log, 'a');
    await mapping.idle();
    expect(batches()).toEqual([['a']]);
  });

  it('retries a thrown batch maximumRetryAttempts times, then sends its position to the failure destination', async () => {
    const { log, mapping, batches, failures } = track(
      setUp(
        async () => {
          throw new Error('boom');
        },
        { maximumRetryAttempts: 2, functionArn: 'arn:aws:lambda:ap-southeast-1:000000000000:function:stream' },
      ),
    );
    const [a, , c] = write(log, 'a', 'b', 'c');
    await mapping.idle();
    expect(batches()).toEqual([['a', 'b', 'c'], ['a', 'b', 'c'], ['a', 'b', 'c']]);
    expect(failures).toHaveLength(1);
    const [message] = failures;
    expect(message).toEqual({
      requestContext: {
        requestId: expect.any(String),
        functionArn: 'arn:aws:lambda:ap-southeast-1:000000000000:function:stream',
        condition: 'RetryAttemptsExhausted',
        approximateInvokeCount: 3,
      },
      responseContext: { statusCode: 200, executedVersion: '$LATEST', functionError: 'Unhandled' },
      version: '1.0',
      timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      DDBStreamBatchInfo: {
        shardId: log.shardId,
        startSequenceNumber: seq(a),
        endSequenceNumber: seq(c),
        approximateArrivalOfFirstRecord: new Date(a!.dynamodb!.ApproximateCreationDateTime! * 1000).toISOString().replace('.000Z', 'Z'),
        approximateArrivalOfLastRecord: new Date(c!.dynamodb!.ApproximateCreationDateTime! * 1000).toISOString().replace('.000Z', 'Z'),
        batchSize: 3,
        streamArn: log.streamArn,
      },
    });
    // The shard moves on: later records are delivered.
    write(log, 'd');
    await mapping.idle();
    expect(batches().at(-1)).toEqual(['d']);
  });

  it('sends only the failing rest of a partially failed batch, without a function error', async () => {
    const { log, mapping, batches, failures } = track(
      setUp(
        async (event) => {
          const b = event.Records.find((r) => r.dynamodb?.NewImage?.id?.S === 'b');
          return { batchItemFailures: b ? [{ itemIdentifier: seq(b) }] : [] };
        },
        { maximumRetryAttempts: 1 },
      ),
    );
    const [, b, c] = write(log, 'a', 'b', 'c');
    await mapping.idle();
    expect(batches()).toEqual([['a', 'b', 'c'], ['b', 'c']]);
    expect(failures).toHaveLength(1);
    expect(failures[0]?.responseContext).toEqual({ statusCode: 200, executedVersion: '$LATEST' });
    expect(failures[0]?.requestContext.approximateInvokeCount).toBe(2);
    expect(failures[0]?.DDBStreamBatchInfo).toMatchObject({ startSequenceNumber: seq(b), endSequenceNumber: seq(c), batchSize: 2 });
  });

  it('bisects a thrown batch to isolate the record that fails, without using up retries', async () => {
    const { log, mapping, batches, failures } = track(
      setUp(
        async (event) => {
          if (ids(event.Records).includes('poison')) throw new Error('cannot process poison');
        },
        { maximumRetryAttempts: 1, bisectBatchOnFunctionError: true },
      ),
    );
    const [, , poison] = write(log, 'a', 'b', 'poison', 'd');
    await mapping.idle();
    expect(batches()).toEqual([
      ['a', 'b', 'poison', 'd'],
      ['a', 'b'],
      ['poison', 'd'],
      ['poison'],
      ['poison'],
      ['d'],
    ]);
    expect(failures.map((f) => [f.DDBStreamBatchInfo.startSequenceNumber, f.DDBStreamBatchInfo.batchSize])).toEqual([[seq(poison), 1]]);
  });

  it('discards records older than maximumRecordAgeInSeconds without invoking the function', async () => {
    const twoHours = 2 * 3600 * 1000;
    const { log, mapping, invocations, failures } = track(
      setUp(async () => undefined, { maximumRecordAgeInSeconds: 3600, now: () => Date.now() + twoHours }),
    );
    write(log, 'a', 'b');
    await mapping.idle();
    expect(invocations).toHaveLength(0);
    expect(failures).toHaveLength(1);
    expect(failures[0]?.requestContext).toMatchObject({ condition: 'RecordAgeExceeded', approximateInvokeCount: 0 });
    expect(failures[0]?.responseContext).toBeUndefined();
    expect(failures[0]?.DDBStreamBatchInfo.batchSize).toBe(2);
  });

  it('waits up to the batching window for a batch to fill', async () => {
    const { log, mapping, batches } = track(setUp(async () => undefined, { batchSize: 3, maximumBatchingWindowInSeconds: 30 }));
    write(log, 'a');
    await sleep(20);
    write(log, 'b');
    await sleep(20);
    write(log, 'c');
    await mapping.idle();
    expect(batches()).toEqual([['a', 'b', 'c']]);
  });

  it('processes one batch at a time', async () => {
    let running = 0;
    let overlapped = false;
    const { log, mapping } = track(
      setUp(
        async () => {
          running += 1;
          overlapped ||= running > 1;
          await sleep(5);
          running -= 1;
        },
        { batchSize: 1 },
      ),
    );
    write(log, 'a', 'b', 'c');
    await mapping.idle();
    expect(overlapped).toBe(false);
  });

  it('stops delivering once stopped, and says so to anyone still waiting', async () => {
    const { log, mapping, batches } = setUp(async () => {
      throw new Error('never succeeds');
    });
    write(log, 'a');
    const waiting = mapping.idle();
    await mapping.stop();
    await expect(waiting).rejects.toThrow(EventSourceMappingStoppedError);
    const delivered = batches().length;
    write(log, 'b');
    await sleep(10);
    expect(batches()).toHaveLength(delivered);
  });

  it('refuses settings Lambda would refuse', () => {
    const log = new ShardLog({ tableName: 't', region: 'ap-southeast-1' });
    const handler = async () => undefined;
    expect(() => new LocalEventSourceMapping({ log, handler, batchSize: 0 })).toThrow(InvalidMappingSettingsError);
    expect(() => new LocalEventSourceMapping({ log, handler, maximumRecordAgeInSeconds: 10 })).toThrow(InvalidMappingSettingsError);
    expect(() => new LocalEventSourceMapping({ log, handler, maximumRetryAttempts: -2 })).toThrow(InvalidMappingSettingsError);
  });
});
