import { publishRunMetrics, RUN_COMPLETED_METRIC } from '../../lambdas/commons/run-metrics';
import type { FullRunResult } from '../../lambdas/core/jobs/full-run/finalize';
import { metrics } from '../../lambdas/core/observability';
import { emptyCounts, emptyIssueCounts } from '../../lambdas/core/report/report';

/** What one run published: the run's own metrics, and each single metric with its dimensions. */
function published(result: FullRunResult) {
  const added: Record<string, number> = {};
  const single: Array<{ name: string; value: number; dimensions: Record<string, string> }> = [];
  jest.spyOn(metrics, 'addMetric').mockImplementation((name, _unit, value) => {
    added[name] = value;
    return metrics;
  });
  jest.spyOn(metrics, 'singleMetric').mockImplementation(() => {
    const dimensions: Record<string, string> = {};
    const one = { addDimension: (key: string, value: string) => void (dimensions[key] = value), addMetric: (name: string, _unit: unknown, value: number) => void single.push({ name, value, dimensions }) };
    return one as unknown as ReturnType<typeof metrics.singleMetric>;
  });
  publishRunMetrics(result);
  jest.restoreAllMocks();
  return { added, single };
}

const result = (extra: Partial<FullRunResult>): FullRunResult => ({
  runId: 'r',
  mode: 'cron-sync',
  dryRun: false,
  counts: { ...emptyCounts(), usersFixed: 3, coursesAdded: 4 },
  issues: { ...emptyIssueCounts(), missing: 4 },
  status: 'completed',
  trigger: 'schedule',
  capped: false,
  revocationCapReached: false,
  held: false,
  inFlight: 0,
  consumedCapacity: 0,
  snapshotAt: '2026-11-27T00:00:00.000Z',
  startedAt: '2026-11-27T00:00:00.000Z',
  finishedAt: '2026-11-27T00:01:00.000Z',
  durationMs: 60_000,
  ...extra,
});

describe('a run\'s metrics, which the missed-sync, capped and failed-run alarms watch', () => {
  test('a completed run counts RunCompleted under its mode, and its figures', () => {
    const { added, single } = published(result({}));
    expect(added).toMatchObject({ UsersFixed: 3, CoursesAdded: 4, RunDurationMs: 60_000 });
    expect(single).toContainEqual({ name: RUN_COMPLETED_METRIC, value: 1, dimensions: { mode: 'cron-sync' } });
    expect(single).toContainEqual({ name: 'IssuesFound', value: 4, dimensions: { kind: 'missing' } });
  });

  test('a failed run is no completed run; a capped or held one says so', () => {
    const failed = published(result({ status: 'failed', error: 'Error: broke' }));
    expect(failed.single.some(({ name }) => name === RUN_COMPLETED_METRIC)).toBe(false);
    expect(failed.added.RunFailed).toBe(1);
    expect(published(result({ capped: true })).added.RunCapped).toBe(1);
    expect(published(result({ held: true })).added.RunHeld).toBe(1);
  });
});
