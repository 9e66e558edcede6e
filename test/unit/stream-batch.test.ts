import type { DynamoDBRecord } from 'aws-lambda';
import { loadConfig } from '../../lambdas/core/config';
import { createSyncDeps } from '../../lambdas/core/deps';
import { WriteConflictError } from '../../lambdas/core/errors';
import { applyPaymentChange } from '../../lambdas/core/jobs/payment-change';
import type { PaymentChange, PaymentChangeOutcome } from '../../lambdas/core/jobs/payment-change';
import { createStreamHandler } from '../../lambdas/stream/stream-batch';
import type { StreamTelemetry } from '../../lambdas/stream/stream-batch';

// The decision itself is core's (tested there and in the integration tests); here it is a
// controllable stand-in so that ordering and failure reporting can be observed exactly.
jest.mock('../../lambdas/core/jobs/payment-change', () => ({ applyPaymentChange: jest.fn() }));
const decide = applyPaymentChange as jest.MockedFunction<typeof applyPaymentChange>;

const NOW = Date.UTC(2026, 0, 1, 12, 0, 0);
const deps = createSyncDeps(loadConfig({ DYNAMODB_PAYMENTS_TABLE: 'p', DYNAMODB_USERS_TABLE: 'u', DYNAMODB_ENDPOINT: 'http://127.0.0.1:9' }), undefined, () => NOW);

function record(sequence: number, orderId: string, userId?: string): DynamoDBRecord {
  return {
    eventName: 'INSERT',
    eventSource: 'aws:dynamodb',
    dynamodb: {
      SequenceNumber: String(sequence),
      ApproximateCreationDateTime: NOW / 1000 - 2,
      Keys: { orderId: { S: orderId } },
      NewImage: { orderId: { S: orderId }, ...(userId && { userId: { S: userId } }), courseId: { S: 'c' }, status: { S: 'settlement' } },
    },
  };
}

function telemetry() {
  const metrics: Record<string, number[]> = {};
  let flushes = 0;
  const sink: StreamTelemetry = {
    logger: { info: () => undefined, warn: () => undefined, error: () => undefined, addContext: () => undefined },
    metrics: {
      addMetric: (name, _unit, value) => (metrics[name] ??= []).push(value),
      publishStoredMetrics: () => void (flushes += 1),
    },
  };
  return { sink, metrics, flushes: () => flushes };
}

const orderOf = (change: PaymentChange) => change.newImage?.orderId?.S as string;

/** A decision that waits until the test releases it, and logs when each one starts and ends. */
function gatedDecisions() {
  const events: string[] = [];
  const gates = new Map<string, { release: () => void; fail: (error: Error) => void }>();
  const started = new Map<string, () => void>();
  const waitStarted = (orderId: string) => new Promise<void>((resolve) => started.set(orderId, resolve));
  decide.mockImplementation((_deps, change) => {
    const orderId = orderOf(change);
    events.push(`start ${orderId}`);
    started.get(orderId)?.();
    return new Promise<PaymentChangeOutcome>((resolve, reject) => {
      gates.set(orderId, {
        release: () => {
          events.push(`end ${orderId}`);
          resolve({ kind: 'granted', userId: 'x', orderId, courseIds: ['c'], before: null, after: { L: [{ S: 'c' }] } });
        },
        fail: (error) => {
          events.push(`fail ${orderId}`);
          reject(error);
        },
      });
    });
  });
  return { events, gates, waitStarted };
}

afterEach(() => decide.mockReset());

