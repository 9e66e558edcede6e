import type { CoursesFormat } from '../config';
import { readText, type WireValue } from './attribute-values';

/** The key of a course id inside a map entry: `{ courseId, purchasedAt, orderId }`. */
export const ENTRY_COURSE_KEY = 'courseId';

/**
 * One entry of `purchasedCourses`, decoded. `raw` is kept so that an entry the sync keeps is
 * written back exactly as it was read, whatever other fields it carries.
 */
export type CourseEntry =
  | { readonly kind: 'id'; readonly courseId: string; readonly raw: WireValue }
  | { readonly kind: 'object'; readonly courseId: string; readonly raw: WireValue }
  | { readonly kind: 'malformed'; readonly raw: WireValue };

export type CoursesList =
  /** No attribute at all: a write must find it still absent. */
  | { readonly state: 'absent' }
  | { readonly state: 'list'; readonly raw: WireValue; readonly entries: readonly CourseEntry[] }
  /** The attribute is there but is no list (a string, a set...): reported, never rewritten. */
  | { readonly state: 'unsupported'; readonly raw: WireValue };

export function decodeEntry(raw: WireValue): CourseEntry {
  if (typeof raw.S === 'string') {
    return raw.S.trim() === '' ? { kind: 'malformed', raw } : { kind: 'id', courseId: raw.S, raw };
  }
  const courseId = raw.M ? readText(raw.M[ENTRY_COURSE_KEY]) : undefined;
  if (courseId !== undefined && raw.M?.[ENTRY_COURSE_KEY]?.S !== undefined) return { kind: 'object', courseId, raw };
  return { kind: 'malformed', raw };
}

export function decodeCourses(raw: WireValue | undefined): CoursesList {
  if (raw === undefined || raw.NULL === true) return { state: 'absent' };
  if (!Array.isArray(raw.L)) return { state: 'unsupported', raw };
  return { state: 'list', raw, entries: raw.L.map(decodeEntry) };
}

export function encodeCourses(entries: readonly CourseEntry[]): WireValue {
  return { L: entries.map((entry) => entry.raw) };
}

export function listedCourseIds(list: CoursesList): string[] {
  if (list.state !== 'list') return [];
  return list.entries.flatMap((entry) => (entry.kind === 'malformed' ? [] : [entry.courseId]));
}

/**
 * The format new entries take: the one the list already uses most (the first entry's on a
 * tie), so an item never ends up mixing formats because of the sync; the configured one when
 * there is nothing to copy.
 */
export function entryFormat(list: CoursesList, configured: CoursesFormat): 'ids' | 'objects' {
  const entries = list.state === 'list' ? list.entries.filter((entry) => entry.kind !== 'malformed') : [];
  const objects = entries.filter((entry) => entry.kind === 'object').length;
  const ids = entries.length - objects;
  if (objects > ids) return 'objects';
  if (ids > objects) return 'ids';
  if (entries[0]) return entries[0].kind === 'object' ? 'objects' : 'ids';
  return configured === 'objects' ? 'objects' : 'ids';
}

export function newEntry(courseId: string, format: 'ids' | 'objects', orderId: string | undefined, at: string): CourseEntry {
  if (format === 'ids') return { kind: 'id', courseId, raw: { S: courseId } };
  const fields: Record<string, WireValue> = { [ENTRY_COURSE_KEY]: { S: courseId }, purchasedAt: { S: at } };
  if (orderId) fields.orderId = { S: orderId };
  return { kind: 'object', courseId, raw: { M: fields } };
}
