/** The environment contract is broken: names every bad or missing variable at once. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: readonly string[]) {
    super(`Invalid configuration: ${problems.join('; ')}`);
  }
}

/** A manual event does not have the contract's shape; nothing was read or written. */
export class InvalidEventError extends Error {
  override readonly name = 'InvalidEventError';
  constructor(readonly problems: readonly string[]) {
    super(`Invalid event: ${problems.join('; ')}`);
  }
}

/** Another writer kept changing the user's list faster than the write path could re-plan. */
export class WriteConflictError extends Error {
  override readonly name = 'WriteConflictError';
  constructor(
    readonly userId: string,
    readonly attempts: number,
  ) {
    super(`User ${userId}: list changed under ${attempts} attempts in a row; giving up for now`);
  }
}

/** A table, index or endpoint the run needs is not there: the run cannot start. */
export class EnvironmentError extends Error {
  override readonly name = 'EnvironmentError';
}

/**
 * DynamoDB errors no retry can mend: the request itself is refused (an item that would pass
 * 400 KB, a value DynamoDB will not store). Throttling, conflicts, timeouts and service errors
 * are transient: retried within bounds, then reported.
 */
const PERMANENT_ERROR_NAMES = new Set(['ValidationException', 'ItemCollectionSizeLimitExceededException']);

export function isPermanentError(error: unknown): boolean {
  return error instanceof Error && PERMANENT_ERROR_NAMES.has(error.name);
}
