import { storageKey, type RunStorage } from '../../storage/run-storage';

export type ReportKind = 'issues' | 'changes';

const pad = (value: number, width: number): string => String(value).padStart(width, '0');

/** Where a full run's snapshot, and an hourly sync's incremental exports, go in its run folder (the exports' S3 prefixes on AWS). */
export const SNAPSHOT_FOLDER = 'snapshot';
export const INCREMENTAL_FOLDER = 'incremental';

/** A run's folder in a run storage. */
export function runFolderKey(storage: Pick<RunStorage, 'runsPrefix'>, runId: string): string {
  return storageKey(storage.runsPrefix, runId);
}

/**
 * Where each stage of one full run keeps its files, below the run's folder in the run storage
 * (`<run id>` in the local report folder, `runs/<run id>` in the bucket on AWS). Stages pass
 * each other these keys, never the data.
 */
export function runLayout(folder: string) {
  return {
    folder,
    snapshot: storageKey(folder, SNAPSHOT_FOLDER),
    /** An hourly sync's incremental export of one table (the export's S3 prefix on AWS). */
    incremental: (table: 'payments' | 'users') => storageKey(folder, INCREMENTAL_FOLDER, table),
    candidates: storageKey(folder, 'candidates'),
    candidateFile: (bucket: number, part: number) => storageKey(folder, 'candidates', `bucket-${pad(bucket, 4)}-part-${pad(part, 4)}.json`),
    parts: storageKey(folder, 'parts'),
    /** A stage's report lines before the run's report is assembled: `<stage>.<kind>.<n>.jsonl`. */
    part: (stage: string, kind: ReportKind, part: number) => storageKey(folder, 'parts', `${stage}.${kind}.${pad(part, 4)}.jsonl`),
    issues: storageKey(folder, 'issues.jsonl'),
    changes: storageKey(folder, 'changes.jsonl'),
    summary: storageKey(folder, 'summary.json'),
    /** Where a migration's backup went, and the users themselves where there is no CreateBackup (a local endpoint). */
    backup: storageKey(folder, 'backup.json'),
    usersBackup: storageKey(folder, 'users-backup.jsonl'),
    /** Each plan and repair task's figures, which finalize adds up (Map results stay small). */
    results: storageKey(folder, 'results'),
    result: (stage: string) => storageKey(folder, 'results', `${stage}.json`),
    planStage: (bucket: number) => `plan-bucket-${pad(bucket, 4)}`,
    repairStage: (candidateKey: string) => `repair-${candidateKey.split('/').pop()?.replace(/\.json$/, '')}`,
  };
}
export type RunLayout = ReturnType<typeof runLayout>;

/** Lines per stored part: a stage holds at most this many report lines in memory. */
const LINES_PER_PART = 10_000;

/**
 * A stage's report lines, stored as numbered JSONL parts as they fill, so a stage's memory
 * does not grow with the number of issues it finds. Rewriting a stage rewrites the same parts.
 */
export class PartWriter<T> {
  private lines: string[] = [];
  private parts = 0;

  constructor(
    private readonly storage: RunStorage,
    private readonly key: (part: number) => string,
  ) {}

  async add(line: T): Promise<void> {
    this.lines.push(JSON.stringify(line));
    if (this.lines.length >= LINES_PER_PART) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.lines.length === 0) return;
    const text = `${this.lines.join('\n')}\n`;
    this.lines = [];
    await this.storage.put(this.key(this.parts++), text);
  }

  async close(): Promise<void> {
    await this.flush();
  }
}
