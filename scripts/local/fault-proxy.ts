import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { prng } from './prng';

export interface FaultProxy {
  readonly endpoint: string;
  /** Requests answered with a throttling error so far, and all requests seen. */
  readonly stats: { throttled: number; requests: number };
  /** Changes the share of requests answered with a throttling error (0 = none). */
  setThrottleRate(rate: number): void;
  close(): Promise<void>;
}

const THROTTLES = [
  { type: 'com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException', message: 'The level of configured provisioned throughput for the table was exceeded.' },
  { type: 'com.amazon.coral.availability#ThrottlingException', message: 'Rate of requests exceeds the allowed throughput.' },
];

/**
 * An HTTP proxy in front of dynalite that answers a share of DynamoDB requests the way
 * DynamoDB does when it throttles (HTTP 400, `ProvisionedThroughputExceededException` or
 * `ThrottlingException`), before they reach the table, and forwards the rest unchanged.
 */
export async function startFaultProxy(upstream: string, options: { throttleRate: number; seed?: number }): Promise<FaultProxy> {
  let rate = options.throttleRate;
  const next = prng(options.seed ?? 1);
  const stats = { throttled: 0, requests: 0 };
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      stats.requests++;
      if (next() < rate) {
        stats.throttled++;
        const fault = THROTTLES[stats.throttled % THROTTLES.length]!;
        response.writeHead(400, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': `fault-${stats.requests}` });
        response.end(JSON.stringify({ __type: fault.type, message: fault.message }));
        return;
      }
      const headers = Object.fromEntries(Object.entries(request.headers).filter(([name]) => !['host', 'connection', 'content-length'].includes(name)) as Array<[string, string]>);
      fetch(`${upstream}${request.url ?? '/'}`, { method: request.method, headers, body: Buffer.concat(chunks) })
        .then(async (answer) => {
          response.writeHead(answer.status, Object.fromEntries(answer.headers));
          response.end(Buffer.from(await answer.arrayBuffer()));
        })
        .catch((error: Error) => {
          response.writeHead(502);
          response.end(error.message);
        });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    stats,
    setThrottleRate: (value) => {
      rate = value;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
