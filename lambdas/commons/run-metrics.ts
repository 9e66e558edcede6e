import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { ISSUE_KINDS } from '../core/rules/plan';
import type { FullRunResult } from '../core/jobs/full-run/finalize';
import { metrics } from '../core/observability';

/** One per completed run, by mode: the missed-sync alarm watches it (health reads the run records). */
export const RUN_COMPLETED_METRIC = 'RunCompleted';

/** A full run's figures as metrics; the alarms on missed scheduled runs watch `RunCompleted`. */
export function publishRunMetrics(result: FullRunResult): void {
  metrics.addMetric('UsersFixed', MetricUnit.Count, result.counts.usersFixed);
  metrics.addMetric('CoursesAdded', MetricUnit.Count, result.counts.coursesAdded);
  metrics.addMetric('CoursesRemoved', MetricUnit.Count, result.counts.coursesRemoved);
  metrics.addMetric('DuplicatesRemoved', MetricUnit.Count, result.counts.duplicatesRemoved);
  metrics.addMetric('RunDurationMs', MetricUnit.Milliseconds, result.durationMs);
  if (result.status === 'failed') metrics.addMetric('RunFailed', MetricUnit.Count, 1);
  if (result.held) metrics.addMetric('RunHeld', MetricUnit.Count, 1);
  if (result.capped || result.revocationCapReached) metrics.addMetric('RunCapped', MetricUnit.Count, 1);
  for (const kind of ISSUE_KINDS) {
    const byKind = metrics.singleMetric();
    byKind.addDimension('kind', kind);
    byKind.addMetric('IssuesFound', MetricUnit.Count, result.issues[kind]);
  }
  if (result.status === 'completed') {
    const completed = metrics.singleMetric();
    completed.addDimension('mode', result.mode);
    completed.addMetric(RUN_COMPLETED_METRIC, MetricUnit.Count, 1);
  }
}
