import http from 'node:http';
import { listenOnLoopback } from '../../scripts/local/embedded-dynamodb';

export interface StartedExecution {
  readonly stateMachineArn: string;
  readonly name: string;
  readonly input: unknown;
  /** What the execution answered when the fake ran it. */
  readonly result: Promise<unknown>;
}

export interface FakeStepFunctions {
  /** Point the SDK here: `AWS_ENDPOINT_URL_SFN`. */
  readonly endpoint: string;
  readonly started: StartedExecution[];
  close(): Promise<void>;
}

/**
 * Step Functions' StartExecution, the only call the entry points make, answered on loopback
 * (the service cannot run here); each execution is handed to `execute`, which runs it with the
 * local runner, so a test follows a schedule from the entry Lambda to the finished run.
 */
export async function startFakeStepFunctions(execute: (stateMachineArn: string, input: unknown) => Promise<unknown>): Promise<FakeStepFunctions> {
  const started: StartedExecution[] = [];
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const target = String(request.headers['x-amz-target'] ?? '');
      const answer = (status: number, body: unknown) => {
        response.writeHead(status, { 'content-type': 'application/x-amz-json-1.0' });
        response.end(JSON.stringify(body));
      };
      if (target !== 'AWSStepFunctions.StartExecution') return answer(400, { __type: 'UnknownOperationException', message: `not faked: ${target}` });
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { stateMachineArn: string; name: string; input: string };
      const input = JSON.parse(body.input) as unknown;
      const result = execute(body.stateMachineArn, input);
      result.catch(() => undefined);
      started.push({ stateMachineArn: body.stateMachineArn, name: body.name, input, result });
      answer(200, { executionArn: `${body.stateMachineArn.replace(':stateMachine:', ':execution:')}:${body.name}`, startDate: Date.now() / 1000 });
    });
  });
  return {
    endpoint: await listenOnLoopback(server),
    started,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
