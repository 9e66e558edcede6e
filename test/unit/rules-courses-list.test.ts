import fc from 'fast-check';
import type { WireValue } from '../../lambdas/core/rules/attribute-values';
import {
  decodeCourses,
  decodeEntry,
  encodeCourses,
  entryFormat,
  listedCourseIds,
  newEntry,
  type CourseEntry,
  type CoursesList,
} from '../../lambdas/core/rules/courses-list';
import {
  coursesListArb,
  idEntryArb,
  listEntryArb,
  malformedEntryArb,
  objectEntryArb,
  unsupportedAttributeArb,
} from '../support/arbitraries';

const entriesOf = (list: CoursesList): readonly CourseEntry[] => {
  if (list.state !== 'list') throw new Error(`expected a list, got ${list.state}`);
  return list.entries;
};

describe('decodeCourses', () => {
  test('absent attribute → absent', () => {
    expect(decodeCourses(undefined)).toEqual({ state: 'absent' });
  });

  test('NULL → absent', () => {
    expect(decodeCourses({ NULL: true })).toEqual({ state: 'absent' });
  });

  test.each<[string, WireValue]>([
    ['a string', { S: 'c1' }],
    ['a string set', { SS: ['c1', 'c2'] }],
    ['a map', { M: { c1: { BOOL: true } } }],
    ['a number', { N: '3' }],
    ['a boolean', { BOOL: true }],
    ['NULL false', { NULL: false }],
  ])('%s → unsupported, raw kept', (_, raw) => {
    const list = decodeCourses(raw);
    expect(list).toEqual({ state: 'unsupported', raw });
    expect(list.state === 'unsupported' && list.raw).toBe(raw);
  });

  test('an empty list is a list with no entries', () => {
    expect(decodeCourses({ L: [] })).toEqual({ state: 'list', raw: { L: [] }, entries: [] });
  });

  test('strings → id entries', () => {
    const entries = entriesOf(decodeCourses({ L: [{ S: 'c1' }, { S: 'c2' }] }));
    expect(entries).toEqual([
      { kind: 'id', courseId: 'c1', raw: { S: 'c1' } },
      { kind: 'id', courseId: 'c2', raw: { S: 'c2' } },
    ]);
  });

  test('maps with a courseId → object entries, unknown fields kept in raw', () => {
    const raw: WireValue = {
      M: {
        courseId: { S: 'c1' },
        purchasedAt: { S: '2024-01-01T00:00:00.000Z' },
        orderId: { S: 'o1' },
        price: { N: '150000' },
        meta: { M: { coupon: { S: 'HEMAT' }, tags: { L: [{ S: 'a' }, { N: '1' }] } } },
      },
    };
    const [entry] = entriesOf(decodeCourses({ L: [raw] }));
    expect(entry).toEqual({ kind: 'object', courseId: 'c1', raw });
    expect(entry!.raw).toBe(raw);
  });

  test('a course id string is not trimmed (it is written back as read)', () => {
    const [entry] = entriesOf(decodeCourses({ L: [{ S: ' c1 ' }] }));
    expect(entry).toMatchObject({ kind: 'id', courseId: ' c1 ' });
  });

  test.each<[string, WireValue]>([
    ['a number', { N: '12' }],
    ['an empty string', { S: '' }],
    ['a blank string', { S: '   ' }],
    ['a map without courseId', { M: { title: { S: 'Kelas A' } } }],
    ['an empty map', { M: {} }],
    ['a map with a numeric courseId', { M: { courseId: { N: '12' } } }],
    ['a map with a blank courseId', { M: { courseId: { S: ' ' } } }],
    ['a map with a list courseId', { M: { courseId: { L: [{ S: 'c1' }] } } }],
    ['a map with a differently cased key', { M: { CourseId: { S: 'c1' } } }],
    ['a nested list', { L: [{ S: 'c1' }] }],
    ['a string set', { SS: ['c1'] }],
    ['NULL', { NULL: true }],
    ['a boolean', { BOOL: false }],
  ])('%s → malformed, raw kept', (_, raw) => {
    const entry = decodeEntry(raw);
    expect(entry).toEqual({ kind: 'malformed', raw });
    expect(entry.raw).toBe(raw);
  });

  test('a mixed list decodes entry by entry, in order', () => {
    const raw: WireValue = {
      L: [{ S: 'c1' }, { M: { courseId: { S: 'c2' }, x: { N: '1' } } }, { N: '5' }, { S: '' }, { M: { note: { S: 'n' } } }, { L: [] }, { S: 'c1' }],
    };
    expect(entriesOf(decodeCourses(raw)).map((entry) => entry.kind)).toEqual(['id', 'object', 'malformed', 'malformed', 'malformed', 'malformed', 'id']);
    expect(listedCourseIds(decodeCourses(raw))).toEqual(['c1', 'c2', 'c1']);
  });
});

