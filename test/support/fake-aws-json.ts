import http from 'node:http';
import { listenOnLoopback } from '../../scripts/local/embedded-dynamodb';

/** An error answer in the awsJson protocols: `{ __type, message }` with an HTTP status. */
export class AwsJsonError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

export interface AwsJsonCall {
  /** The X-Amz-Target header, e.g. `AmazonSQS.ReceiveMessage`. */
  readonly target: string;
  readonly contentType: string;
  readonly body: Record<string, unknown>;
}

/** Answers one operation's input; throw an AwsJsonError for an error answer. */
export type AwsJsonOperation = (input: Record<string, unknown>) => unknown;

export interface FakeAwsJson {
  /** Point an SDK client here (`endpoint`). */
  readonly endpoint: string;
  /** Every request, in order, operations not faked included. */
  readonly calls: AwsJsonCall[];
  close(): Promise<void>;
}

/**
 * A service speaking the awsJson1_0/1_1 protocols (POST /, X-Amz-Target `<prefix>.<operation>`,
 * JSON in and out), answered on loopback by the given operations, keyed by their full target
 * (`AmazonSQS.ReceiveMessage`, `DynamoDBStreams_20120810.GetRecords`). For services that cannot
 * run here; an operation not given answers UnknownOperationException.
 */
export async function startFakeAwsJson(operations: Record<string, AwsJsonOperation>): Promise<FakeAwsJson> {
  const calls: AwsJsonCall[] = [];
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const target = String(request.headers['x-amz-target'] ?? '');
      const contentType = String(request.headers['content-type'] ?? '');
      const answer = (status: number, body: unknown) => {
        response.writeHead(status, { 'content-type': contentType || 'application/x-amz-json-1.0' });
        response.end(JSON.stringify(body));
      };
      const text = Buffer.concat(chunks).toString('utf8');
      let body: Record<string, unknown>;
      try {
        body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
      } catch {
        return answer(400, { __type: 'SerializationException', message: 'body is not JSON' });
      }
      calls.push({ target, contentType, body });
      const operation = operations[target];
      if (!operation) return answer(400, { __type: 'UnknownOperationException', message: `not faked: ${target}` });
      Promise.resolve()
        .then(() => operation(body))
        .then(
          (output) => answer(200, output ?? {}),
          (error: unknown) =>
            error instanceof AwsJsonError
              ? answer(error.status, { __type: error.type, message: error.message })
              : answer(500, { __type: 'InternalFailure', message: String(error) }),
        );
    });
  });
  return {
    endpoint: await listenOnLoopback(server),
    calls,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
