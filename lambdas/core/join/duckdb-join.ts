import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance, DuckDBListValue, type DuckDBConnection } from '@duckdb/node-api';

/** One joined key: the user's raw item (if any) and the raw items of all their payments. */
export interface JoinedRow {
  /** Undefined for payments with no readable user id: each such payment is a row of its own. */
  readonly userId: string | undefined;
  /** The user item as DynamoDB JSON text, or undefined when no user item has this key. */
  readonly user: string | undefined;
  /** Payment items as DynamoDB JSON text. */
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

/** Items are at most 400 KB; a bound this size keeps the JSON reader's buffers small. */
const MAX_OBJECT_BYTES = 1024 * 1024;

const literal = (text: string): string => `'${text.replace(/'/g, "''")}'`;

/** A user key as the rules read one: a string, or a number as DynamoDB spells it. */
const keyOf = (attr: string): string => `coalesce(json->'Item'->${literal(attr)}->>'S', json->'Item'->${literal(attr)}->>'N')`;

function bucketOf(buckets: number): string {
  return buckets === 1 ? '0' : `(hash(uid) % ${buckets})`;
}

/**
 * Loads one table's files into the join's database, keeping only this bucket's keys. Each
 * load reads one table, so one JSON reader's buffers are in memory at a time; the database is
 * a file, so what does not fit in `memory_limit` goes to disk.
 */
async function load(connection: DuckDBConnection, table: string, files: readonly string[], keyAttr: string, bucket: number, buckets: number, keepKeyless: boolean): Promise<void> {
  if (files.length === 0) {
    await connection.run(`CREATE TABLE ${table} (uid VARCHAR, raw VARCHAR)`);
    return;
  }
  const source = `read_json_objects([${files.map(literal).join(', ')}], format = 'newline_delimited', compression = 'gzip', maximum_object_size = ${MAX_OBJECT_BYTES})`;
  const keyed = `SELECT ${keyOf(keyAttr)} AS uid, (json->'Item')::VARCHAR AS raw FROM ${source}`;
  const keyless = keepKeyless && bucket === 0 ? 'uid IS NULL OR ' : '';
  await connection.run(`CREATE TABLE ${table} AS SELECT uid, raw FROM (${keyed}) WHERE ${keyless}(uid IS NOT NULL AND ${bucketOf(buckets)} = ${bucket})`);
}

/**
 * The join of one bucket: payments grouped by user id, full outer join with the users, so
 * that each row is one user with every payment of theirs (or a user with none, or payments
 * with no user item). DuckDB handles keys and grouping only; every rule stays in TypeScript.
 * Payments without a user id come in bucket 0, one row each.
 */
/** Yields the rows a DuckDB chunk at a time (2,048 rows), so memory holds one chunk, not the bucket. */
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
    await load(connection, 'payments', spec.paymentFiles, spec.paymentUserAttr, spec.bucket, spec.buckets, true);
    await load(connection, 'users', spec.userFiles, spec.userKeyAttr, spec.bucket, spec.buckets, false);
    const result = await connection.stream(`
      WITH by_user AS (SELECT uid, list(raw) AS payments FROM payments WHERE uid IS NOT NULL GROUP BY uid)
      SELECT coalesce(users.uid, by_user.uid) AS uid, users.raw AS user_item, by_user.payments
        FROM users FULL OUTER JOIN by_user ON users.uid = by_user.uid
      UNION ALL
      SELECT NULL, NULL, [raw] FROM payments WHERE uid IS NULL`);
    for (;;) {
      const chunk = await result.fetchChunk();
      if (!chunk || chunk.rowCount === 0) break;
      const rows: JoinedRow[] = [];
      for (const [uid, user, payments] of chunk.getRows()) {
        rows.push({
          userId: typeof uid === 'string' ? uid : undefined,
          user: typeof user === 'string' ? user : undefined,
          payments: payments instanceof DuckDBListValue ? (payments.items as string[]) : [],
        });
      }
      yield rows;
    }
  } finally {
    connection.closeSync();
    instance.closeSync();
    await rm(workDir, { recursive: true, force: true });
  }
}