describe('encodeCourses', () => {
  test('a mixed list with malformed entries and unknown fields round-trips exactly', () => {
    const raw: WireValue = {
      L: [
        { S: 'c1' },
        { M: { purchasedAt: { S: '2024-01-01' }, courseId: { S: 'c2' }, extra: { M: { deep: { L: [{ NULL: true }, { BOOL: false }] } } } } },
        { N: '5' },
        { M: { title: { S: 'no id' } } },
        { S: '' },
        { L: [{ S: 'nested' }] },
        { B: new Uint8Array([1, 2, 3]) },
        { SS: ['a', 'b'] },
      ],
    };
    const snapshot = structuredClone(raw);
    const encoded = encodeCourses(entriesOf(decodeCourses(raw)));
    expect(encoded).toEqual(snapshot);
    expect(raw).toEqual(snapshot);
    encoded.L!.forEach((value, i) => expect(value).toBe(raw.L![i]));
  });

  test('property: decode → encode gives back the same wire values, entry for entry', () => {
    fc.assert(
      fc.property(coursesListArb, (raw) => {
        const snapshot = structuredClone(raw);
        const list = decodeCourses(raw);
        const encoded = encodeCourses(entriesOf(list));
        expect(encoded).toEqual(snapshot);
        expect(JSON.stringify(encoded)).toBe(JSON.stringify(snapshot));
        expect(encoded.L).toHaveLength(raw.L!.length);
        encoded.L!.forEach((value, i) => expect(value).toBe(raw.L![i]));
        // decoding does not touch what it reads
        expect(raw).toEqual(snapshot);
      }),
      { numRuns: 300 },
    );
  });

  test('property: decode ∘ encode ∘ decode = decode', () => {
    fc.assert(
      fc.property(coursesListArb, (raw) => {
        const once = entriesOf(decodeCourses(raw));
        const twice = entriesOf(decodeCourses(encodeCourses(once)));
        expect(twice).toEqual(once);
      }),
      { numRuns: 300 },
    );
  });

  test('property: entry kinds follow the entry shapes', () => {
    fc.assert(
      fc.property(idEntryArb, objectEntryArb, malformedEntryArb, (id, object, malformed) => {
        expect(decodeEntry(id)).toEqual({ kind: 'id', courseId: id.S, raw: id });
        expect(decodeEntry(object)).toEqual({ kind: 'object', courseId: object.M!.courseId!.S, raw: object });
        expect(decodeEntry(malformed)).toEqual({ kind: 'malformed', raw: malformed });
      }),
      { numRuns: 300 },
    );
  });

  test('property: any non-list attribute is unsupported', () => {
    fc.assert(
      fc.property(unsupportedAttributeArb, (raw) => {
        expect(decodeCourses(raw)).toEqual({ state: 'unsupported', raw });
        expect(listedCourseIds(decodeCourses(raw))).toEqual([]);
      }),
      { numRuns: 100 },
    );
  });
});

describe('listedCourseIds', () => {
  test('absent and unsupported list nothing', () => {
    expect(listedCourseIds({ state: 'absent' })).toEqual([]);
    expect(listedCourseIds(decodeCourses({ SS: ['c1'] }))).toEqual([]);
  });

  test('property: the course ids of id and object entries, in order, duplicates included', () => {
    fc.assert(
      fc.property(fc.array(listEntryArb, { maxLength: 10 }), (L) => {
        const expected = L.flatMap((raw) => {
          if (typeof raw.S === 'string') return raw.S.trim() === '' ? [] : [raw.S];
          const id = raw.M?.courseId?.S;
          return id !== undefined && id.trim() !== '' ? [id] : [];
        });
        expect(listedCourseIds(decodeCourses({ L }))).toEqual(expected);
      }),
      { numRuns: 200 },
    );
  });
});

