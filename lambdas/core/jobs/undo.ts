import type { SyncDeps } from '../deps';
import { forEachConcurrently } from '../backoff';
import { EnvironmentError } from '../errors';
import type { ChangeLine } from '../report/report';
import type { WireValue } from '../rules/attribute-values';
import { storageKey, type RunStorage } from '../storage/run-storage';
import { runLayout } from './full-run/layout';

/** The run folder holds no `changes.jsonl`: no such run, or one that never finished writing its report. */
export class NoSuchRunError extends EnvironmentError {}

/** The change log cannot be read as this run's: nothing has been written. */
export class ChangeLogError extends EnvironmentError {}

/**
 * - `restored`: the list was still what the run wrote and is now what it was before the run.
 * - `would-restore`: a dry run's `restored`.
 * - `already-restored`: the list already equals the run's before-list (an undo ran before); nothing written.
 * - `conflict`: the list changed since the run; left as it is (`current` in the report says what it holds).
 * - `not-found`: the user no longer exists; nothing is created.
 * - `error`: the user could not be read or written (`error` says why); a rerun retries it.
 */
export type UndoStatus = 'restored' | 'would-restore' | 'already-restored' | 'conflict' | 'not-found' | 'error';

export interface UndoUserResult {
  readonly userId: string;
  readonly status: UndoStatus;
  readonly error?: string;
}

/** One line of the undo's report in the run folder: what was restored, from what, to what. */
export interface UndoLine extends UndoUserResult {
  readonly runId: string;
  readonly undoId: string;
  readonly at: string;
  /** What undo puts back: the user's earliest before-list in the run (null: the attribute was absent). */
  readonly before: WireValue | null;
  /** The condition: the user's latest after-list in the run. */
  readonly after: WireValue;
  /** Conflicts only: the list the user holds now (null: absent). */
  readonly current?: WireValue | null;
  /** The run's change lines for this user (more than one when the run wrote the user twice). */
  readonly changes: number;
}

export interface UndoOptions {
  /** The run's folder in the storage (the run id locally, `runs/<run id>` in the bucket). */
  readonly folder: string;
  readonly runId: string;
  /** Read each user and report what would be restored; write no user. */
  readonly dryRun: boolean;
  /** Users restored at once. */
  readonly concurrency?: number;
}

export interface UndoResult {
  readonly runId: string;
  readonly undoId: string;
  readonly dryRun: boolean;
  /** Users restored; in a dry run, users that would be. */
  readonly restored: number;
  readonly alreadyRestored: number;
  readonly conflicts: number;
  readonly notFound: number;
  readonly errors: number;
  /** Storage keys of the undo's report: one line per user, and this summary. */
  readonly report: { readonly lines: string; readonly summary: string };
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly users: readonly UndoUserResult[];
}

/** One user's undo: the earliest before-list, on condition of the latest after-list. */
interface UndoTarget {
  readonly userId: string;
  readonly before: WireValue | null;
  readonly after: WireValue;
  readonly changes: number;
}

const isWireValue = (value: unknown): value is WireValue => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Parses the whole log before anything is written: a line that is not this run's change stops the undo. */
function parseChangeLog(text: string, runId: string, key: string): ChangeLine[] {
  const lines: ChangeLine[] = [];
  text.split('\n').forEach((raw, index) => {
    if (raw.trim() === '') return;
    const where = `${key} line ${index + 1}`;
    let line: Partial<ChangeLine>;
    try {
      line = JSON.parse(raw) as Partial<ChangeLine>;
    } catch {
      throw new ChangeLogError(`${where} is not JSON; nothing was restored`);
    }
    if (typeof line.userId !== 'string' || line.userId === '') throw new ChangeLogError(`${where} has no userId; nothing was restored`);
    if (!isWireValue(line.after)) throw new ChangeLogError(`${where} has no after-list; nothing was restored`);
    if (line.before !== null && !isWireValue(line.before)) throw new ChangeLogError(`${where} has no before-list (null when absent); nothing was restored`);
    if (line.runId !== runId) throw new ChangeLogError(`${where} is a change of run ${String(line.runId)}, not ${runId}; nothing was restored`);
    lines.push(line as ChangeLine);
  });
  return lines;
}

/** Users in the order the log first names them; each user's lines in time order (log order on a tie). */
function undoTargets(lines: readonly ChangeLine[]): UndoTarget[] {
  const byUser = new Map<string, ChangeLine[]>();
  for (const line of lines) byUser.set(line.userId, [...(byUser.get(line.userId) ?? []), line]);
  return [...byUser].map(([userId, changes]) => {
    const ordered = [...changes].sort((a, b) => (typeof a.at === 'string' && typeof b.at === 'string' ? a.at.localeCompare(b.at) : 0));
    return { userId, before: (ordered[0] as ChangeLine).before, after: (ordered[ordered.length - 1] as ChangeLine).after, changes: ordered.length };
  });
}

