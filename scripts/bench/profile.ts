import { Session } from 'node:inspector/promises';

/** The parts of a V8 CPU profile (`Profiler.stop`'s answer) the summary reads. */
interface CpuProfile {
  readonly nodes: ReadonlyArray<{
    readonly id: number;
    readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
    readonly children?: readonly number[];
  }>;
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface StageWindow {
  readonly stage: string;
  /** `performance.now()` times in this process. */
  readonly from: number;
  readonly to: number;
}

export interface ProfileSummary {
  /** Main-thread milliseconds by stage and category; `idle` is the thread waiting (server, DuckDB's threads, disk). */
  readonly byStage: Record<string, Record<string, number>>;
  /** The functions with the most self time, by stage. */
  readonly topByStage: Record<string, ReadonlyArray<{ readonly name: string; readonly ms: number }>>;
}

/** Samples the main thread's stack from `start()` to `stop()`, in this process. */
export class CpuProfiler {
  private readonly session = new Session();

  async start(): Promise<void> {
    this.session.connect();
    await this.session.post('Profiler.enable');
    await this.session.post('Profiler.setSamplingInterval', { interval: 500 });
    await this.session.post('Profiler.start');
  }

  /** Stops sampling; the profile's clock is aligned with `performance.now()` at its end. */
  async stop(windows: readonly StageWindow[]): Promise<ProfileSummary> {
    const stoppedAt = performance.now();
    const { profile } = await this.session.post('Profiler.stop');
    this.session.disconnect();
    const cpuProfile = profile as unknown as CpuProfile;
    const startedAt = stoppedAt - (cpuProfile.endTime - cpuProfile.startTime) / 1000;
    return summarize(cpuProfile, windows.map((window) => ({ ...window, from: window.from - startedAt, to: window.to - startedAt })));
  }
}

/** Where a frame's code lives, as the benchmark's categories. */
function categoryOf(url: string, functionName: string): string | undefined {
  if (functionName === '(idle)') return 'idle (waiting)';
  if (functionName === '(garbage collector)') return 'garbage collection';
  if (functionName === '(program)') return 'V8/native (program)';
  if (url === '') return undefined;
  if (/@aws-sdk|@smithy|@aws-crypto/.test(url)) return 'AWS SDK (HTTP, signing, (de)serialization)';
  if (/@duckdb/.test(url) || /core\/join\//.test(url)) return 'DuckDB binding (load, join, chunk transfer)';
  if (/core\/snapshot\//.test(url)) return 'snapshot encoding (JSON + gzip) and checkpoints';
  if (/core\/(rules|jobs)\//.test(url)) return 'planning (row JSON.parse, rules, report lines)';
  if (/core\/storage\/|node:fs/.test(url)) return 'storage (file writes)';
  if (/node:zlib|zlib/.test(url)) return 'snapshot encoding (JSON + gzip) and checkpoints';
  if (/^node:/.test(url)) return 'Node internals (http, streams, timers)';
  if (/node_modules\/tsx|esbuild/.test(url)) return 'tsx loader';
  return 'other';
}

function summarize(profile: CpuProfile, windows: readonly StageWindow[]): ProfileSummary {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  // A native frame (JSON.parse, a zlib binding) counts towards the nearest caller with a category.
  const category = new Map<number, string>();
  const categoryOfNode = (id: number): string => {
    const known = category.get(id);
    if (known !== undefined) return known;
    const node = byId.get(id);
    const own = node ? categoryOf(node.callFrame.url, node.callFrame.functionName) : 'other';
    const up = parent.get(id);
    const found = own ?? (up === undefined ? 'other' : categoryOfNode(up));
    category.set(id, found);
    return found;
  };
  const byStage: Record<string, Record<string, number>> = {};
  const selfByStage = new Map<string, Map<number, number>>();
  let at = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = (profile.timeDeltas[i] ?? 0) / 1000;
    at += delta;
    const id = profile.samples[i] as number;
    const stage = windows.find((window) => at >= window.from && at < window.to)?.stage ?? 'outside stages';
    const self = selfByStage.get(stage) ?? new Map<number, number>();
    selfByStage.set(stage, self);
    self.set(id, (self.get(id) ?? 0) + delta);
    const row = (byStage[stage] ??= {});
    const name = categoryOfNode(id);
    row[name] = (row[name] ?? 0) + delta;
  }
  const topByStage: Record<string, Array<{ name: string; ms: number }>> = {};
  for (const [stage, self] of selfByStage) {
    const byName = new Map<string, number>();
    for (const [id, ms] of self) {
      const frame = byId.get(id)?.callFrame;
      if (!frame) continue;
      // tsx's transpiled files carry no line numbers worth printing; the caller's category says where.
      const where = frame.url ? ` (${frame.url.replace(/^.*\/(node_modules\/(@[^/]+\/)?[^/]+|lambdas\/.*|scripts\/.*)$/, '$1').replace(/^node:/, 'node:')})` : ` [in ${categoryOfNode(id)}]`;
      const name = `${frame.functionName || '(anonymous)'}${where}`;
      byName.set(name, (byName.get(name) ?? 0) + ms);
    }
    topByStage[stage] = [...byName].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([name, ms]) => ({ name, ms }));
  }
  return { byStage, topByStage };
}
