/** A Lambda event filter pattern (the JSON a FilterCriteria entry holds). */
export type FilterPattern = Record<string, unknown>;

/** The pattern uses syntax this local matcher does not implement; matching it would guess. */
export class UnsupportedFilterPatternError extends Error {
  override readonly name = 'UnsupportedFilterPatternError';
  constructor(
    readonly path: string,
    detail: string,
  ) {
    super(`Filter pattern at "${path}": ${detail}`);
  }
}

/**
 * Lambda's event filtering for the subset of the syntax the stream mapping uses: nested
 * objects (every key must match) and leaf arrays of exact strings, numbers or booleans (any
 * one matches, case-sensitively). Operators such as `prefix` or `exists` are refused rather
 * than guessed at. Several patterns match when any one does; no patterns match everything.
 */
export function matchesFilters(patterns: readonly FilterPattern[], event: unknown): boolean {
  return patterns.length === 0 || patterns.some((pattern) => matchesObject(pattern, event, ''));
}

function matchesObject(pattern: FilterPattern, event: unknown, path: string): boolean {
  return Object.entries(pattern).every(([key, rule]) => {
    const here = path ? `${path}.${key}` : key;
    const value = isObject(event) ? event[key] : undefined;
    if (Array.isArray(rule)) return matchesLeaf(rule, value, here);
    if (isObject(rule)) return isObject(value) && matchesObject(rule, value, here);
    throw new UnsupportedFilterPatternError(here, 'a leaf must be an array of values');
  });
}

function matchesLeaf(rule: readonly unknown[], value: unknown, path: string): boolean {
  return rule.some((expected) => {
    if (typeof expected === 'object' && expected !== null) {
      throw new UnsupportedFilterPatternError(path, `operator ${JSON.stringify(expected)} is not supported locally`);
    }
    // A leaf matches an array value when any of its elements matches.
    const candidates = Array.isArray(value) ? value : [value];
    return candidates.some((candidate) => candidate !== undefined && !isObject(candidate) && candidate === expected);
  });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
