import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface DynaliteServer {
  readonly endpoint: string;
  readonly process: ChildProcess;
  /** CPU time (user + system) the server process has used so far, in ms; undefined where /proc is not there. */
  cpuMs(): number | undefined;
  stop(): Promise<void>;
}

const ticksPerSecond = ((): number => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** utime + stime of a process from /proc/<pid>/stat (fields 14 and 15, after the command's parentheses). */
function processCpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) / ticksPerSecond) * 1000;
  } catch {
    return undefined;
  }
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
    cpuMs: () => processCpuMs(child.pid),
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill();
      }),
  };
}
