import type { DynamoDBRecord } from 'aws-lambda';
import { STREAM_FILTER_PATTERNS, streamFilterPatterns, FilterPatternTooLongError } from '../../lambdas/stream/filter-criteria';
import { matchesFilters, UnsupportedFilterPatternError } from '../../scripts/local/stream/filter-pattern';

function record(eventName: 'INSERT' | 'MODIFY' | 'REMOVE', newStatus?: string, attr = 'status'): DynamoDBRecord {
  const image = (status: string) => ({ orderId: { S: 'o-1' }, userId: { S: 'u-1' }, [attr]: { S: status } });
  return {
    eventName,
    eventSource: 'aws:dynamodb',
    dynamodb: {
      Keys: { orderId: { S: 'o-1' } },
      ...(newStatus !== undefined && { NewImage: image(newStatus) }),
      OldImage: image('pending'),
      SequenceNumber: '100000000000000000001',
    },
  };
}

describe('local filter matcher (the subset of Lambda event filtering the mapping uses)', () => {
  it('matches nested objects only when every key matches, and leaf arrays when any value does', () => {
    const pattern = { a: ['x', 'y'], b: { c: [1] } };
    expect(matchesFilters([pattern], { a: 'y', b: { c: 1 }, extra: true })).toBe(true);
    expect(matchesFilters([pattern], { a: 'z', b: { c: 1 } })).toBe(false);
    expect(matchesFilters([pattern], { a: 'x', b: { c: 2 } })).toBe(false);
    expect(matchesFilters([pattern], { a: 'x' })).toBe(false);
    expect(matchesFilters([pattern], { a: 'x', b: 'not an object' })).toBe(false);
  });

  it('compares strings case-sensitively and by type', () => {
    expect(matchesFilters([{ s: ['paid'] }], { s: 'PAID' })).toBe(false);
    expect(matchesFilters([{ n: [1] }], { n: '1' })).toBe(false);
  });

  it('matches an array value when any element matches', () => {
    expect(matchesFilters([{ tags: ['b'] }], { tags: ['a', 'b'] })).toBe(true);
    expect(matchesFilters([{ tags: ['c'] }], { tags: ['a', 'b'] })).toBe(false);
  });

  it('ORs several patterns; no patterns pass everything', () => {
    expect(matchesFilters([{ a: ['1'] }, { b: ['2'] }], { b: '2' })).toBe(true);
    expect(matchesFilters([], { anything: 1 })).toBe(true);
  });

  it('refuses operators it does not implement instead of guessing', () => {
    expect(() => matchesFilters([{ s: [{ prefix: 'pa' }] }], { s: 'paid' })).toThrow(UnsupportedFilterPatternError);
    expect(() => matchesFilters([{ s: 'paid' }], { s: 'paid' })).toThrow(UnsupportedFilterPatternError);
  });
});

describe('stream filter criteria', () => {
  const kept = (r: DynamoDBRecord) => matchesFilters(STREAM_FILTER_PATTERNS, r);

  it.each([
    'settlement', 'SETTLEMENT', 'Settlement', 'success', 'Paid', 'COMPLETED',
    'capture', 'Capture', 'refund', 'REFUND', 'chargeback', 'Chargeback', 'deny', 'DENY',
  ])('keeps INSERT and MODIFY whose new status is %s', (status) => {
    expect(kept(record('INSERT', status))).toBe(true);
    expect(kept(record('MODIFY', status))).toBe(true);
  });

  it.each(['pending', 'PENDING', 'authorize', 'expire', 'cancel', 'failure', 'partial_refund', 'settled', 'sEttlement'])(
    'discards a new status of %s',
    (status) => {
      expect(kept(record('INSERT', status))).toBe(false);
      expect(kept(record('MODIFY', status))).toBe(false);
    },
  );

  it('discards REMOVE events and records without a string status', () => {
    expect(kept(record('REMOVE'))).toBe(false);
    const numeric = record('MODIFY', 'settlement');
    (numeric.dynamodb!.NewImage as Record<string, unknown>).status = { N: '1' };
    expect(kept(numeric)).toBe(false);
  });

  it('follows overridden statuses and the status attribute', () => {
    const patterns = streamFilterPatterns(['lunas'], ['refund'], 'paymentStatus');
    expect(matchesFilters(patterns, record('INSERT', 'LUNAS', 'paymentStatus'))).toBe(true);
    expect(matchesFilters(patterns, record('INSERT', 'Capture', 'paymentStatus'))).toBe(true);
    expect(matchesFilters(patterns, record('INSERT', 'settlement', 'paymentStatus'))).toBe(false);
    expect(matchesFilters(patterns, record('INSERT', 'lunas', 'status'))).toBe(false);
  });

  it('stays within Lambda’s pattern size limit, and says so when overrides would not', () => {
    for (const pattern of STREAM_FILTER_PATTERNS) expect(JSON.stringify(pattern).length).toBeLessThanOrEqual(4096);
    const many = Array.from({ length: 200 }, (_, i) => `status-number-${i}`);
    expect(() => streamFilterPatterns(many, ['refund'], 'status')).toThrow(FilterPatternTooLongError);
  });
});
