import { z } from 'zod';
import type { SnapshotMode } from '../../config';
import type { SyncDeps } from '../../deps';
import { InvalidEventError } from '../../errors';
import { RUN_ID_PATTERN, type RunMode } from '../../report/report';
import type { RunRecords, RunTrigger } from '../../runs/run-records';
import type { SnapshotTable } from '../../snapshot/scan-snapshot';
import type { RunStorage } from '../../storage/run-storage';
import type { FailedStreamRecords } from '../../stream-failures/failed-users';

export type ChangeSource = 'incremental-export' | 'local-capture';

/** What every task of a full run works with: the tables, the run's storage and the run table. */
export interface RunTaskContext {
  readonly deps: SyncDeps;
  readonly storage: RunStorage;
  readonly runs: RunRecords;
  /**
   * Where an hourly sync's changes come from: DynamoDB's incremental export (needs point-in-time
   * recovery: the default under `SNAPSHOT_MODE=export`) or, locally, the capture of writes.
   */
  readonly changeSource?: ChangeSource;
  /** Epoch ms the change source covers from (the local capture's start); a window starting earlier means a full run. */
  readonly changesSince?: number;
  /** The stream's failure queue: the users its records name are hourly candidates too. */
  readonly streamFailures?: FailedStreamRecords;
}

const RUN_MODES = ['validate', 'fix', 'migrate', 'cron-sync', 'cron-validate'] as const satisfies readonly RunMode[];
const READ_ONLY_MODES: readonly RunMode[] = ['validate', 'cron-validate'];

export function isReadOnlyMode(mode: RunMode): boolean {
  return READ_ONLY_MODES.includes(mode);
}

const positive = z.number().int().min(1);

/**
 * A full run's start: the execution's input is `{ "run": RunRequest }` (what the entry
 * Lambdas, the command line and `aws stepfunctions start-execution` send).
 */
export const RunRequestSchema = z.strictObject({
  runId: z.string().regex(RUN_ID_PATTERN, 'run ids are 1-80 letters, digits, dots, dashes or underscores, starting with a letter or digit (they name the execution and the run folder)'),
  mode: z.enum(RUN_MODES),
  trigger: z.enum(['schedule', 'manual']),
  dryRun: z.boolean().default(false),
  /** Users the run may change before it stops writing; null = no cap; absent = scheduled runs take MAX_USER_CHANGES_PER_RUN. */
  maxUserChanges: z.number().int().min(0).nullable().optional(),
  segments: positive.max(1000).optional(),
  buckets: positive.max(1024).optional(),
  /** A worker's time per turn before it hands its cursor back (tests make it tiny); Lambda's own limit otherwise. */
  taskBudgetMs: z.number().int().min(0).optional(),
  pageSize: positive.optional(),
});
export type RunRequest = z.input<typeof RunRequestSchema>;

export function parseRunRequest(input: unknown): z.output<typeof RunRequestSchema> {
  const parsed = RunRequestSchema.safeParse(input);
  if (parsed.success) return parsed.data;
  throw new InvalidEventError(parsed.error.issues.map((issue) => `run.${issue.path.join('.')}: ${issue.message}`));
}

/** The run as prepare settled it: every later task reads its settings from here (`$.run`). */
export interface PreparedRun {
  readonly runId: string;
  readonly mode: RunMode;
  readonly trigger: RunTrigger;
  /** The run's folder in the storage. */
  readonly folder: string;
  /** False for validations, dry runs and held scheduled fixes. */
  readonly writes: boolean;
  readonly dryRun: boolean;
  /** A hold made this scheduled fix report-only. */
  readonly held: boolean;
  readonly maxUserChanges: number | null;
  /** `changes`: an hourly sync that reads only what changed (`changes` says since when). */
  readonly snapshotMode: SnapshotMode | 'changes';
  readonly changes: ChangeWindow | null;
  /** Why an hourly sync ran as a full run instead (no completed sync yet, too old, no change source). */
  readonly fullBecause: string | null;
  /** Epoch ms: the snapshot's time, which the grace window is measured from. */
  readonly snapshotAt: number;
  readonly startedAt: number;
  readonly segments: number;
  readonly buckets: number;
  readonly joinConcurrency: number;
  /** 1 while a cap is in force: each batch starts from what earlier batches left of it. */
  readonly repairConcurrency: number;
  readonly taskBudgetMs: number | null;
  readonly pageSize: number | null;
}

/** The window an hourly sync reads: [from, to), and what else it confirms. */
export interface ChangeWindow {
  /** Epoch seconds, as the export API takes them. */
  readonly fromSeconds: number;
  readonly toSeconds: number;
  /** The completed sync whose snapshot the window starts from (less the overlap). */
  readonly sinceRunId: string;
  /** A validation after that sync: its unfixed findings are candidates too. */
  readonly validationRunId: string | null;
}

export interface ScanItem {
  readonly table: SnapshotTable;
  readonly segment: number;
}

/** The snapshot the join reads: each table's `manifest-summary.json` key. */
export interface SnapshotKeys {
  readonly payments: string;
  readonly users: string;
}

/** The execution's state between tasks: small and inline (keys and numbers, never items). */
export interface RunState {
  readonly run: PreparedRun;
  readonly scanItems: readonly ScanItem[];
  readonly bucketItems: readonly number[];
}

export interface SkippedRun {
  readonly run: RunRequest;
  readonly skipped: { readonly runningRunId: string; readonly mode: RunMode; readonly since: string };
}

/** A Step Functions `Catch` puts the failure here (`ResultPath: $.error`). */
export interface CaughtError {
  readonly Error: string;
  readonly Cause?: string;
}
