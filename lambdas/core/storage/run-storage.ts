/**
 * The storage port of a full run: where snapshots, candidate files and report parts live.
 * Keys are S3-style paths ("runs/<run id>/snapshot/…"); a local folder stands in for the
 * bucket here, S3 on AWS. DuckDB reads local files only, so `localPaths` is how the join
 * gets at data files (on S3: a download into ephemeral storage; here: the files themselves).
 */
export interface RunStorage {
  /** The prefix run folders live under: `runs` in the bucket (a lifecycle rule expires it), none in a local report folder. */
  readonly runsPrefix: string;
  put(key: string, body: string | Uint8Array): Promise<void>;
  /** The object as text, or undefined when it does not exist. */
  getText(key: string): Promise<string | undefined>;
  /** Keys under a prefix, sorted. */
  list(prefix: string): Promise<string[]>;
  /** Removes every object under a prefix. */
  deletePrefix(prefix: string): Promise<void>;
  /** Local file paths holding these objects, in the same order, for readers that open files. */
  localPaths(keys: readonly string[]): Promise<string[]>;
}

/** Joins key segments with one slash between them. */
export function storageKey(...parts: string[]): string {
  return parts
    .map((part) => part.replace(/^\/+|\/+$/g, ''))
    .filter(Boolean)
    .join('/');
}
