import type { ConsumedCapacity, DynamoDBClient } from '@aws-sdk/client-dynamodb';

const READS = new Set(['ScanCommand', 'QueryCommand', 'GetItemCommand', 'BatchGetItemCommand']);
const WRITES = new Set(['UpdateItemCommand', 'PutItemCommand', 'DeleteItemCommand', 'BatchWriteItemCommand']);

/** One table's share of what a client sent. */
export interface TableMeter {
  /** Calls by command. */
  calls: Record<string, number>;
  /** Capacity units by command. */
  units: Record<string, number>;
  /** Items the table's reads returned (a Scan's or Query's ScannedCount, 1 for a GetItem that found its item). */
  itemsRead: number;
  readUnits: number;
  writeUnits: number;
}

/** What one process's client sent: calls by command, failures by command and error, capacity. */
export interface Meter {
  readonly calls: Record<string, number>;
  readonly failures: Record<string, number>;
  /** Capacity units consumed, by command. */
  readonly units: Record<string, number>;
  /** The same, and the items read, by table name. */
  readonly tables: Record<string, TableMeter>;
  readUnits: number;
  writeUnits: number;
}

const units = (consumed: ConsumedCapacity | ConsumedCapacity[] | undefined): number =>
  (Array.isArray(consumed) ? consumed : consumed ? [consumed] : []).reduce((sum, entry) => sum + (entry.CapacityUnits ?? 0), 0);

/** Items a read returned, as DynamoDB counts what it read (before any filter). */
function itemsOf(name: string, output: Record<string, unknown>): number {
  if (name === 'GetItemCommand') return output.Item ? 1 : 0;
  if (name === 'BatchGetItemCommand') return Object.values((output.Responses ?? {}) as Record<string, unknown[]>).reduce((sum, items) => sum + items.length, 0);
  if (typeof output.ScannedCount === 'number') return output.ScannedCount;
  if (typeof output.Count === 'number') return output.Count;
  return Array.isArray(output.Items) ? output.Items.length : 0;
}

/** The table a request names (a batch's first). */
function tableOf(input: { TableName?: string; RequestItems?: Record<string, unknown> }): string {
  return input.TableName ?? Object.keys(input.RequestItems ?? {})[0] ?? 'unknown';
}

/**
 * Counts every call the client sends and the capacity each consumed. Reads and writes that do
 * not ask for ConsumedCapacity are made to (`TOTAL`), which changes only the answer's extra
 * field, so the repair's reads and writes are measured as well as the snapshot's scan.
 * Failed calls (a conditional write that lost, say) are counted by error name.
 */
export function instrument(client: DynamoDBClient): Meter {
  const meter: Meter = { calls: {}, failures: {}, units: {}, tables: {}, readUnits: 0, writeUnits: 0 };
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const name = (context as { commandName?: string }).commandName ?? 'unknown';
      meter.calls[name] = (meter.calls[name] ?? 0) + 1;
      const input = args.input as { ReturnConsumedCapacity?: string; TableName?: string; RequestItems?: Record<string, unknown> };
      const measured = READS.has(name) || WRITES.has(name);
      const table = (meter.tables[tableOf(input)] ??= { calls: {}, units: {}, itemsRead: 0, readUnits: 0, writeUnits: 0 });
      table.calls[name] = (table.calls[name] ?? 0) + 1;
      try {
        const answer = await next(measured && input.ReturnConsumedCapacity === undefined ? { ...args, input: { ...input, ReturnConsumedCapacity: 'TOTAL' } } : args);
        const output = answer.output as unknown as { ConsumedCapacity?: ConsumedCapacity | ConsumedCapacity[] } & Record<string, unknown>;
        const consumed = units(output.ConsumedCapacity);
        if (measured) {
          meter.units[name] = (meter.units[name] ?? 0) + consumed;
          table.units[name] = (table.units[name] ?? 0) + consumed;
        }
        if (READS.has(name)) {
          meter.readUnits += consumed;
          table.readUnits += consumed;
          table.itemsRead += itemsOf(name, output);
        }
        if (WRITES.has(name)) {
          meter.writeUnits += consumed;
          table.writeUnits += consumed;
        }
        return answer;
      } catch (error) {
        const key = `${name}: ${(error as Error).name}`;
        meter.failures[key] = (meter.failures[key] ?? 0) + 1;
        throw error;
      }
    },
    { step: 'initialize', name: 'benchMeter' },
  );
  return meter;
}

/** A copy of a meter's figures as they stand (plain data, for a result). */
export function meterSnapshot(meter: Meter): Meter {
  return JSON.parse(JSON.stringify(meter)) as Meter;
}

const minus = (after: Record<string, number>, before: Record<string, number>): Record<string, number> =>
  Object.fromEntries(Object.entries(after).map(([key, value]) => [key, value - (before[key] ?? 0)]).filter(([, value]) => value !== 0));

/** What a meter counted between two snapshots of it. */
export function meterDelta(before: Meter, after: Meter): Meter {
  const tables: Record<string, TableMeter> = {};
  for (const [name, table] of Object.entries(after.tables)) {
    const was = before.tables[name] ?? { calls: {}, units: {}, itemsRead: 0, readUnits: 0, writeUnits: 0 };
    const calls = minus(table.calls, was.calls);
    if (Object.keys(calls).length === 0) continue;
    tables[name] = { calls, units: minus(table.units, was.units), itemsRead: table.itemsRead - was.itemsRead, readUnits: table.readUnits - was.readUnits, writeUnits: table.writeUnits - was.writeUnits };
  }
  return {
    calls: minus(after.calls, before.calls),
    failures: minus(after.failures, before.failures),
    units: minus(after.units, before.units),
    tables,
    readUnits: after.readUnits - before.readUnits,
    writeUnits: after.writeUnits - before.writeUnits,
  };
}
