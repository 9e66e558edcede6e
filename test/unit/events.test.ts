import {
  isScheduledEvent,
  ManualSyncEventSchema,
  ManualValidateEventSchema,
  MAX_USER_IDS_PER_CALL,
  parseEvent,
  ScheduledEventSchema,
} from '../../lambdas/commons/events';
import { InvalidEventError } from '../../lambdas/core/errors';

/** The InvalidEventError parseEvent throws, or a failure when it accepts the event. */
function rejection(schema: Parameters<typeof parseEvent>[0], event: unknown): InvalidEventError {
  try {
    parseEvent(schema, event);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidEventError);
    return error as InvalidEventError;
  }
  throw new Error(`accepted ${JSON.stringify(event)}`);
}

const ids = (n: number) => Array.from({ length: n }, (_, i) => `user-${i}`);

/** What an EventBridge schedule rule delivers to its target. */
const SCHEDULED = {
  version: '0',
  id: '53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa',
  'detail-type': 'Scheduled Event',
  source: 'aws.events',
  account: '123456789012',
  time: '2025-03-01T12:00:00Z',
  region: 'ap-southeast-1',
  resources: ['arn:aws:events:ap-southeast-1:123456789012:rule/payment-sync-hourly'],
  detail: {},
};

describe('manual sync event', () => {
  test.each([
    [{ userIds: ['u1'] }],
    [{ userIds: ['u1', 'u2'], dryRun: true }],
    [{ userIds: ['u1'], dryRun: false }],
  ])('%j is accepted as it is', (event) => {
    expect(parseEvent(ManualSyncEventSchema, event)).toEqual(event);
  });

  test(`exactly ${MAX_USER_IDS_PER_CALL} ids are accepted`, () => {
    expect(MAX_USER_IDS_PER_CALL).toBe(1000);
    expect(parseEvent(ManualSyncEventSchema, { userIds: ids(1000) }).userIds).toHaveLength(1000);
  });

  test('more than 1000 ids: rejected, pointing to the full run', () => {
    const error = rejection(ManualSyncEventSchema, { userIds: ids(1001) });
    expect(error.problems).toHaveLength(1);
    expect(error.problems[0]).toMatch(/^userIds: /);
    expect(error.problems[0]).toContain('1000');
    expect(error.message).toMatch(/full reconciliation/);
    expect(error.message).toMatch(/payment-fix/);
  });

  test.each<[string, unknown, string]>([
    ['no userIds', {}, 'userIds'],
    ['userIds not a list', { userIds: 'u1' }, 'userIds'],
    ['an empty list', { userIds: [] }, 'userIds'],
    ['a blank id', { userIds: ['u1', '  '] }, 'userIds.1'],
    ['a number id', { userIds: [7] }, 'userIds.0'],
    ['dryRun not a boolean', { userIds: ['u1'], dryRun: 'yes' }, 'dryRun'],
    ['dryRun as a number', { userIds: ['u1'], dryRun: 1 }, 'dryRun'],
  ])('%s → names %s', (_, event, field) => {
    const error = rejection(ManualSyncEventSchema, event);
    expect(error.problems).toEqual([expect.stringMatching(new RegExp(`^${field.replace('.', '\\.')}: `))]);
    expect(error.message).toContain(field);
    expect(error.name).toBe('InvalidEventError');
  });

  test('unknown keys are rejected, naming them (a typo must not silently drop dryRun)', () => {
    const error = rejection(ManualSyncEventSchema, { userIds: ['u1'], dryrun: true });
    expect(error.problems).toEqual([expect.stringContaining('dryrun')]);
    const deep = rejection(ManualSyncEventSchema, { userIds: ['u1'], deep: true });
    expect(deep.message).toContain('deep');
  });

  test('every bad field is named at once', () => {
    const error = rejection(ManualSyncEventSchema, { userIds: ['', 'u2', 5], dryRun: 'no', extra: 1 });
    expect(error.problems).toHaveLength(4);
    for (const field of ['userIds.0', 'userIds.2', 'dryRun', 'extra']) expect(error.message).toContain(field);
  });

  test.each([null, undefined, 'sync', 42, ['u1']])('a non-object event (%j) is named as the event', (event) => {
    const error = rejection(ManualSyncEventSchema, event);
    expect(error.problems).toEqual([expect.stringMatching(/^event: /)]);
  });

  test('a scheduled event is not a manual sync', () => {
    expect(rejection(ManualSyncEventSchema, SCHEDULED).problems.length).toBeGreaterThan(0);
  });
});

describe('manual validate event', () => {
  test.each([[{}], [{ deep: true }], [{ userIds: ['u1'] }], [{ userIds: ['u1', 'u2'], deep: false }]])('%j is accepted', (event) => {
    expect(parseEvent(ManualValidateEventSchema, event)).toEqual(event);
  });

  test('more than 1000 ids: rejected, pointing to the full run', () => {
    expect(parseEvent(ManualValidateEventSchema, { userIds: ids(1000) }).userIds).toHaveLength(1000);
    const error = rejection(ManualValidateEventSchema, { userIds: ids(1001) });
    expect(error.problems).toEqual([expect.stringMatching(/^userIds: .*full reconciliation/)]);
  });

  test.each<[string, unknown, string]>([
    ['deep not a boolean', { deep: 'true' }, 'deep'],
    ['an empty list', { userIds: [] }, 'userIds'],
    ['a blank id', { userIds: [''] }, 'userIds.0'],
    ['an unknown key', { dryRun: true }, 'dryRun'],
  ])('%s → names %s', (_, event, field) => {
    const error = rejection(ManualValidateEventSchema, event);
    expect(error.problems).toHaveLength(1);
    expect(error.message).toContain(field);
  });

  test('a validate event cannot ask for writes', () => {
    expect(rejection(ManualValidateEventSchema, { userIds: ['u1'], dryRun: false }).message).toContain('dryRun');
    expect(rejection(ManualValidateEventSchema, { fix: true }).message).toContain('fix');
  });
});

describe('scheduled event', () => {
  test('an EventBridge schedule is recognised', () => {
    expect(isScheduledEvent(SCHEDULED)).toBe(true);
    expect(ScheduledEventSchema.parse(SCHEDULED)).toEqual(SCHEDULED);
  });

  test.each<[string, unknown]>([
    ['a manual sync', { userIds: ['u1'] }],
    ['an empty event', {}],
    ['another detail type', { ...SCHEDULED, 'detail-type': 'Object Created' }],
    ['another source', { ...SCHEDULED, source: 'aws.s3' }],
    ['null', null],
    ['a string', 'Scheduled Event'],
  ])('%s is not a scheduled event', (_, event) => {
    expect(isScheduledEvent(event)).toBe(false);
  });
});
