import type { IssueCounts } from '../../report/report';

/*
 * What planning hands on, apart from the planning itself: the hourly sync's collect step makes
 * the same candidate files and results without a join, so these stay free of DuckDB (a task's
 * bundle that imports them does not need the native library).
 */

/** User ids per candidate file: one repair task's work, small enough for a Map item's key. */
export const CANDIDATES_PER_FILE = 2000;

/** One plan task's figures, stored for finalize. */
export interface PlanBucketResult {
  readonly bucket: number;
  readonly paymentsScanned: number;
  readonly usersScanned: number;
  readonly inFlight: number;
  readonly issues: IssueCounts;
  readonly candidates: number;
  readonly candidateKeys: readonly string[];
}

/** What the repair Map iterates: a bucket's candidate files, and two counts a progress display follows (the figures are in the run's results). */
export interface PlanTaskResult {
  readonly bucket: number;
  readonly candidateKeys: readonly string[];
  readonly usersScanned: number;
  readonly candidates: number;
}
