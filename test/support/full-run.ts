import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SyncDeps } from '../../lambdas/core/deps';
import type { FullRunResult } from '../../lambdas/core/jobs/full-run/finalize';
import { runLayout } from '../../lambdas/core/jobs/full-run/layout';
import { runFullReconciliation, type FullRunOptions } from '../../lambdas/core/jobs/full-run/local-run';
import type { ChangeLine, IssueLine, RunMode } from '../../lambdas/core/report/report';
import { FolderStorage } from '../../lambdas/core/storage/folder-storage';

export interface FullRunOutcome {
  readonly result: FullRunResult;
  readonly issues: IssueLine[];
  readonly changes: ChangeLine[];
  readonly storage: FolderStorage;
}

const folders: string[] = [];

/** A fresh temporary folder as the run storage; removed by `removeRunFolders`. */
export function runFolder(): FolderStorage {
  const folder = mkdtempSync(join(tmpdir(), 'payment-sync-run-'));
  folders.push(folder);
  return new FolderStorage(folder);
}

export function removeRunFolders(): void {
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
}

export async function readLines<T>(storage: FolderStorage, key: string): Promise<T[]> {
  return ((await storage.getText(key)) ?? '')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as T);
}

/** One full run through the engine with small pages and several segments, and its report read back. */
export async function fullRun(deps: SyncDeps, mode: RunMode, overrides: Partial<FullRunOptions> = {}, storage: FolderStorage = runFolder()): Promise<FullRunOutcome> {
  const options: FullRunOptions = { runId: `run-${mode}-${Math.random().toString(36).slice(2, 8)}`, mode, dryRun: false, segments: 3, buckets: 2, maxUserChanges: undefined, pageSize: 7, ...overrides };
  const result = await runFullReconciliation(deps, storage, options);
  const layout = runLayout(options.folder ?? options.runId);
  return { result, issues: await readLines(storage, layout.issues), changes: await readLines(storage, layout.changes), storage };
}
