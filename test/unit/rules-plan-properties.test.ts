/**
 * Properties of the fix plan over generated users: lists in both formats with malformed entries
 * and unknown fields, payments of every class (some in flight, some reversed on the stream),
 * every scope and policy.
 */
import fc from 'fast-check';
import type { WireValue } from '../../lambdas/core/rules/attribute-values';
import { decodeCourses, encodeCourses, entryFormat, listedCourseIds, type CourseEntry, type CoursesList } from '../../lambdas/core/rules/courses-list';
import { collectEvidence, FULL_SCOPE, planUser, type CourseEvidence, type UserPlan } from '../../lambdas/core/rules/plan';
import { planCaseArb, policyArb, type PlanCase } from '../support/arbitraries';

const RUNS = { numRuns: 400 };

interface Planned {
  readonly list: CoursesList;
  readonly evidence: CourseEvidence;
  readonly plan: UserPlan;
  /** The attribute as it was before planning, deep-copied. */
  readonly before: WireValue | undefined;
}

function run(c: PlanCase): Planned {
  const before = c.attribute === undefined ? undefined : structuredClone(c.attribute);
  const list = decodeCourses(c.attribute);
  const evidence = collectEvidence(c.payments, c.evidence);
  return { list, evidence, plan: planUser('u1', list, evidence, c.scope, c.policy), before };
}

const originals = (list: CoursesList): readonly CourseEntry[] => (list.state === 'list' ? list.entries : []);
/** The list after the plan: what it writes, or what is there when it writes nothing. */
const after = ({ list, plan }: Planned): readonly CourseEntry[] => plan.next ?? originals(list);
const ids = (entries: readonly CourseEntry[]): string[] => entries.flatMap((entry) => (entry.kind === 'malformed' ? [] : [entry.courseId]));
const reapply = (c: PlanCase, p: Planned, scope = c.scope, policy = c.policy): UserPlan =>
  planUser('u1', decodeCourses(encodeCourses(p.plan.next!)), p.evidence, scope, policy);

