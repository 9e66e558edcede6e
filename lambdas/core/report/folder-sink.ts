import { createWriteStream, mkdirSync, writeFileSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import type { ChangeLine, IssueLine, ReportSink } from './report';

/** A report folder: `issues.jsonl`, `changes.jsonl` (before/after lists, for audit and undo), `summary.json`. */
export class FolderSink implements ReportSink {
  private readonly issues: WriteStream;
  private readonly changes: WriteStream;

  constructor(readonly folder: string) {
    mkdirSync(folder, { recursive: true });
    this.issues = createWriteStream(join(folder, 'issues.jsonl'));
    this.changes = createWriteStream(join(folder, 'changes.jsonl'));
  }

  issue(line: IssueLine): void {
    this.issues.write(`${JSON.stringify(line)}\n`);
  }

  change(line: ChangeLine): void {
    this.changes.write(`${JSON.stringify(line)}\n`);
  }

  /** Writes the summary last, so a folder with a summary is a finished report. */
  async close(summary: unknown): Promise<void> {
    await Promise.all([this.issues, this.changes].map((stream) => new Promise<void>((resolve, reject) => stream.end((error?: Error | null) => (error ? reject(error) : resolve())))));
    writeFileSync(join(this.folder, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  }
}
