import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { listenOnLoopback } from '../embedded-dynamodb';
import type { ChangeLog } from './change-log';
import { ShardLog } from './shard-log';
import type { AttributeMap } from './shard-log';

/** Operations that can change an item; only these, aimed at the captured table, produce records. */
const WRITE_OPERATIONS = new Set(['PutItem', 'UpdateItem', 'DeleteItem', 'BatchWriteItem']);
const JSON_CONTENT_TYPE = 'application/x-amz-json-1.0';
/** dynalite checks that a request looks signed, never the signature itself. */
const LOCAL_AUTHORIZATION =
  'AWS4-HMAC-SHA256 Credential=local/20000101/local/dynamodb/aws4_request, SignedHeaders=host;x-amz-date, Signature=0';

export interface CaptureProxyOptions {
  /** The dynalite endpoint the proxy sits in front of. */
  readonly upstreamEndpoint: string;
  /** The table whose writes become stream records (the payments table). */
  readonly tableName: string;
  readonly region: string;
  /** An existing shard log to append to; a new one otherwise. */
  readonly log?: ShardLog;
  /**
   * Where writes to the captured table and to `usersTableName` are also recorded, with their
   * old and new images and write time (the local incremental export reads it). Writes to the
   * users table go to this log only, never to the stream.
   */
  readonly changeLog?: ChangeLog;
  /** The users table, whose writes the change log records as well (only with `changeLog`). */
  readonly usersTableName?: string;
}

/** Answers chosen requests with a DynamoDB error instead of forwarding them (fault injection). */
export interface FaultRule {
  /** Operation names, e.g. `['UpdateItem', 'PutItem']`; any operation when absent. */
  readonly operations?: readonly string[];
  /** Only requests that name this table; any table when absent. */
  readonly table?: string;
  /** Only requests whose JSON body passes this test, e.g. one user's key. */
  readonly when?: (request: Record<string, unknown>) => boolean;
  /** How many matching requests to fail; every one when absent. */
  readonly times?: number;
  /** The DynamoDB error code; `ProvisionedThroughputExceededException` by default. */
  readonly errorCode?: string;
}

export interface InjectedFault {
  /** Matching requests answered with the error so far. */
  readonly hits: number;
  remove(): void;
}

export interface CaptureProxy {
  /** Point every client (webhook, CLI, Lambda handlers) here instead of at dynalite. */
  readonly endpoint: string;
  readonly log: ShardLog;
  injectFault(rule: FaultRule): InjectedFault;
  close(): Promise<void>;
}

/** The upstream answered a read the proxy needs in order to build exact images with an error. */
export class CaptureReadError extends Error {
  override readonly name = 'CaptureReadError';
  constructor(
    readonly operation: string,
    readonly status: number,
    readonly body: string,
  ) {
    super(`${operation} on the upstream failed with HTTP ${status}: ${body}`);
  }
}