describe('stream batch handling', () => {
  it('runs different users in parallel and one user’s records in stream order', async () => {
    const { events, gates, waitStarted } = gatedDecisions();
    const { sink } = telemetry();
    const handler = createStreamHandler(deps, sink);
    const bothStarted = Promise.all([waitStarted('a1'), waitStarted('b1')]);
    const answer = handler({ Records: [record(1, 'a1', 'user-a'), record(2, 'b1', 'user-b'), record(3, 'a2', 'user-a')] });
    await bothStarted;
    expect(events).toEqual(['start a1', 'start b1']); // a2 waits for a1
    const a2Started = waitStarted('a2');
    gates.get('a1')?.release();
    await a2Started;
    gates.get('a2')?.release();
    gates.get('b1')?.release();
    expect(await answer).toEqual({ batchItemFailures: [] });
    expect(events.indexOf('start a2')).toBeGreaterThan(events.indexOf('end a1'));
  });

  it('reports a failed record and holds back the same user’s later records, not other users’', async () => {
    const { events, gates, waitStarted } = gatedDecisions();
    const { sink, metrics } = telemetry();
    const handler = createStreamHandler(deps, sink);
    const started = Promise.all([waitStarted('a1'), waitStarted('b1')]);
    const answer = handler({
      Records: [record(1, 'a1', 'user-a'), record(2, 'b1', 'user-b'), record(3, 'a2', 'user-a'), record(4, 'a3', 'user-a')],
    });
    await started;
    gates.get('a1')?.fail(new WriteConflictError('user-a', 8));
    gates.get('b1')?.release();
    expect(await answer).toEqual({ batchItemFailures: [{ itemIdentifier: '1' }, { itemIdentifier: '3' }, { itemIdentifier: '4' }] });
    expect(events).not.toContain('start a2');
    expect(events).not.toContain('start a3');
    expect(metrics.RecordsFailed).toEqual([3]);
    expect(metrics.GrantsApplied).toEqual([1]);
  });

  it('answers a batch whose every record failed with all of them, instead of throwing', async () => {
    decide.mockRejectedValue(new WriteConflictError('user-a', 8));
    const { sink } = telemetry();
    const answer = await createStreamHandler(deps, sink)({ Records: [record(1, 'a1', 'user-a'), record(2, 'b1', 'user-b')] });
    expect(answer.batchItemFailures.map((failure) => failure.itemIdentifier).sort()).toEqual(['1', '2']);
  });

  it('does not chain records without a user id to each other', async () => {
    const { events, gates, waitStarted } = gatedDecisions();
    const { sink } = telemetry();
    const bothStarted = Promise.all([waitStarted('x1'), waitStarted('x2')]);
    const answer = createStreamHandler(deps, sink)({ Records: [record(1, 'x1'), record(2, 'x2')] });
    await bothStarted;
    expect(events).toEqual(['start x1', 'start x2']);
    gates.get('x1')?.release();
    gates.get('x2')?.release();
    expect(await answer).toEqual({ batchItemFailures: [] });
  });

  it('turns outcomes into counters, publishes every counter once per invocation, and measures lag', async () => {
    const outcomes: PaymentChangeOutcome[] = [
      { kind: 'granted', userId: 'u1', orderId: 'o1', courseIds: ['c'], before: { L: [] }, after: { L: [{ S: 'c' }] } },
      { kind: 'revoked', userId: 'u2', orderId: 'o2', courseIds: ['c'], before: { L: [{ S: 'c' }] }, after: { L: [] } },
      { kind: 'revoke-skipped-by-policy', userId: 'u3', orderId: 'o3', courseIds: ['c'] },
      { kind: 'orphan-payment', userId: 'u4', orderId: 'o4' },
      { kind: 'malformed-payment', userId: undefined, orderId: 'o5', reason: 'no courseId' },
      { kind: 'unknown-status', userId: 'u6', orderId: 'o6', reason: 'status "weird"' },
      { kind: 'no-change', userId: 'u7', orderId: 'o7', reason: 'already listed' },
      { kind: 'ignored', orderId: undefined, reason: 'deleted' },
    ];
    decide.mockImplementation(async (_deps, change) => outcomes[Number(orderOf(change).slice(1)) - 1] as PaymentChangeOutcome);
    const { sink, metrics, flushes } = telemetry();
    const answer = await createStreamHandler(deps, sink)({ Records: outcomes.map((_, i) => record(i + 1, `o${i + 1}`, `u${i + 1}`)) });
    expect(answer).toEqual({ batchItemFailures: [] });
    expect(flushes()).toBe(1);
    expect(metrics).toEqual({
      GrantsApplied: [1],
      RevocationsApplied: [1],
      RevocationsSkippedByPolicy: [1],
      OrphanPayments: [1],
      MalformedRecords: [2],
      RecordsRejected: [0],
      RecordsFailed: [0],
      ProcessingLagMs: Array(8).fill(2000),
    });
  });

  it('counts a record that is not an object as malformed and handles the rest of the batch', async () => {
    decide.mockReset();
    decide.mockResolvedValue({ kind: 'granted', userId: 'u1', orderId: 'o1', courseIds: ['c'] } as unknown as PaymentChangeOutcome);
    const { sink, metrics } = telemetry();
    const event = { Records: [null, record(1, 'o1', 'u1'), 'junk'] } as unknown as Parameters<ReturnType<typeof createStreamHandler>>[0];
    const answer = await createStreamHandler(deps, sink)(event);
    expect(answer).toEqual({ batchItemFailures: [] });
    expect(decide).toHaveBeenCalledTimes(1);
    expect(metrics.MalformedRecords).toEqual([2]);
  });

  it('publishes zeros for an empty batch', async () => {
    const { sink, metrics, flushes } = telemetry();
    expect(await createStreamHandler(deps, sink)({ Records: [] })).toEqual({ batchItemFailures: [] });
    expect(flushes()).toBe(1);
    expect(metrics.GrantsApplied).toEqual([0]);
  });
});
