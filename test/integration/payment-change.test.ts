import { createSyncDeps, type SyncDeps } from '../../lambdas/core/deps';
import { applyPaymentChange } from '../../lambdas/core/jobs/payment-change';
import type { WireItem } from '../../lambdas/core/rules/attribute-values';
import { startTestTables, type TestTables } from '../support/local-tables';

const image = (status: string, courseId = 'c2'): WireItem => ({ orderId: { S: 'o2' }, userId: { S: 'u1' }, courseId: { S: courseId }, status: { S: status } });

describe('the stream decision (applyPaymentChange) against dynalite', () => {
  let tables: TestTables;
  let deps: SyncDeps;
  beforeEach(async () => {
    tables = await startTestTables({ REVOKE_ON_REFUND: 'true' });
    deps = createSyncDeps(tables.config, tables.client);
    await tables.putUser('u1', { L: [{ S: 'c1' }] });
  });
  afterEach(() => tables.close());

  test('a grant carries the list before and after, for the audit log; a replay changes nothing', async () => {
    const change = { eventName: 'MODIFY' as const, oldImage: image('pending'), newImage: image('settlement') };
    expect(await applyPaymentChange(deps, change)).toEqual({
      kind: 'granted',
      userId: 'u1',
      orderId: 'o2',
      courseIds: ['c2'],
      before: { L: [{ S: 'c1' }] },
      after: { L: [{ S: 'c1' }, { S: 'c2' }] },
    });
    expect(await applyPaymentChange(deps, change)).toMatchObject({ kind: 'no-change' });
    expect(await tables.userCourses('u1')).toEqual({ L: [{ S: 'c1' }, { S: 'c2' }] });
  });

  test('a refund under the policy revokes with before and after; the index lagging behind the record does not matter', async () => {
    await tables.putUser('u1', { L: [{ S: 'c1' }, { S: 'c2' }] });
    // The table (and so the index) still says settlement: the record's new image is the truth for its order.
    await tables.putPayment('o2', { userId: 'u1', courseId: 'c2', status: 'settlement' });
    const outcome = await applyPaymentChange(deps, { eventName: 'MODIFY', oldImage: image('settlement'), newImage: image('refund') });
    expect(outcome).toMatchObject({ kind: 'revoked', courseIds: ['c2'], before: { L: [{ S: 'c1' }, { S: 'c2' }] }, after: { L: [{ S: 'c1' }] } });
  });

  test('deletions, unknown statuses and unreadable payments write nothing and say why', async () => {
    const before = await tables.dump('users');
    expect(await applyPaymentChange(deps, { eventName: 'REMOVE', oldImage: image('settlement') })).toMatchObject({ kind: 'ignored' });
    expect(await applyPaymentChange(deps, { eventName: 'INSERT', newImage: image('weird') })).toMatchObject({ kind: 'unknown-status' });
    expect(await applyPaymentChange(deps, { eventName: 'INSERT', newImage: { orderId: { S: 'o3' }, status: { S: 'settlement' } } })).toMatchObject({
      kind: 'malformed-payment',
      reason: 'no userId, no courseId',
    });
    expect(await tables.dump('users')).toEqual(before);
  });

  test('a grant for a user whose courses attribute is not a list says so, and writes nothing', async () => {
    await tables.putUser('u1', { S: 'c1,c2' });
    const outcome = await applyPaymentChange(deps, { eventName: 'INSERT', newImage: image('settlement') });
    expect(outcome).toMatchObject({ kind: 'no-change', reason: expect.stringMatching(/not a list \(S\)/) });
    expect(await tables.userCourses('u1')).toEqual({ S: 'c1,c2' });
  });
});
