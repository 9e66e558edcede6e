import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

export interface DynaliteServer {
  readonly endpoint: string;
  readonly process: ChildProcess;
  stop(): Promise<void>;
}

/**
 * dynalite in its own process (in memory), so the server's work and the client's do not share
 * one event loop: what a measurement's process does is the client side alone.
 */
export async function startDynaliteProcess(): Promise<DynaliteServer> {
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const cli = join(__dirname, '..', '..', 'node_modules', 'dynalite', 'cli.js');
  const child = spawn(process.execPath, [cli, '--port', String(port), '--host', '127.0.0.1', '--createTableMs', '0', '--deleteTableMs', '0'], { stdio: 'ignore' });
  const endpoint = `http://127.0.0.1:${port}`;
  for (let attempt = 0; ; attempt++) {
    try {
      await fetch(endpoint);
      break;
    } catch (error) {
      if (attempt > 200 || child.exitCode !== null) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return {
    endpoint,
    process: child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill();
      }),
  };
}
