import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SyncDeps } from '../../lambdas/core/deps';
import type { FullRunResult } from '../../lambdas/core/jobs/full-run/finalize';
import { runLayout } from '../../lambdas/core/jobs/full-run/layout';
import { isSkipped } from '../../lambdas/core/jobs/full-run/prepare';
import type { RunRequest } from '../../lambdas/core/jobs/full-run/run-request';
import type { ChangeLine, IssueLine, RunMode } from '../../lambdas/core/report/report';
import { RunRecords } from '../../lambdas/core/runs/run-records';
import { FolderStorage } from '../../lambdas/core/storage/folder-storage';
import { runStateMachineLocally, type LocalRunOptions } from '../../scripts/local/run-state-machine';

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

export type FullRunOverrides = Partial<RunRequest> & LocalRunOptions;

/**
 * One full run through the state machine, run locally, with small pages and several segments
 * and buckets, and its report read back.
 */
export async function fullRun(deps: SyncDeps, mode: RunMode, overrides: FullRunOverrides = {}, storage: FolderStorage = runFolder()): Promise<FullRunOutcome> {
  const { onProgress, onTask, ...request } = overrides;
  const runId = request.runId ?? `run-${mode}-${Math.random().toString(36).slice(2, 8)}`;
  const runs = new RunRecords(deps.client, deps.config.runsTable, deps.now);
  const result = await runStateMachineLocally({ deps, storage, runs }, { runId, mode, trigger: 'manual', dryRun: false, segments: 3, buckets: 2, pageSize: 7, ...request }, { onProgress, onTask });
  if (isSkipped(result)) throw new Error(`run ${runId} was skipped: ${JSON.stringify(result.skipped)}`);
  const layout = runLayout(runId);
  return { result, issues: await readLines(storage, layout.issues), changes: await readLines(storage, layout.changes), storage };
}
