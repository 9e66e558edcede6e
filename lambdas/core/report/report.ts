import { ISSUE_KINDS, type Issue, type IssueKind } from '../rules/plan';
import type { WireValue } from '../rules/attribute-values';

/** An issue as a report line: which run found it and whether the run fixed it. */
export interface IssueLine extends Issue {
  readonly runId: string;
  readonly applied: boolean;
}

/** One write to a user, with the list before and after, so a run can be audited and undone. */
export interface ChangeLine {
  readonly runId: string;
  readonly userId: string;
  readonly at: string;
  readonly added: readonly string[];
  readonly removed: readonly string[];
  readonly duplicatesRemoved: readonly string[];
  readonly orderIds: readonly string[];
  readonly before: WireValue | null;
  readonly after: WireValue;
}

export interface ReportSink {
  issue(line: IssueLine): void;
  change(line: ChangeLine): void;
}

export type RunMode = 'validate' | 'fix' | 'migrate' | 'cron-sync' | 'cron-validate';

export interface RunCounts {
  paymentsScanned: number;
  usersScanned: number;
  usersFixed: number;
  coursesAdded: number;
  coursesRemoved: number;
  duplicatesRemoved: number;
}

export type IssueCounts = Record<IssueKind, number>;

/** The `--json` summary of the public contract. */
export interface RunSummary {
  readonly runId: string;
  readonly mode: RunMode;
  readonly dryRun: boolean;
  readonly counts: RunCounts;
  readonly issues: IssueCounts;
}

export function emptyCounts(): RunCounts {
  return { paymentsScanned: 0, usersScanned: 0, usersFixed: 0, coursesAdded: 0, coursesRemoved: 0, duplicatesRemoved: 0 };
}

export function emptyIssueCounts(): IssueCounts {
  return Object.fromEntries(ISSUE_KINDS.map((kind) => [kind, 0])) as IssueCounts;
}

/**
 * What a run id may look like, as `newRunId` makes them: one folder name (no slashes, no `..`)
 * that also names a Step Functions execution (80 characters at most).
 */
export const RUN_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$/;

export function newRunId(mode: string, at: Date = new Date()): string {
  const stamp = at.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `${stamp}-${mode}-${Math.random().toString(36).slice(2, 8)}`;
}