describe('plan properties', () => {
  test('applying a plan twice equals applying it once', () => {
    fc.assert(
      fc.property(planCaseArb, (c) => {
        const p = run(c);
        if (p.plan.next === undefined) return;
        const again = reapply(c, p);
        expect(again.next).toBeUndefined();
        expect(again.added).toEqual([]);
        expect(again.removed).toEqual([]);
        expect(again.duplicatesRemoved).toEqual([]);
        expect(again.issues.filter((issue) => issue.fix !== 'none')).toEqual([]);
      }),
      RUNS,
    );
  });

  test('a plan writes exactly when some issue has a fix', () => {
    fc.assert(
      fc.property(planCaseArb, (c) => {
        const { plan } = run(c);
        const fixing = plan.issues.filter((issue) => issue.fix !== 'none');
        expect(plan.next !== undefined).toBe(fixing.length > 0);
        expect(plan.added).toEqual(fixing.filter((issue) => issue.fix === 'grant').map((issue) => issue.courseId));
        expect(plan.duplicatesRemoved).toEqual(fixing.filter((issue) => issue.fix === 'remove-duplicate').map((issue) => issue.courseId));
        expect(plan.removed).toEqual(fixing.filter((issue) => issue.fix === 'revoke').map((issue) => issue.courseId));
      }),
      RUNS,
    );
  });

  test('after a fix, a FULL_SCOPE validation finds no missing and no duplicate', () => {
    fc.assert(
      fc.property(planCaseArb, (c) => {
        const p = run({ ...c, scope: FULL_SCOPE });
        const fixed = p.plan.next === undefined ? p.list : decodeCourses(encodeCourses(p.plan.next));
        const validation = planUser('u1', fixed, p.evidence, FULL_SCOPE, c.policy);
        expect(validation.issues.filter((issue) => issue.kind === 'missing' || issue.kind === 'duplicate')).toEqual([]);
        expect(validation.next).toBeUndefined();
        if (fixed.state !== 'unsupported') {
          const listed = new Set(listedCourseIds(fixed));
          for (const courseId of p.evidence.paid.keys()) expect(listed.has(courseId)).toBe(true);
          expect(listed.size).toBe(listedCourseIds(fixed).length);
        }
      }),
      RUNS,
    );
  });

  test('nothing the sync does not own changes: kept entries are the very values read, malformed ones all survive in order', () => {
    fc.assert(
      fc.property(planCaseArb, (c) => {
        const p = run(c);
        // the input is never mutated
        expect(c.attribute).toEqual(p.before);
        if (p.list.state === 'unsupported') expect(p.plan.next).toBeUndefined();
        const next = p.plan.next;
        if (next === undefined) return;
        const read = originals(p.list).map((entry) => entry.raw);
        const beforeL = p.before?.L ?? [];
        const keptCount = next.length - p.plan.added.length;
        // kept entries first: each is one of the entries read (same object, same content), in their order
        let cursor = 0;
        for (const entry of next.slice(0, keptCount)) {
          const at = read.indexOf(entry.raw, cursor);
          expect(at).toBeGreaterThanOrEqual(cursor);
          expect(entry.raw).toEqual(beforeL[at]);
          expect(JSON.stringify(entry.raw)).toBe(JSON.stringify(beforeL[at]));
          cursor = at + 1;
        }
        // malformed entries: all of them, in order, untouched
        const malformedBefore = originals(p.list).filter((entry) => entry.kind === 'malformed').map((entry) => entry.raw);
        const malformedAfter = next.filter((entry) => entry.kind === 'malformed').map((entry) => entry.raw);
        expect(malformedAfter).toHaveLength(malformedBefore.length);
        malformedAfter.forEach((raw, i) => expect(raw).toBe(malformedBefore[i]));
        // new entries last, one per added course, in the list's format
        const format = entryFormat(p.list, c.policy.format);
        const added = next.slice(keptCount);
        expect(added.map((entry) => entry.kind === 'malformed' ? undefined : entry.courseId)).toEqual(p.plan.added);
        for (const entry of added) {
          expect(entry.kind).toBe(format === 'ids' ? 'id' : 'object');
          if (entry.kind === 'object') {
            expect(entry.raw.M?.orderId?.S).toBe(p.evidence.paid.get(entry.courseId)![0]);
            expect(entry.raw.M?.purchasedAt?.S).toBe(c.policy.now);
          }
        }
        // the wire value written is exactly kept raws + new raws
        expect(encodeCourses(next)).toEqual({ L: next.map((entry) => entry.raw) });
      }),
      RUNS,
    );
  });

  test('every entry dropped is a later duplicate (dedupe scope) or a revoked course (policy on)', () => {
    fc.assert(
      fc.property(planCaseArb, (c) => {
        const p = run(c);
        if (p.plan.next === undefined) return;
        const kept = new Set(p.plan.next.map((entry) => entry.raw));
        const seen = new Set<string>();
        let duplicates = 0;
        for (const entry of originals(p.list)) {
          const dropped = !kept.has(entry.raw);
          if (entry.kind === 'malformed') {
            expect(dropped).toBe(false);
            continue;
          }
          const later = seen.has(entry.courseId);
          seen.add(entry.courseId);
          if (!dropped) continue;
          const revoked = p.plan.removed.includes(entry.courseId);
          expect((later && c.scope.dedupe) || revoked).toBe(true);
          if (later && c.scope.dedupe) duplicates += 1;
        }
        expect(p.plan.duplicatesRemoved).toHaveLength(duplicates);
      }),
      RUNS,
    );
  });

  test('with the revoke policy off nothing is removed except duplicates', () => {
    fc.assert(
      fc.property(
        planCaseArb.map((c) => ({ ...c, policy: { ...c.policy, revokeOnRefund: false } })),
        (c) => {
          const p = run(c);
          expect(p.plan.removed).toEqual([]);
          expect(p.plan.issues.filter((issue) => issue.fix === 'revoke')).toEqual([]);
          const before = ids(originals(p.list));
          const afterIds = ids(after(p));
          // every course listed before is still listed
          for (const courseId of before) expect(afterIds).toContain(courseId);
          // the only entries that go are duplicates, one per duplicatesRemoved
          const keptOriginals = after(p).length - p.plan.added.length;
          expect(originals(p.list).length - keptOriginals).toBe(p.plan.duplicatesRemoved.length);
          if (!c.scope.dedupe) expect(keptOriginals).toBe(originals(p.list).length);
        },
      ),
      RUNS,
    );
  });

  test('a course with any paid payment is never removed (in flight, reversed or refunded elsewhere)', () => {
    fc.assert(
      fc.property(planCaseArb, (c) => {
        const p = run(c);
        const paid = new Set(c.payments.filter((payment) => payment.classification === 'paid').flatMap((payment) => payment.courseIds));
        const afterIds = new Set(ids(after(p)));
        for (const courseId of ids(originals(p.list))) {
          if (!paid.has(courseId)) continue;
          expect(afterIds.has(courseId)).toBe(true);
          expect(p.plan.removed).not.toContain(courseId);
          expect(p.plan.issues.filter((issue) => issue.courseId === courseId && (issue.kind === 'revoked' || issue.kind === 'unbacked'))).toEqual([]);
        }
      }),
      RUNS,
    );
  });

  test('courses known only from in-flight payments are neither granted, revoked nor reported', () => {
    fc.assert(
      fc.property(planCaseArb, (c) => {
        const p = run(c);
        for (const courseId of p.evidence.inFlight.keys()) {
          expect(p.plan.removed).not.toContain(courseId);
          expect(p.plan.issues.filter((issue) => issue.courseId === courseId && (issue.kind === 'revoked' || issue.kind === 'unbacked'))).toEqual([]);
          if (!p.evidence.paid.has(courseId)) {
            expect(p.plan.added).not.toContain(courseId);
            expect(p.plan.issues.filter((issue) => issue.courseId === courseId && issue.kind === 'missing')).toEqual([]);
          }
        }
      }),
      RUNS,
    );
  });

  test('revoked and unbacked only on complete evidence; unbacked never names a course with paid or revoking orders', () => {
    fc.assert(
      fc.property(planCaseArb, (c) => {
        const p = run(c);
        const judged = p.plan.issues.filter((issue) => issue.kind === 'revoked' || issue.kind === 'unbacked');
        if (!c.evidence.complete) expect(judged).toEqual([]);
        if (!c.scope.revoke) expect(judged.filter((issue) => issue.kind === 'revoked')).toEqual([]);
        if (!c.scope.unbacked) expect(judged.filter((issue) => issue.kind === 'unbacked')).toEqual([]);
        for (const issue of judged.filter((i) => i.kind === 'unbacked')) {
          expect(p.evidence.paid.has(issue.courseId!)).toBe(false);
          expect(p.evidence.revoked.has(issue.courseId!)).toBe(false);
          expect(issue.fix).toBe('none');
          expect(issue.orderIds).toEqual(p.evidence.other.get(issue.courseId!) ?? []);
        }
        for (const issue of judged.filter((i) => i.kind === 'revoked')) {
          expect(issue.orderIds).toEqual(p.evidence.revoked.get(issue.courseId!));
          expect(issue.orderIds.length).toBeGreaterThan(0);
          expect(issue.fix).toBe(c.policy.revokeOnRefund ? 'revoke' : 'none');
        }
      }),
      RUNS,
    );
  });

  test('grants name their paid orders; every paid course ends up listed under the grant scope', () => {
    fc.assert(
      fc.property(planCaseArb, (c) => {
        const p = run(c);
        for (const issue of p.plan.issues.filter((i) => i.kind === 'missing')) {
          expect(issue.orderIds).toEqual(p.evidence.paid.get(issue.courseId!));
          expect(issue.orderIds.length).toBeGreaterThan(0);
          const ordersOfCourse = c.payments.filter((payment) => payment.courseIds.includes(issue.courseId!)).map((payment) => payment.orderId);
          for (const orderId of issue.orderIds) expect(ordersOfCourse).toContain(orderId);
        }
        if (!c.scope.grant) expect(p.plan.added).toEqual([]);
        if (c.scope.grant && p.list.state !== 'unsupported') {
          const listed = new Set(ids(after(p)));
          for (const courseId of p.evidence.paid.keys()) expect(listed.has(courseId)).toBe(true);
        }
      }),
      RUNS,
    );
  });

  test('a fix under any scope followed by a FULL_SCOPE fix converges in one more step', () => {
    fc.assert(
      fc.property(planCaseArb, policyArb, (c, policy) => {
        const first = run(c);
        const mid = first.plan.next === undefined ? first.list : decodeCourses(encodeCourses(first.plan.next));
        const second = planUser('u1', mid, first.evidence, FULL_SCOPE, policy);
        if (second.next === undefined) return;
        const third = planUser('u1', decodeCourses(encodeCourses(second.next)), first.evidence, FULL_SCOPE, policy);
        expect(third.next).toBeUndefined();
      }),
      RUNS,
    );
  });
});
