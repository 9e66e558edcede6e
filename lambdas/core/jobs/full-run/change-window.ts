import type { RunMode } from '../../report/report';
import type { RunRecord } from '../../runs/run-records';
import type { ChangeSource, ChangeWindow } from './run-request';

/** DynamoDB's incremental exports cover at most a day; an older baseline means a full run. */
export const MAX_CHANGE_WINDOW_HOURS = 24;
/**
 * An incremental export ends at a restorable time, which point-in-time recovery keeps about five
 * minutes behind now; the local capture has every write at once.
 */
const SETTLE_MS: Record<ChangeSource, number> = { 'incremental-export': 5 * 60_000, 'local-capture': 0 };
/** DynamoDB refuses incremental exports of less than 15 minutes: a shorter window reaches further back. */
const MIN_WINDOW_MS: Record<ChangeSource, number> = { 'incremental-export': 15 * 60_000, 'local-capture': 0 };
/** Modes whose completed runs confirmed every user: what an hourly sync may start from. */
export const SYNC_BASELINE_MODES: readonly RunMode[] = ['cron-sync', 'fix', 'migrate'];
const VALIDATION_MODES: readonly RunMode[] = ['cron-validate', 'validate'];
/** The last completed runs the decision reads. */
export const CHANGE_WINDOW_MODES: readonly RunMode[] = [...SYNC_BASELINE_MODES, ...VALIDATION_MODES];

export interface ChangeWindowInput {
  /** The last completed run of each mode (run table). */
  readonly lastCompleted: Partial<Record<RunMode, RunRecord>>;
  /** Where the window's changes come from; undefined = nowhere (the sync runs in full). */
  readonly changeSource: ChangeSource | undefined;
  /** Epoch ms the change source covers from; undefined = as far back as a window may reach. */
  readonly changesSince?: number;
  readonly now: number;
  readonly overlapMinutes: number;
}

export type ChangeWindowDecision = { readonly window: ChangeWindow } | { readonly fullBecause: string };

/**
 * A run the next window may start from: it wrote (not held, not a dry run) and left nothing
 * undone: a cap stopped none of its writes and no user was in error.
 */
const confirmedEveryUser = (record: RunRecord): boolean => !record.dryRun && !record.capped && (record.issues?.error ?? 0) === 0;

const newest = (records: readonly (RunRecord | undefined)[]): RunRecord | undefined =>
  records.filter((record): record is RunRecord => record !== undefined && record.snapshotAt !== undefined).sort((a, b) => Date.parse(b.snapshotAt!) - Date.parse(a.snapshotAt!))[0];

/**
 * Whether an hourly sync can read only what changed, and over which window: from the snapshot of
 * the last completed sync that fixed everything it found (not held, dry, capped or with users in
 * error), less an overlap, to now.
 * A validation after that snapshot adds its unfixed findings. Otherwise the reason it runs in full.
 */
export function decideChangeWindow(input: ChangeWindowInput): ChangeWindowDecision {
  if (!input.changeSource) return { fullBecause: 'no change source: incremental exports need SNAPSHOT_MODE=export (point-in-time recovery); locally, the capture of writes' };
  const baseline = newest(SYNC_BASELINE_MODES.map((mode) => input.lastCompleted[mode]).filter((record) => record && confirmedEveryUser(record)));
  if (!baseline) return { fullBecause: 'no completed sync yet that fixed all it found (held, dry, capped runs and runs with users in error do not count)' };
  const from = Math.max(Date.parse(baseline.snapshotAt!) - input.overlapMinutes * 60_000, input.changesSince ?? -Infinity);
  if (input.now - from > MAX_CHANGE_WINDOW_HOURS * 3_600_000) {
    return { fullBecause: `the last completed sync (${baseline.runId}, snapshot ${baseline.snapshotAt}) is older than the ${MAX_CHANGE_WINDOW_HOURS} hours an incremental export covers` };
  }
  // Writes before the source began were in the baseline's snapshot if that came later.
  if (input.changesSince !== undefined && Date.parse(baseline.snapshotAt!) < input.changesSince) {
    return { fullBecause: `the capture of writes began at ${new Date(input.changesSince).toISOString()}, after the last completed sync (${baseline.runId})` };
  }
  const validation = newest(VALIDATION_MODES.map((mode) => input.lastCompleted[mode]));
  const laterValidation = validation && Date.parse(validation.snapshotAt!) > Date.parse(baseline.snapshotAt!) ? validation.runId : null;
  const to = input.now - SETTLE_MS[input.changeSource];
  const start = Math.min(from, to - MIN_WINDOW_MS[input.changeSource]);
  // Seconds with their fraction (the API's timestamps take one): a whole second would drop the
  // writes of the window's last moments, or reach into the future.
  return { window: { fromSeconds: start / 1000, toSeconds: to / 1000, sinceRunId: baseline.runId, validationRunId: laterValidation } };
}
