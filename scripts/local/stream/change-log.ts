import { appendFileSync, createReadStream, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { incrementalExportLine, micros, writeIncrementalExport } from '../../../lambdas/core/snapshot/incremental-export';
import type { ExportWindow, IncrementalExportLine } from '../../../lambdas/core/snapshot/incremental-export';
import type { WireItem } from '../../../lambdas/core/rules/attribute-values';
import type { RunStorage } from '../../../lambdas/core/storage/run-storage';
import { sameAttributeValue } from './shard-log';
import type { AttributeMap } from './shard-log';

/** One write to a captured table, as the capture proxy saw it. */
export interface ChangeLogEntry {
  readonly table: string;
  /**
   * Microseconds since the epoch at which the write was recorded: after DynamoDB applied it
   * and before its client had the answer. Never less than an earlier entry's.
   */
  readonly writeTimeMicros: number;
  readonly keys: AttributeMap;
  readonly oldImage?: AttributeMap;
  readonly newImage?: AttributeMap;
}

export interface ChangeLogOptions {
  /**
   * A folder for the log: one append-only JSONL file per table (`<table>.jsonl`), which
   * outlives the process (the CLI's embedded default keeps it in `.local/`). In memory when absent.
   */
  readonly folder?: string;
  /** Milliseconds since the epoch (fractions allowed); a test may move time without waiting for it. */
  readonly now?: () => number;
}

/**
 * What the local capture knows of the writes to both tables, the local stand-in for the point-
 * in-time recovery data an incremental export reads on AWS. Entries are appended synchronously
 * (file and all) in the order the capture proxy serializes the writes, so an entry is in the log
 * before the write's client has its answer, and write times never go backwards: every write
 * recorded at or after a moment has a time at or after it. That is what makes a window
 * [from, to) exported once `to` has passed complete.
 */
export class ChangeLog {
  readonly folder: string | undefined;
  private readonly clock: () => number;
  private readonly memory = new Map<string, ChangeLogEntry[]>();
  private lastMicros = 0;

  constructor(options: ChangeLogOptions = {}) {
    this.folder = options.folder;
    this.clock = options.now ?? Date.now;
    if (this.folder) mkdirSync(this.folder, { recursive: true });
  }

  /** The log's clock, milliseconds since the epoch. */
  now(): number {
    return this.clock();
  }

  /** The file that holds a table's entries (folder mode). */
  fileOf(table: string): string | undefined {
    if (!this.folder) return undefined;
    if (!/^[A-Za-z0-9_.-]+$/.test(table)) throw new Error(`not a DynamoDB table name: ${JSON.stringify(table)}`);
    return join(this.folder, `${table}.jsonl`);
  }

  /**
   * Records one write; `undefined` when it changed nothing (no item before or after, or the
   * same item), as DynamoDB Streams leave out such writes.
   */
  append(change: { readonly table: string; readonly keys: AttributeMap; readonly oldImage: AttributeMap | undefined; readonly newImage: AttributeMap | undefined }): ChangeLogEntry | undefined {
    const { oldImage, newImage } = change;
    if (!oldImage && !newImage) return undefined;
    if (oldImage && newImage && sameAttributeValue({ M: oldImage }, { M: newImage })) return undefined;
    this.lastMicros = Math.max(this.lastMicros, Math.floor(this.clock() * 1000));
    const entry: ChangeLogEntry = {
      table: change.table,
      writeTimeMicros: this.lastMicros,
      keys: change.keys,
      ...(oldImage && { oldImage }),
      ...(newImage && { newImage }),
    };
    const file = this.fileOf(change.table);
    if (file) {
      // One write call per line, synchronously: the line is in the file before the write is answered.
      appendFileSync(file, `${JSON.stringify(entry)}\n`);
    } else {
      const entries = this.memory.get(change.table) ?? [];
      entries.push(entry);
      this.memory.set(change.table, entries);
    }
    return entry;
  }

  /**
   * A table's entries in write order, those of a window only when one is given. The file is
   * read as far as it reached when the call began; a line that does not parse (a torn last line
   * after a crash) is skipped.
   */
  async *entries(table: string, window?: ExportWindow): AsyncGenerator<ChangeLogEntry> {
    const from = window ? Number(micros(window.from)) : -Infinity;
    const to = window ? Number(micros(window.to)) : Infinity;
    const inWindow = (entry: ChangeLogEntry) => entry.writeTimeMicros >= from && entry.writeTimeMicros < to;
    const file = this.fileOf(table);
    if (!file) {
      for (const entry of [...(this.memory.get(table) ?? [])]) if (inWindow(entry)) yield entry;
      return;
    }
    let size: number;
    try {
      size = statSync(file).size;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    if (size === 0) return;
    const reader = createInterface({ input: createReadStream(file, { start: 0, end: size - 1 }), crlfDelay: Infinity });
    for await (const line of reader) {
      const entry = parseEntry(line);
      if (entry && entry.table === table && inWindow(entry)) yield entry;
    }
  }
}

function parseEntry(line: string): ChangeLogEntry | undefined {
  try {
    const value = JSON.parse(line) as Partial<ChangeLogEntry> | null;
    if (!value || typeof value.table !== 'string' || typeof value.writeTimeMicros !== 'number' || typeof value.keys !== 'object' || value.keys === null) return undefined;
    return value as ChangeLogEntry;
  } catch {
    return undefined;
  }
}

export interface ExportChangesOptions extends ExportWindow {
  readonly table: string;
  /** Lines per data file (the writer's default when absent). */
  readonly linesPerFile?: number;
}

export interface ExportedChanges {
  /** The export's `manifest-summary.json`, for `touchedUserIds`. */
  readonly summaryKey: string;
  /** Writes recorded in the window. */
  readonly writes: number;
  /** Lines exported: one per item changed in the window, as DynamoDB compacts them. */
  readonly lines: number;
}

/**
 * The local incremental export: the writes to `table` with from <= write time < to, in the
 * layout DynamoDB's incremental export writes (`writeIncrementalExport`), so that the reader of
 * AWS's exports reads this one. Compacted as AWS compacts: one line per item, the item as it
 * was before the window's first write to it (`OldImage`) and after the last (`NewImage`), at
 * the last write's time; an item created and deleted inside the window leaves no line.
 * Like `ExportToTime`, `to` must not be in the future (by the log's clock): later writes could
 * still fall before it.
 */
export async function exportChanges(changeLog: ChangeLog, storage: RunStorage, folder: string, options: ExportChangesOptions): Promise<ExportedChanges> {
  if (options.to.getTime() > changeLog.now()) {
    throw new RangeError(`the export window ends at ${options.to.toISOString()}, in the future: writes up to then may still come`);
  }
  const items = new Map<string, { keys: WireItem; oldImage: WireItem | undefined; newImage: WireItem | undefined; writeTimeMicros: number }>();
  let writes = 0;
  for await (const entry of changeLog.entries(options.table, options)) {
    writes += 1;
    const id = canonicalKey(entry.keys);
    const seen = items.get(id);
    if (seen) {
      seen.newImage = entry.newImage as WireItem | undefined;
      seen.writeTimeMicros = entry.writeTimeMicros;
    } else {
      items.set(id, {
        keys: entry.keys as WireItem,
        oldImage: entry.oldImage as WireItem | undefined,
        newImage: entry.newImage as WireItem | undefined,
        writeTimeMicros: entry.writeTimeMicros,
      });
    }
  }
  const lines: IncrementalExportLine[] = [...items.values()].filter((item) => item.oldImage || item.newImage).map(incrementalExportLine);
  const summaryKey = await writeIncrementalExport(storage, folder, lines, {
    from: options.from,
    to: options.to,
    ...(options.linesPerFile !== undefined && { linesPerFile: options.linesPerFile }),
  });
  return { summaryKey, writes, lines: lines.length };
}

/** An item's key as one string, whatever order its attributes came in. */
function canonicalKey(keys: AttributeMap): string {
  return JSON.stringify(Object.keys(keys).sort().map((name) => [name, keys[name]]));
}
