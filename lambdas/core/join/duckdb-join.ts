import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { bucketOfKeySql } from './buckets';

/**
 * One joined key: the user's item (if any) and the items of all their payments, each as the
 * snapshot's line, `{"Item": …}` in DynamoDB JSON, untouched.
 */
export interface JoinedRow {
  /** Undefined for payments with no readable user id: each such payment is a row of its own. */
  readonly userId: string | undefined;
  /** The user item's line, or undefined when no user item has this key. */
  readonly user: string | undefined;
  readonly payments: readonly string[];
}

export interface JoinLimits {
  /** DuckDB's `memory_limit`; past it, DuckDB spills to `tempDirectory`. */
  readonly memoryLimit: string;
  /** Where the join's database file and spill files go (a local disk: /tmp on Lambda). */
  readonly tempDirectory?: string;
  readonly threads: number;
}

export interface BucketJoin {
  readonly paymentFiles: readonly string[];
  readonly userFiles: readonly string[];
  /** The attribute holding the user id on a payment, and the key attribute of a user. */
  readonly paymentUserAttr: string;
  readonly userKeyAttr: string;
  readonly bucket: number;
  readonly buckets: number;
  readonly limits: JoinLimits;
}

/** Items are at most 400 KB; a line of an export is one item. */
const MAX_LINE_BYTES = 1024 * 1024;

const literal = (text: string): string => `'${text.replace(/'/g, "''")}'`;

/** A user key as `keyOfItem` reads one: a string, or a number as DynamoDB spells it. */
const keyOf = (attr: string): string => {
  const path = (type: string) => literal(`$.Item."${attr.replace(/["\\]/g, '\\$&')}".${type}`);
  return `coalesce(json_extract_string(line, ${path('S')}), json_extract_string(line, ${path('N')}))`;
};

/**
 * Adds one table's items to the join's single `items` table, keeping only this bucket's keys.
 * Each load reads one table, so one JSON reader's buffers are in memory at a time; the
 * database is a file, so what does not fit in `memory_limit` goes to disk. (One table, not a
 * UNION of two, because DuckDB's sort of a union could not stay within a small memory limit.)
 */
async function load(connection: DuckDBConnection, files: readonly string[], keyAttr: string, isUser: boolean, bucket: number, buckets: number): Promise<void> {
  if (files.length === 0) return;
  // Each line whole, as text: JSON escapes every control character, so the record separator
  // never occurs in a line, and only the key is parsed out here.
  const source = `read_csv([${files.map(literal).join(', ')}], columns = {'line': 'VARCHAR'}, delim = chr(30), quote = '', escape = '', header = false, auto_detect = false, compression = 'gzip', max_line_size = ${MAX_LINE_BYTES})`;
  const keyed = `SELECT ${keyOf(keyAttr)} AS uid, line FROM ${source}`;
  await connection.run(`INSERT INTO items SELECT uid, ${isUser}, line FROM (${keyed}) WHERE ${bucketOfKeySql('uid', buckets)} = ${bucket}`);
}

/**
 * The join of one bucket: a full outer join of users and their payments, as a sort-merge
 * join. Both tables' rows are sorted by user id, so each user's item and every payment of
 * theirs arrive together and are grouped here, one user at a time:
 * a user with no payments, payments with no user item, and both. DuckDB's sort spills to disk,
 * so memory stays within `memory_limit` whatever the bucket's size. DuckDB handles keys and
 * order only; every rule stays in TypeScript. Payments without a user id come in bucket 0,
 * one row each. Yields a chunk of joined rows at a time.
 */
export async function* joinBucket(spec: BucketJoin): AsyncGenerator<JoinedRow[]> {
  const workDir = await mkdtemp(join(spec.limits.tempDirectory ?? tmpdir(), 'payment-sync-join-'));
  const instance = await DuckDBInstance.create(join(workDir, 'join.duckdb'), {
    memory_limit: spec.limits.memoryLimit,
    temp_directory: join(workDir, 'spill'),
    threads: String(spec.limits.threads),
    preserve_insertion_order: 'false',
  });
  const connection = await instance.connect();
  try {
    await connection.run('CREATE TABLE items (uid VARCHAR, is_user BOOLEAN, raw VARCHAR)');
    await load(connection, spec.paymentFiles, spec.paymentUserAttr, false, spec.bucket, spec.buckets);
    await load(connection, spec.userFiles, spec.userKeyAttr, true, spec.bucket, spec.buckets);
    const result = await connection.stream('SELECT uid, is_user, raw FROM items WHERE uid IS NOT NULL ORDER BY uid');
    let current: { userId: string; user: string | undefined; payments: string[] } | undefined;
    for (;;) {
      const chunk = await result.fetchChunk();
      if (!chunk || chunk.rowCount === 0) break;
      const rows: JoinedRow[] = [];
      for (const [uid, isUser, raw] of chunk.getRows() as Array<[string, boolean, string]>) {
        if (current?.userId !== uid) {
          if (current) rows.push(current);
          current = { userId: uid, user: undefined, payments: [] };
        }
        if (isUser) current.user = raw;
        else current.payments.push(raw);
      }
      yield rows;
    }
    if (current) yield [current];
    const keyless = await connection.stream('SELECT raw FROM items WHERE uid IS NULL');
    for (;;) {
      const chunk = await keyless.fetchChunk();
      if (!chunk || chunk.rowCount === 0) break;
      yield (chunk.getRows() as Array<[string]>).map(([raw]) => ({ userId: undefined, user: undefined, payments: [raw] }));
    }
  } finally {
    connection.closeSync();
    instance.closeSync();
    await rm(workDir, { recursive: true, force: true });
  }
}
