import { createHash } from 'node:crypto';
import type { WireValue } from '../rules/attribute-values';

/**
 * The bucket of a user id, computed the same way in TypeScript (the scan snapshot files items
 * by bucket as it writes them) and in DuckDB (the join keeps a bucket's keys from files that
 * hold several): the first 8 bytes of the id's MD5, little-endian, modulo the bucket count,
 * which is DuckDB's `md5_number_upper`. Items with no id go to bucket 0.
 */
export function bucketOfKey(userId: string | undefined, buckets: number): number {
  if (userId === undefined || buckets === 1) return 0;
  return Number(createHash('md5').update(userId, 'utf8').digest().readBigUInt64LE(0) % BigInt(buckets));
}

/** The same in SQL, for a VARCHAR column holding the id (NULL when there is none). */
export function bucketOfKeySql(column: string, buckets: number): string {
  return buckets === 1 ? '0' : `(CASE WHEN ${column} IS NULL THEN 0 ELSE md5_number_upper(${column}) % ${buckets} END)`;
}

/** The id a bucket is computed from, as the join extracts it: a string, or a number as DynamoDB spells it. */
export function keyOfItem(value: WireValue | undefined): string | undefined {
  return value?.S ?? value?.N;
}