/** A value with map keys in order and set members sorted, so that equal DynamoDB values compare equal. */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (typeof value !== 'object' || value === null) return value;
  const record = value as Record<string, unknown>;
  return Object.fromEntries(
    Object.keys(record)
      .sort()
      .map((key) => {
        const item = canonical(record[key]);
        const isSet = (key === 'SS' || key === 'NS' || key === 'BS') && Array.isArray(item);
        return [key, isSet ? [...item].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))) : item];
      }),
  );
}

/** Equal as DynamoDB values; absent (undefined) and null (the log's "absent") are the same. */
export function sameWireValue(a: WireValue | null | undefined, b: WireValue | null | undefined): boolean {
  return JSON.stringify(canonical(a ?? null)) === JSON.stringify(canonical(b ?? null));
}

function describeFailure(error: unknown): string {
  const { name, message } = error as Error;
  return name && name !== 'Error' ? `${name}: ${message}` : String(message ?? error);
}

/**
 * One user: the conditional restore first (a real undo); when it does not apply, or in a dry
 * run, a consistent read says why: gone, already restored, or changed since (a conflict).
 * DynamoDB's condition decides every write; the comparison here only explains and dry-runs.
 */
async function undoUser(deps: SyncDeps, target: UndoTarget, dryRun: boolean): Promise<{ status: UndoStatus; current?: WireValue | null }> {
  if (!dryRun && (await deps.users.restoreIfUnchanged(target.userId, target.after, target.before))) return { status: 'restored' };
  const now = await deps.users.get(target.userId);
  if (!now.exists) return { status: 'not-found' };
  const current = now.raw ?? null;
  if (dryRun && sameWireValue(current, target.after)) return { status: 'would-restore' };
  if (sameWireValue(current, target.before)) return { status: 'already-restored' };
  return { status: 'conflict', current };
}

function undoStamp(now: number): string {
  return `undo-${new Date(now).toISOString().replace(/[-:.]/g, '')}-${Math.random().toString(36).slice(2, 6)}`;
}

/**
 * Undoes a fix, migration or scheduled-sync run from its change log (`<folder>/changes.jsonl`):
 * each user's list goes back to what it was before the run, only where it is still exactly what
 * the run wrote and the user exists. A list changed since is a conflict and is never
 * overwritten. Each user on its own: one user's failure is that user's `error` line. Running it
 * again finds every restored user `already-restored`. The undo's own report goes into the run
 * folder (`undo-<time>[-dry-run].jsonl` and `.summary.json`), so undo is audited as runs are.
 */
export async function undoRun(deps: SyncDeps, storage: RunStorage, options: UndoOptions): Promise<UndoResult> {
  const layout = runLayout(options.folder);
  const text = await storage.getText(layout.changes);
  if (text === undefined) throw new NoSuchRunError(`no such run: ${options.runId} has no change log (${layout.changes} does not exist)`);
  const targets = undoTargets(parseChangeLog(text, options.runId, layout.changes));

  const startedAt = deps.now();
  const undoId = `${undoStamp(startedAt)}${options.dryRun ? '-dry-run' : ''}`;
  const lines = new Map<string, UndoLine>();
  await forEachConcurrently(targets, options.concurrency ?? 8, async (target) => {
    const base = { runId: options.runId, undoId, userId: target.userId, before: target.before, after: target.after, changes: target.changes };
    try {
      const { status, current } = await undoUser(deps, target, options.dryRun);
      lines.set(target.userId, { ...base, status, at: new Date(deps.now()).toISOString(), ...(current === undefined ? {} : { current }) });
    } catch (error) {
      lines.set(target.userId, { ...base, status: 'error', error: describeFailure(error), at: new Date(deps.now()).toISOString() });
    }
  });
  const ordered = targets.map((target) => lines.get(target.userId) as UndoLine);
  const count = (...statuses: UndoStatus[]): number => ordered.filter((line) => statuses.includes(line.status)).length;

  const report = { lines: storageKey(options.folder, `${undoId}.jsonl`), summary: storageKey(options.folder, `${undoId}.summary.json`) };
  const summary: Omit<UndoResult, 'users'> = {
    runId: options.runId,
    undoId,
    dryRun: options.dryRun,
    restored: count('restored', 'would-restore'),
    alreadyRestored: count('already-restored'),
    conflicts: count('conflict'),
    notFound: count('not-found'),
    errors: count('error'),
    report,
    startedAt: new Date(startedAt).toISOString(),
    finishedAt: new Date(deps.now()).toISOString(),
  };
  await storage.put(report.lines, ordered.map((line) => `${JSON.stringify(line)}\n`).join(''));
  await storage.put(report.summary, `${JSON.stringify(summary, null, 2)}\n`);
  const result: UndoResult = { ...summary, users: ordered.map(({ userId, status, error }) => ({ userId, status, ...(error === undefined ? {} : { error }) })) };
  return result;
}