interface UpstreamResponse {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

interface ActiveFault {
  readonly rule: FaultRule;
  hits: number;
  removed: boolean;
}

/**
 * A DynamoDB endpoint in front of dynalite that adds what dynalite lacks: a stream. Every
 * request is forwarded unchanged; a write that touches the captured table is, in addition,
 * bracketed by consistent reads of the items it names, and each item that changed becomes a
 * record in the shard log before the client sees the response (so "the write returned" means
 * "the record is in the log"). Writes to the captured table go through one queue: nothing
 * can slip between the before-read, the write and the after-read, so the images are exact.
 * With a change log, writes to the captured table and to the users table are recorded there
 * too, the same way (through the same queue), before the client sees the response.
 * Writes that reach dynalite without passing through the proxy are not captured.
 */
export async function startCaptureProxy(options: CaptureProxyOptions): Promise<CaptureProxy> {
  const upstream = new URL(options.upstreamEndpoint);
  const log = options.log ?? new ShardLog({ tableName: options.tableName, region: options.region });
  const faults: ActiveFault[] = [];
  const changeLog = options.changeLog;
  /** Tables whose writes are captured: the stream's, then the change log's other one. */
  const capturedTables = [options.tableName];
  if (changeLog && options.usersTableName && options.usersTableName !== options.tableName) capturedTables.push(options.usersTableName);
  const keyAttributes = new Map<string, Promise<string[]>>();
  let writeQueue: Promise<unknown> = Promise.resolve();

  const forward = (method: string, path: string, headers: http.OutgoingHttpHeaders, body: Buffer) =>
    new Promise<UpstreamResponse>((resolve, reject) => {
      const request = http.request(
        { hostname: upstream.hostname, port: upstream.port, method, path, headers },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () =>
            resolve({ status: response.statusCode ?? 500, headers: response.headers, body: Buffer.concat(chunks) }),
          );
          response.on('error', reject);
        },
      );
      request.on('error', reject);
      request.end(body);
    });

  const call = async (operation: string, input: unknown): Promise<Record<string, unknown>> => {
    const body = Buffer.from(JSON.stringify(input));
    const response = await forward(
      'POST',
      '/',
      {
        'content-type': JSON_CONTENT_TYPE,
        'x-amz-target': `DynamoDB_20120810.${operation}`,
        'x-amz-date': new Date().toISOString().replace(/[-:]|\.\d{3}/g, ''),
        authorization: LOCAL_AUTHORIZATION,
        'content-length': body.length,
      },
      body,
    );
    if (response.status !== 200) throw new CaptureReadError(operation, response.status, response.body.toString());
    return JSON.parse(response.body.toString()) as Record<string, unknown>;
  };

  const tableKeyAttributes = (tableName: string): Promise<string[]> => {
    let names = keyAttributes.get(tableName);
    if (!names) {
      names = call('DescribeTable', { TableName: tableName }).then((answer) => {
        const table = answer.Table as { KeySchema: Array<{ AttributeName: string }> };
        return table.KeySchema.map((key) => key.AttributeName);
      });
      keyAttributes.set(tableName, names);
      // A failed lookup (table not created yet) is retried by the next write.
      names.catch(() => keyAttributes.delete(tableName));
    }
    return names;
  };

  const readItem = async (tableName: string, key: AttributeMap): Promise<AttributeMap | undefined> => {
    const answer = await call('GetItem', { TableName: tableName, Key: key, ConsistentRead: true });
    return answer.Item as AttributeMap | undefined;
  };

  /** The keys of one captured table's items a write request names. */
  const keysWritten = async (tableName: string, operation: string, input: Record<string, unknown>): Promise<AttributeMap[]> => {
    const keyOf = async (item: AttributeMap): Promise<AttributeMap> => {
      const names = await tableKeyAttributes(tableName);
      return Object.fromEntries(names.filter((name) => item[name]).map((name) => [name, item[name] as AttributeMap[string]]));
    };
    if (operation === 'BatchWriteItem') {
      const requests = (input.RequestItems as Record<string, unknown[]> | undefined)?.[tableName] ?? [];
      const keys = await Promise.all(
        (requests as Array<{ PutRequest?: { Item: AttributeMap }; DeleteRequest?: { Key: AttributeMap } }>).map((request) =>
          request.PutRequest ? keyOf(request.PutRequest.Item) : keyOf(request.DeleteRequest?.Key ?? {}),
        ),
      );
      const unique = new Map(keys.map((key) => [JSON.stringify(key), key]));
      return [...unique.values()];
    }
    if (input.TableName !== tableName) return [];
    return [await keyOf((operation === 'PutItem' ? input.Item : input.Key) as AttributeMap)];
  };

  const captureWrite = async (
    operation: string,
    input: Record<string, unknown>,
    send: () => Promise<UpstreamResponse>,
  ): Promise<UpstreamResponse> => {
    const targets: Array<{ table: string; keys: AttributeMap[]; before: Array<AttributeMap | undefined> }> = [];
    try {
      for (const table of capturedTables) {
        const keys = await keysWritten(table, operation, input);
        if (keys.length === 0) continue;
        targets.push({ table, keys, before: await Promise.all(keys.map((key) => readItem(table, key))) });
      }
    } catch {
      // A write whose keys cannot even be read (no such table, a malformed key) is one dynalite
      // rejects as well: it is answered exactly as dynalite answers it.
      return send();
    }
    const response = await send();
    if (response.status === 200) {
      for (const { table, keys, before } of targets) {
        const after = await Promise.all(keys.map((key) => readItem(table, key)));
        keys.forEach((key, i) => {
          const change = { keys: key, oldImage: before[i], newImage: after[i] };
          if (table === options.tableName) log.append(change);
          changeLog?.append({ table, ...change });
        });
      }
    }
    return response;
  };

  const serialized = <T>(task: () => Promise<T>): Promise<T> => {
    const result = writeQueue.then(task);
    writeQueue = result.catch(() => undefined);
    return result;
  };

  const matchingFault = (operation: string, input: Record<string, unknown> | undefined): ActiveFault | undefined =>
    faults.find(({ rule, hits, removed }) => {
      if (removed || (rule.times !== undefined && hits >= rule.times)) return false;
      if (rule.operations && !rule.operations.includes(operation)) return false;
      if (rule.table !== undefined && !tablesNamed(input).includes(rule.table)) return false;
      return rule.when === undefined || (input !== undefined && rule.when(input));
    });

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const operation = String(req.headers['x-amz-target'] ?? '').split('.')[1] ?? '';
    const input = parseJson(body);

    const fault = matchingFault(operation, input);
    if (fault) {
      fault.hits += 1;
      const code = fault.rule.errorCode ?? 'ProvisionedThroughputExceededException';
      const errorBody = JSON.stringify({
        __type: `com.amazonaws.dynamodb.v20120810#${code}`,
        message: `Injected fault: ${code}`,
      });
      res.writeHead(400, { 'content-type': JSON_CONTENT_TYPE, 'content-length': Buffer.byteLength(errorBody) });
      res.end(errorBody);
      return;
    }

    const send = () => forward(req.method ?? 'POST', req.url ?? '/', req.headers, body);
    let response: UpstreamResponse;
    if (input && WRITE_OPERATIONS.has(operation) && tablesNamed(input).some((table) => capturedTables.includes(table))) {
      response = await serialized(() => captureWrite(operation, input, send));
    } else {
      response = await send();
    }
    res.writeHead(response.status, response.headers);
    res.end(response.body);
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      const message = error instanceof Error ? error.message : String(error);
      const errorBody = JSON.stringify({ __type: 'com.amazon.coral.service#InternalFailure', message });
      if (!res.headersSent) res.writeHead(500, { 'content-type': JSON_CONTENT_TYPE });
      res.end(errorBody);
    });
  });
  const endpoint = await listenOnLoopback(server);

  return {
    endpoint,
    log,
    injectFault(rule) {
      const fault: ActiveFault = { rule, hits: 0, removed: false };
      faults.push(fault);
      return {
        get hits() {
          return fault.hits;
        },
        remove: () => {
          fault.removed = true;
        },
      };
    },
    async close() {
      await writeQueue;
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        // SDK clients keep connections alive; they must not hold the server open.
        server.closeAllConnections();
      });
    },
  };
}

/** The tables a request names: `TableName`, or the keys of a batch's `RequestItems`. */
function tablesNamed(input: Record<string, unknown> | undefined): string[] {
  if (!input) return [];
  if (typeof input.TableName === 'string') return [input.TableName];
  const batch = input.RequestItems;
  return batch && typeof batch === 'object' ? Object.keys(batch) : [];
}

function parseJson(body: Buffer): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(body.toString());
    return value && typeof value === 'object' ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
