/**
 * The wire form of a DynamoDB value, loose enough for both the SDK's `AttributeValue` and the
 * images Lambda delivers from a stream. The sync keeps values in this form so that entries and
 * fields it does not own are written back exactly as they were read.
 */
export interface WireValue {
  S?: string;
  N?: string;
  B?: unknown;
  SS?: string[];
  NS?: string[];
  BS?: unknown[];
  M?: Record<string, WireValue>;
  L?: WireValue[];
  NULL?: boolean;
  BOOL?: boolean;
}

export type WireItem = Record<string, WireValue>;

/** A non-empty string, or a number spelled as DynamoDB stores it; anything else is absent. */
export function readText(value: WireValue | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value.S === 'string') return value.S.trim() === '' ? undefined : value.S;
  if (typeof value.N === 'string') return value.N;
  return undefined;
}

/** One string, a list of strings or a string set; undefined when the shape is anything else. */
export function readTextList(value: WireValue | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const single = readText(value);
  if (single !== undefined) return [single];
  const items = (value.SS ?? value.L)?.map((item) => (typeof item === 'string' ? readText({ S: item }) : readText(item)));
  if (!items || items.length === 0 || items.some((item) => item === undefined)) return undefined;
  return items as string[];
}
