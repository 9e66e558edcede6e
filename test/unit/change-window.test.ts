import fc from 'fast-check';
import { decideChangeWindow, MAX_CHANGE_WINDOW_HOURS, type ChangeWindowInput } from '../../lambdas/core/jobs/full-run/change-window';
import { emptyIssueCounts, type RunMode } from '../../lambdas/core/report/report';
import type { RunRecord } from '../../lambdas/core/runs/run-records';

const NOW = Date.parse('2026-11-27T12:00:00Z');
const MINUTE = 60_000;

const record = (runId: string, mode: RunMode, minutesAgo: number, dryRun = false): RunRecord => ({
  runId,
  mode,
  trigger: 'schedule',
  status: 'completed',
  dryRun,
  held: dryRun,
  startedAt: new Date(NOW - minutesAgo * MINUTE).toISOString(),
  snapshotAt: new Date(NOW - minutesAgo * MINUTE).toISOString(),
});

const input = (lastCompleted: ChangeWindowInput['lastCompleted'], extra: Partial<ChangeWindowInput> = {}): ChangeWindowInput => ({
  lastCompleted,
  changeSource: 'local-capture',
  now: NOW,
  overlapMinutes: 15,
  ...extra,
});

describe('the hourly sync\'s window', () => {
  test('from the last completed sync\'s snapshot less the overlap, to now (the local capture has every write at once)', () => {
    expect(decideChangeWindow(input({ 'cron-sync': record('sync-1', 'cron-sync', 60) }))).toEqual({
      window: { fromSeconds: (NOW - 75 * MINUTE) / 1000, toSeconds: NOW / 1000, sinceRunId: 'sync-1', validationRunId: null },
    });
  });

  test('an incremental export ends five minutes back, where point-in-time recovery is restorable', () => {
    const decision = decideChangeWindow(input({ 'cron-sync': record('sync-1', 'cron-sync', 60) }, { changeSource: 'incremental-export' }));
    expect(decision).toMatchObject({ window: { toSeconds: (NOW - 5 * MINUTE) / 1000 } });
  });

  test('an incremental export is never shorter than the 15 minutes DynamoDB takes: it reaches further back', () => {
    const decision = decideChangeWindow(input({ 'cron-sync': record('sync-1', 'cron-sync', 1) }, { changeSource: 'incremental-export' }));
    expect(decision).toMatchObject({ window: { fromSeconds: (NOW - 20 * MINUTE) / 1000, toSeconds: (NOW - 5 * MINUTE) / 1000 } });
  });

  test('the newest sync that wrote is the baseline: a full fix counts, a held (dry) run does not', () => {
    const decision = decideChangeWindow(input({ 'cron-sync': record('held', 'cron-sync', 10, true), fix: record('fix-1', 'fix', 90), migrate: record('migrate-1', 'migrate', 600) }));
    expect(decision).toMatchObject({ window: { sinceRunId: 'fix-1', fromSeconds: (NOW - 105 * MINUTE) / 1000 } });
  });

  test('a validation after the baseline adds its findings; one before it does not', () => {
    const later = decideChangeWindow(input({ 'cron-sync': record('sync-1', 'cron-sync', 60), validate: record('val-1', 'validate', 30), 'cron-validate': record('val-0', 'cron-validate', 45) }));
    expect(later).toMatchObject({ window: { validationRunId: 'val-1' } });
    const earlier = decideChangeWindow(input({ 'cron-sync': record('sync-1', 'cron-sync', 60), 'cron-validate': record('val-0', 'cron-validate', 90) }));
    expect(earlier).toMatchObject({ window: { validationRunId: null } });
  });

  test.each([
    ['no change source', input({ 'cron-sync': record('s', 'cron-sync', 60) }, { changeSource: undefined }), /no change source/],
    ['no completed sync', input({}), /no completed sync yet/],
    ['only held syncs', input({ 'cron-sync': record('held', 'cron-sync', 60, true) }), /no completed sync yet/],
    ['a capped sync (it left users unfixed)', input({ 'cron-sync': { ...record('capped', 'cron-sync', 60), capped: true } }), /no completed sync yet/],
    ['a sync with users in error', input({ fix: { ...record('errors', 'fix', 60), issues: { ...emptyIssueCounts(), error: 2 } } }), /no completed sync yet/],
    ['a baseline older than a day', input({ 'cron-sync': record('old', 'cron-sync', MAX_CHANGE_WINDOW_HOURS * 60) }), /older than the 24 hours/],
    ['a capture that began after the baseline', input({ 'cron-sync': record('s', 'cron-sync', 60) }, { changesSince: NOW - 30 * MINUTE }), /capture of writes began/],
  ])('a full run, and why: %s', (_label, decisionInput, reason) => {
    expect(decideChangeWindow(decisionInput)).toEqual({ fullBecause: expect.stringMatching(reason) });
  });

  test('property: a window always covers every moment from the baseline\'s snapshot (less the overlap, or since the capture began) to the end', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 23 * 60 }), fc.integer({ min: 15, max: 120 }), fc.option(fc.integer({ min: 0, max: 24 * 60 })), (minutesAgo, overlap, captureAgo) => {
        const changesSince = captureAgo === null ? undefined : NOW - captureAgo * MINUTE;
        const baseline = NOW - minutesAgo * MINUTE;
        const decision = decideChangeWindow(input({ 'cron-sync': record('s', 'cron-sync', minutesAgo) }, { overlapMinutes: overlap, changesSince }));
        if (changesSince !== undefined && baseline < changesSince) return 'fullBecause' in decision;
        if (!('window' in decision)) return NOW - (baseline - overlap * MINUTE) > MAX_CHANGE_WINDOW_HOURS * 3_600_000;
        const from = decision.window.fromSeconds * 1000;
        return from <= baseline && from >= baseline - overlap * MINUTE && (changesSince === undefined || from >= changesSince) && decision.window.toSeconds * 1000 === NOW;
      }),
    );
  });
});