describe('entryFormat', () => {
  const list = (...L: WireValue[]) => decodeCourses({ L });
  const id = (courseId: string): WireValue => ({ S: courseId });
  const obj = (courseId: string): WireValue => ({ M: { courseId: { S: courseId } } });
  const bad: WireValue = { N: '1' };

  test('the majority format wins', () => {
    expect(entryFormat(list(id('a'), obj('b'), obj('c')), 'ids')).toBe('objects');
    expect(entryFormat(list(obj('a'), id('b'), id('c')), 'objects')).toBe('ids');
    expect(entryFormat(list(obj('a')), 'ids')).toBe('objects');
    expect(entryFormat(list(id('a')), 'objects')).toBe('ids');
  });

  test('a tie goes to the first entry', () => {
    expect(entryFormat(list(obj('a'), id('b')), 'ids')).toBe('objects');
    expect(entryFormat(list(id('a'), obj('b')), 'objects')).toBe('ids');
  });

  test('malformed entries neither count nor break a tie', () => {
    expect(entryFormat(list(bad, bad, bad, id('a'), obj('b')), 'objects')).toBe('ids');
    expect(entryFormat(list(bad, obj('a'), id('b')), 'ids')).toBe('objects');
    expect(entryFormat(list({ M: { title: { S: 'x' } } }, { M: {} }, id('a')), 'objects')).toBe('ids');
  });

  test.each<[string, CoursesList]>([
    ['an absent list', { state: 'absent' }],
    ['an empty list', decodeCourses({ L: [] })],
    ['a list of malformed entries only', decodeCourses({ L: [{ N: '1' }, { M: {} }] })],
    ['an unsupported attribute', decodeCourses({ S: 'c1' })],
  ])('%s takes the configured format (auto = ids)', (_, courses) => {
    expect(entryFormat(courses, 'objects')).toBe('objects');
    expect(entryFormat(courses, 'ids')).toBe('ids');
    expect(entryFormat(courses, 'auto')).toBe('ids');
  });

  test('property: strict majority or first entry, whatever is configured', () => {
    fc.assert(
      fc.property(fc.array(listEntryArb, { maxLength: 10 }), fc.constantFrom('auto', 'ids', 'objects' as const), (L, configured) => {
        const entries = entriesOf(decodeCourses({ L })).filter((entry) => entry.kind !== 'malformed');
        const objects = entries.filter((entry) => entry.kind === 'object').length;
        const ids = entries.length - objects;
        const expected =
          entries.length === 0
            ? configured === 'objects'
              ? 'objects'
              : 'ids'
            : objects !== ids
              ? objects > ids
                ? 'objects'
                : 'ids'
              : entries[0]!.kind === 'object'
                ? 'objects'
                : 'ids';
        expect(entryFormat(decodeCourses({ L }), configured)).toBe(expected);
      }),
      { numRuns: 300 },
    );
  });
});

describe('newEntry', () => {
  test('ids → a plain string', () => {
    expect(newEntry('c1', 'ids', 'o1', '2025-01-01T00:00:00.000Z')).toEqual({ kind: 'id', courseId: 'c1', raw: { S: 'c1' } });
  });

  test('objects → { courseId, purchasedAt, orderId }', () => {
    expect(newEntry('c1', 'objects', 'o1', '2025-01-01T00:00:00.000Z')).toEqual({
      kind: 'object',
      courseId: 'c1',
      raw: { M: { courseId: { S: 'c1' }, purchasedAt: { S: '2025-01-01T00:00:00.000Z' }, orderId: { S: 'o1' } } },
    });
  });

  test('objects without an order id carry no orderId field', () => {
    const entry = newEntry('c1', 'objects', undefined, '2025-01-01T00:00:00.000Z');
    expect(entry.raw).toEqual({ M: { courseId: { S: 'c1' }, purchasedAt: { S: '2025-01-01T00:00:00.000Z' } } });
  });

  test('property: a new entry decodes back to itself', () => {
    fc.assert(
      fc.property(fc.constantFrom('c1', 'kelas-ä', '42', ' padded '), fc.constantFrom('ids', 'objects' as const), fc.option(fc.constantFrom('o1', 'ord-9')), (courseId, format, orderId) => {
        const entry = newEntry(courseId, format, orderId ?? undefined, '2025-01-01T00:00:00.000Z');
        expect(decodeEntry(structuredClone(entry.raw))).toEqual(entry);
        expect(entryFormat(decodeCourses({ L: [entry.raw] }), format === 'ids' ? 'objects' : 'ids')).toBe(format);
      }),
      { numRuns: 100 },
    );
  });
});
