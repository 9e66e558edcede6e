import { logger } from '../../observability';
import { backupUsersTable, exportUsersToStorage, type BackupReceipt } from '../../store/users-backup';
import { CHANGE_WINDOW_MODES, decideChangeWindow } from './change-window';
import { runFolderKey, runLayout } from './layout';
import { isReadOnlyMode, parseRunRequest, type PreparedRun, type RunState, type RunTaskContext, type ScanItem, type SkippedRun } from './run-request';

export type PrepareResult = RunState | SkippedRun;

export function isSkipped<T extends object>(result: T | SkippedRun): result is SkippedRun {
  return 'skipped' in result;
}

/**
 * Prepare: the lock (a second full run while one holds it is `skipped`, naming the running
 * one), the hold (a scheduled fix runs report-only while it is in force), the run record,
 * a backup before a migration writes, and the lists the Map states iterate.
 */
export async function prepareRun({ deps, storage, runs, changeSource, changesSince }: RunTaskContext, input: { run: unknown }): Promise<PrepareResult> {
  const { config } = deps;
  const request = parseRunRequest(input.run);
  const lock = await runs.acquireLock(request.runId, request.mode);
  const startedAt = deps.now();
  if (!lock.acquired) {
    const { holder } = lock;
    await runs.putRun({ runId: request.runId, mode: request.mode, trigger: request.trigger, status: 'skipped', dryRun: request.dryRun, held: false, startedAt: new Date(startedAt).toISOString(), error: `run ${holder.runId} (${holder.mode}) holds the lock since ${holder.acquiredAt}` });
    logger.warn('another full run is in progress: this one is skipped', { runId: request.runId, running: holder });
    return { run: request, skipped: { runningRunId: holder.runId, mode: holder.mode, since: holder.acquiredAt } };
  }

  const scheduled = request.trigger === 'schedule';
  const hold = scheduled && !isReadOnlyMode(request.mode) ? await runs.readHold() : undefined;
  const writes = !isReadOnlyMode(request.mode) && !request.dryRun && !hold;
  const maxUserChanges = request.maxUserChanges !== undefined ? request.maxUserChanges : scheduled ? config.maxUserChangesPerRun : null;
  const segments = request.segments ?? config.scanSegments;
  const buckets = request.buckets ?? config.joinBuckets;
  const folder = runFolderKey(storage, request.runId);
  // The hourly sync reads only what changed when it can; it says why when it cannot.
  const decision =
    request.mode === 'cron-sync'
      ? decideChangeWindow({
          lastCompleted: Object.fromEntries(await Promise.all(CHANGE_WINDOW_MODES.map(async (mode) => [mode, await runs.lastCompleted(mode)] as const))),
          changeSource: changeSource ?? (config.snapshotMode === 'export' ? 'incremental-export' : undefined),
          changesSince,
          now: startedAt,
          overlapMinutes: config.incrementalOverlapMinutes,
        })
      : undefined;
  const changes = decision && 'window' in decision ? decision.window : null;
  const run: PreparedRun = {
    runId: request.runId,
    mode: request.mode,
    trigger: request.trigger,
    folder,
    writes,
    dryRun: !writes,
    held: hold !== undefined,
    maxUserChanges,
    snapshotMode: changes ? 'changes' : config.snapshotMode,
    changes,
    fullBecause: decision && 'fullBecause' in decision ? decision.fullBecause : null,
    // An hourly sync's findings describe the table as of its window's end.
    snapshotAt: changes ? changes.toSeconds * 1000 : startedAt,
    startedAt,
    segments,
    buckets,
    joinConcurrency: Math.min(config.joinConcurrency, buckets),
    repairConcurrency: maxUserChanges !== null || config.revokeOnRefund ? 1 : config.repairConcurrency,
    taskBudgetMs: request.taskBudgetMs ?? null,
    pageSize: request.pageSize ?? null,
  };
  if (hold) logger.warn('a hold is in force: this scheduled fix reports only', { hold });
  if (run.fullBecause) logger.info('the hourly sync runs in full', { because: run.fullBecause });

  let backup: BackupReceipt | undefined;
  if (run.mode === 'migrate' && writes) {
    backup = config.endpoint
      ? await exportUsersToStorage(deps.client, config, storage, runLayout(folder).usersBackup)
      : await backupUsersTable(deps.client, config, run.runId);
    await storage.put(runLayout(folder).backup, JSON.stringify(backup));
    logger.info('users table backed up before the migration writes', { backup });
  }
  await runs.putRun({ runId: run.runId, mode: run.mode, trigger: run.trigger, status: 'running', dryRun: run.dryRun, held: run.held, startedAt: new Date(startedAt).toISOString(), snapshotAt: new Date(run.snapshotAt).toISOString() });

  const scanItems: ScanItem[] = (['payments', 'users'] as const).flatMap((table) => Array.from({ length: segments }, (_, segment) => ({ table, segment })));
  return { run, scanItems, bucketItems: Array.from({ length: buckets }, (_, bucket) => bucket) };
}
