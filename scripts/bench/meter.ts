import type { ConsumedCapacity, DynamoDBClient } from '@aws-sdk/client-dynamodb';

const READS = new Set(['ScanCommand', 'QueryCommand', 'GetItemCommand', 'BatchGetItemCommand']);
const WRITES = new Set(['UpdateItemCommand', 'PutItemCommand', 'DeleteItemCommand', 'BatchWriteItemCommand']);

/** What one process's client sent: calls by command, failures by command and error, capacity. */
export interface Meter {
  readonly calls: Record<string, number>;
  readonly failures: Record<string, number>;
  /** Capacity units consumed, by command. */
  readonly units: Record<string, number>;
  readUnits: number;
  writeUnits: number;
}

const units = (consumed: ConsumedCapacity | ConsumedCapacity[] | undefined): number =>
  (Array.isArray(consumed) ? consumed : consumed ? [consumed] : []).reduce((sum, entry) => sum + (entry.CapacityUnits ?? 0), 0);

/**
 * Counts every call the client sends and the capacity each consumed. Reads and writes that do
 * not ask for ConsumedCapacity are made to (`TOTAL`), which changes only the answer's extra
 * field, so the repair's reads and writes are measured as well as the snapshot's scan.
 * Failed calls (a conditional write that lost, say) are counted by error name.
 */
export function instrument(client: DynamoDBClient): Meter {
  const meter: Meter = { calls: {}, failures: {}, units: {}, readUnits: 0, writeUnits: 0 };
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const name = (context as { commandName?: string }).commandName ?? 'unknown';
      meter.calls[name] = (meter.calls[name] ?? 0) + 1;
      const input = args.input as { ReturnConsumedCapacity?: string };
      const measured = READS.has(name) || WRITES.has(name);
      try {
        const answer = await next(measured && input.ReturnConsumedCapacity === undefined ? { ...args, input: { ...input, ReturnConsumedCapacity: 'TOTAL' } } : args);
        const consumed = units((answer.output as { ConsumedCapacity?: ConsumedCapacity | ConsumedCapacity[] }).ConsumedCapacity);
        if (measured) meter.units[name] = (meter.units[name] ?? 0) + consumed;
        if (READS.has(name)) meter.readUnits += consumed;
        if (WRITES.has(name)) meter.writeUnits += consumed;
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
