import { randomBytes } from 'node:crypto';
import type { AttributeValue, DynamoDBRecord } from 'aws-lambda';

/** An item (or its keys) in the JSON form of Lambda's stream events, exactly as a stream image carries it; the sync's own looser form is `WireItem`. */
export type AttributeMap = Record<string, AttributeValue>;

export interface ItemChange {
  readonly keys: AttributeMap;
  readonly oldImage: AttributeMap | undefined;
  readonly newImage: AttributeMap | undefined;
}

export interface ShardLogOptions {
  readonly tableName: string;
  readonly region: string;
  /** Milliseconds since the epoch; a test may move time without waiting for it. */
  readonly now?: () => number;
}

const LOCAL_ACCOUNT = '000000000000';
/**
 * Sequence numbers are decimal strings of a fixed width (like DynamoDB's 21-digit ones), so
 * they order the same as strings and as numbers.
 */
const SEQUENCE_BASE = 10n ** 20n;

/**
 * The records of one stream shard, in write order, as Lambda would read them
 * (StreamViewType NEW_AND_OLD_IMAGES). Locally one shard holds the whole table.
 */
export class ShardLog {
  readonly streamArn: string;
  readonly shardId: string;
  readonly tableName: string;
  readonly region: string;
  private readonly now: () => number;
  private readonly records: DynamoDBRecord[] = [];
  private readonly listeners = new Set<(record: DynamoDBRecord) => void>();

  constructor(options: ShardLogOptions) {
    this.tableName = options.tableName;
    this.region = options.region;
    this.now = options.now ?? Date.now;
    const created = new Date(this.now()).toISOString().replace('Z', '');
    this.streamArn = `arn:aws:dynamodb:${this.region}:${LOCAL_ACCOUNT}:table/${this.tableName}/stream/${created}`;
    this.shardId = `shardId-${String(this.now()).padStart(20, '0')}-${randomBytes(4).toString('hex')}`;
  }

  get length(): number {
    return this.records.length;
  }

  at(index: number): DynamoDBRecord | undefined {
    return this.records[index];
  }

  /**
   * The records from `startSequenceNumber` to `endSequenceNumber`, both included and compared
   * as numbers, in order: what GetRecords reads from an iterator AT_SEQUENCE_NUMBER the start.
   */
  between(startSequenceNumber: string, endSequenceNumber: string): DynamoDBRecord[] {
    const start = BigInt(startSequenceNumber);
    const end = BigInt(endSequenceNumber);
    return this.records.filter((record) => {
      const sequence = BigInt(record.dynamodb?.SequenceNumber ?? '-1');
      return sequence >= start && sequence <= end;
    });
  }

  /** Appends the change as the next record and tells every subscriber. Returns `undefined` for no change. */
  append(change: ItemChange): DynamoDBRecord | undefined {
    const { oldImage, newImage } = change;
    if (!oldImage && !newImage) return undefined;
    if (oldImage && newImage && sameAttributeValue({ M: oldImage }, { M: newImage })) return undefined;
    const eventName = !oldImage ? 'INSERT' : !newImage ? 'REMOVE' : 'MODIFY';
    const record: DynamoDBRecord = {
      eventID: randomBytes(16).toString('hex'),
      eventName,
      eventVersion: '1.1',
      eventSource: 'aws:dynamodb',
      awsRegion: this.region,
      dynamodb: {
        ApproximateCreationDateTime: Math.floor(this.now() / 1000),
        Keys: change.keys,
        ...(newImage && { NewImage: newImage }),
        ...(oldImage && { OldImage: oldImage }),
        SequenceNumber: (SEQUENCE_BASE + BigInt(this.records.length + 1)).toString(),
        SizeBytes: itemSize(change.keys) + itemSize(newImage) + itemSize(oldImage),
        StreamViewType: 'NEW_AND_OLD_IMAGES',
      },
      eventSourceARN: this.streamArn,
    };
    this.records.push(record);
    for (const listener of this.listeners) listener(record);
    return record;
  }

  /** Calls `listener` with every record appended from now on; returns the unsubscribe function. */
  subscribe(listener: (record: DynamoDBRecord) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

/**
 * DynamoDB's value equality: maps by key, sets regardless of order, numbers numerically.
 * A write that leaves an item equal to what it was produces no stream record.
 */
export function sameAttributeValue(a: AttributeValue, b: AttributeValue): boolean {
  const [typeA] = Object.keys(a);
  const [typeB] = Object.keys(b);
  if (typeA !== typeB || typeA === undefined) return false;
  const valueA = (a as Record<string, unknown>)[typeA];
  const valueB = (b as Record<string, unknown>)[typeA];
  switch (typeA) {
    case 'N':
      return Number(valueA) === Number(valueB);
    case 'SS':
    case 'BS':
      return sameSet(valueA as string[], valueB as string[], String);
    case 'NS':
      return sameSet(valueA as string[], valueB as string[], (n) => String(Number(n)));
    case 'L': {
      const listA = valueA as AttributeValue[];
      const listB = valueB as AttributeValue[];
      return listA.length === listB.length && listA.every((item, i) => sameAttributeValue(item, listB[i] as AttributeValue));
    }
    case 'M': {
      const mapA = valueA as Record<string, AttributeValue>;
      const mapB = valueB as Record<string, AttributeValue>;
      const keys = Object.keys(mapA);
      return (
        keys.length === Object.keys(mapB).length &&
        keys.every((key) => key in mapB && sameAttributeValue(mapA[key] as AttributeValue, mapB[key] as AttributeValue))
      );
    }
    default:
      return valueA === valueB;
  }
}

function sameSet(a: string[], b: string[], canonical: (value: string) => string): boolean {
  const setB = new Set(b.map(canonical));
  return a.length === b.length && a.every((value) => setB.has(canonical(value)));
}

/** DynamoDB's item size rules (names and values in bytes), which is what SizeBytes reports. */
function itemSize(item: AttributeMap | undefined): number {
  if (!item) return 0;
  return Object.entries(item).reduce((sum, [name, value]) => sum + Buffer.byteLength(name) + valueSize(value), 0);
}

function valueSize(value: AttributeValue): number {
  if (value.S !== undefined) return Buffer.byteLength(value.S);
  if (value.N !== undefined) return numberSize(value.N);
  if (value.B !== undefined) return Buffer.from(value.B, 'base64').length;
  if (value.BOOL !== undefined || value.NULL !== undefined) return 1;
  if (value.SS) return value.SS.reduce((sum, s) => sum + Buffer.byteLength(s), 0);
  if (value.NS) return value.NS.reduce((sum, n) => sum + numberSize(n), 0);
  if (value.BS) return value.BS.reduce((sum, b) => sum + Buffer.from(b, 'base64').length, 0);
  if (value.L) return 3 + value.L.reduce((sum, item) => sum + 1 + valueSize(item), 0);
  if (value.M) return 3 + Object.values(value.M).length + itemSize(value.M);
  return 0;
}

/** Numbers take about one byte per two significant digits, plus one. */
function numberSize(n: string): number {
  const digits = n.replace(/^-/, '').replace('.', '').replace(/^0+/, '').replace(/0+$/, '');
  return Math.ceil(Math.max(digits.length, 1) / 2) + 1;
}
