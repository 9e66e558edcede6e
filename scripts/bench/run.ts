import '../local/quiet';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../../lambdas/core/config';
import { LOCAL_CREDENTIALS, localClient } from '../local/embedded-dynamodb';
import { startFaultProxy } from '../local/fault-proxy';
import type { ChildResult, ChildTask } from './child';
import { costModel, HOURS_PER_MONTH, hourlyCostModel, PRICES, READ_BUDGET_RCU_PER_SECOND } from './cost';
import type { HourlyFigures, HourlyRunFigures } from './hourly';
import { startDynaliteProcess } from './server';
import { createScenarioTables, deleteScenarioTables, generateWorkload, loadParallel, QUICK, scaled, scenarioConfig, W1, type WorkloadSize } from './workload';

/**
 * `npm run bench`: figures, never assertions. W1 (or the sizes given) is generated once per
 * scenario and loaded into dynalite in its own process; every measurement runs in a child
 * process of its own (child.ts) on the same tables, in an order that lets the read-only ones
 * see the drifted data: bare scan → seed-style baseline → validate → fix → validate again,
 * then the stream's latency and the hourly sync by changes (a full fix, then hourly syncs before
 * and after planted drift, on a clock moved forward); then 4× W1 for the scan, the validate and its memory, and the
 * per-user fix.
 */
const USAGE = `usage: npm run bench -- [--payments N] [--users N] [--quick] [--seed N] [--segments N] [--buckets N]
                       [--repeat N] [--live N] [--per-user N] [--hourly-payments N] [--hourly-lists N]
                       [--skip-4x] [--profile] [--json FILE]
  --payments N, --users N  W1's size (default 100000 / 25000; from 0.5 to 16 payments a user); --quick: 5000 / 1250
  --seed N                 generator seed (default 42)
  --segments N, --buckets N  the full run's scan segments per table (SCAN_SEGMENTS, 4) and join buckets (JOIN_BUCKETS, 1)
  --repeat N               bare scan and validate runs per scale, alternating; medians reported (default 3)
  --live N                 webhook writes timed through the local stream (default 200; 0 skips)
  --per-user N             users fixed one by one on the 4x tables (default 200; 0 skips)
  --hourly-payments N, --hourly-lists N  drift planted before the measured hourly sync: settled payments
                           for courses users lack, lists written back without a paid course (default 100 / 20; both 0 skip it)
  --skip-4x                no 4x scenario (no memory scaling figure)
  --profile                sample the validate's main thread even when its targets are met
  --json FILE              also write every figure as JSON`;

class UsageError extends Error {}

function whole(name: string, text: string | undefined, fallback: number, min: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!/^\s*\d+\s*$/.test(text) || !Number.isSafeInteger(value) || value < min) throw new UsageError(`--${name} must be a whole number of at least ${min} (got "${text}")`);
  return value;
}

interface Options {
  readonly size: WorkloadSize;
  readonly seed: number;
  readonly segments: number;
  readonly buckets: number;
  readonly live: number;
  readonly perUser: number;
  readonly hourlyPayments: number;
  readonly hourlyLists: number;
  readonly repeat: number;
  readonly skip4x: boolean;
  readonly profile: boolean;
  readonly json: string | undefined;
}

function parseOptions(argv: readonly string[]): Options {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      options: {
        payments: { type: 'string' },
        users: { type: 'string' },
        quick: { type: 'boolean', default: false },
        seed: { type: 'string' },
        segments: { type: 'string' },
        buckets: { type: 'string' },
        live: { type: 'string' },
        'per-user': { type: 'string' },
        'hourly-payments': { type: 'string' },
        'hourly-lists': { type: 'string' },
        repeat: { type: 'string' },
        'skip-4x': { type: 'boolean', default: false },
        profile: { type: 'boolean', default: false },
        json: { type: 'string' },
        help: { type: 'boolean', default: false },
      },
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const base = values.quick ? QUICK : W1;
  const size = { payments: whole('payments', values.payments, base.payments, 1), users: whole('users', values.users, base.users, 1) };
  // Besides ordinary orders the generator gives every user about 0.43 payments of other kinds.
  if (size.payments < size.users / 2) throw new UsageError(`--payments must be at least half of --users (got ${size.payments} payments for ${size.users} users)`);
  // Each user's courses are distinct, drawn from the generator's 40.
  if (size.payments > size.users * 16) throw new UsageError(`--payments may be at most 16 times --users (got ${size.payments} payments for ${size.users} users)`);
  const defaults = loadConfig({ DYNAMODB_PAYMENTS_TABLE: 'p', DYNAMODB_USERS_TABLE: 'u' });
  return {
    size,
    seed: whole('seed', values.seed, 42, 0),
    segments: whole('segments', values.segments, defaults.scanSegments, 1),
    buckets: whole('buckets', values.buckets, defaults.joinBuckets, 1),
    live: whole('live', values.live, 200, 0),
    perUser: whole('per-user', values['per-user'], 200, 0),
    hourlyPayments: whole('hourly-payments', values['hourly-payments'], 100, 0),
    hourlyLists: whole('hourly-lists', values['hourly-lists'], 20, 0),
    repeat: whole('repeat', values.repeat, 3, 1),
    skip4x: values['skip-4x'],
    profile: values.profile,
    json: values.json,
  };
}

const ROOT = join(__dirname, '..', '..');
const CHILD = join(__dirname, 'child.ts');
const benchStarted = performance.now();
const elapsed = (): string => `${((performance.now() - benchStarted) / 1000).toFixed(0).padStart(4)}s`;
const log = (message: string): void => void process.stderr.write(`[bench ${elapsed()}] ${message}\n`);

/** Runs one measurement in a fresh `node --import tsx` process and reads its `@@BENCH` line. */
function runChild(task: ChildTask): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(task)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'], env: process.env });
    let output = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (text: string) => (output += text));
    child.on('error', reject);
    child.on('close', (code) => {
      const line = output.split('\n').find((text) => text.startsWith('@@BENCH '));
      if (code !== 0 || !line) return reject(new Error(`bench child (${task.kind}) exited with ${code}${line ? '' : ', no result'}: ${output.slice(-2000)}`));
      resolve(JSON.parse(line.slice('@@BENCH '.length)) as ChildResult);
    });
  });
}

interface Loaded {
  readonly payments: number;
  readonly users: number;
  readonly planted: Record<string, number>;
  readonly generateMs: number;
  readonly loadMs: number;
}

async function loadScenario(endpoint: string, scenario: string, size: WorkloadSize, seed: number): Promise<Loaded> {
  const config = scenarioConfig(endpoint, scenario);
  const client = localClient(endpoint);
  try {
    await createScenarioTables(client, config);
    let started = performance.now();
    const dataset = generateWorkload(size, seed, config);
    const generateMs = performance.now() - started;
    log(`${scenario}: loading ${dataset.payments.length.toLocaleString('en')} payments and ${dataset.users.length.toLocaleString('en')} users (BatchWriteItem, 16 in flight)`);
    started = performance.now();
    await loadParallel(client, config, dataset);
    const loadMs = performance.now() - started;
    log(`${scenario}: loaded in ${(loadMs / 1000).toFixed(1)} s (${Math.round(((dataset.payments.length + dataset.users.length) / loadMs) * 1000)} items/s)`);
    return { payments: dataset.payments.length, users: dataset.users.length, planted: dataset.planted, generateMs, loadMs };
  } finally {
    client.destroy();
  }
}

async function dropScenario(endpoint: string, scenario: string): Promise<void> {
  const client = localClient(endpoint);
  try {
    await deleteScenarioTables(client, scenarioConfig(endpoint, scenario));
  } finally {
    client.destroy();
  }
}

let serverCpuMs: () => number | undefined = () => undefined;

/**
 * One measurement in its own process. The server's CPU time is read around the whole child, so
 * it includes the child's start and end (a few requests at most: the tables are only read or
 * written while the child measures).
 */
async function measure(label: string, task: ChildTask): Promise<ChildResult> {
  log(`${label} …`);
  const before = serverCpuMs();
  const result = await runChild(task);
  const after = serverCpuMs();
  if (before !== undefined && after !== undefined) result.serverCpuMs = after - before;
  log(`${label}: ${(result.ms / 1000).toFixed(2)} s, client CPU ${(result.cpuMs / 1000).toFixed(2)} s, server CPU ${((result.serverCpuMs ?? NaN) / 1000).toFixed(2)} s, peak RSS ${result.maxRssMb.toFixed(0)} MiB`);
  return result;
}

// ---------------------------------------------------------------------------------------------
// Printing

const s = (ms: number): string => (ms / 1000).toFixed(2);
const n = (value: number, digits = 0): string => value.toLocaleString('en', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const ratio = (value: number): string => `${value.toFixed(2)}×`;

function table(head: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = head.map((title, i) => Math.max(title.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]) => `| ${cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join(' | ')} |`;
  return [line(head), `| ${widths.map((width, i) => (i === 0 ? '-'.repeat(width) : `${'-'.repeat(width - 1)}:`)).join(' | ')} |`, ...rows.map(line)].join('\n');
}

/** The run with the median wall time (the lower middle one of an even count). */
function medianRun(runs: readonly ChildResult[]): ChildResult {
  return [...runs].sort((a, b) => a.ms - b.ms)[Math.floor((runs.length - 1) / 2)] as ChildResult;
}

const median = (values: readonly number[]): number => [...values].sort((a, b) => a - b)[Math.floor((values.length - 1) / 2)] ?? NaN;

/** `median (min–max of n)` of some runs' wall times, in seconds. */
const spread = (runs: readonly ChildResult[]): string =>
  runs.length < 2 ? '' : ` (${s(Math.min(...runs.map((run) => run.ms)))}–${s(Math.max(...runs.map((run) => run.ms)))}, ${runs.length} runs)`;

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

/** A full fix fault-free and the same fix with 30% of calls throttled, on equal tables of a tenth of W1. */
interface ThrottledFigures {
  readonly size: WorkloadSize;
  readonly clean: ChildResult;
  readonly throttled: ChildResult;
  readonly calls: number;
  readonly throttledCalls: number;
}

const THROTTLE_RATE = 0.3;

async function measureThrottled(endpoint: string, options: Options): Promise<ThrottledFigures> {
  const size = { payments: Math.max(1, Math.round(options.size.payments / 10)), users: Math.max(1, Math.round(options.size.users / 10)) };
  await loadScenario(endpoint, 'thr-clean', size, options.seed);
  await loadScenario(endpoint, 'thr-faulty', size, options.seed);
  const proxy = await startFaultProxy(endpoint, { throttleRate: THROTTLE_RATE, seed: options.seed });
  try {
    const fix = { kind: 'full-run', mode: 'fix', segments: options.segments, buckets: options.buckets, breakdown: false, profile: false, sampleFixable: 0 } as const;
    const clean = await measure('fix, fault-free (a tenth of W1)', { ...fix, endpoint, scenario: 'thr-clean' });
    const throttled = await measure(`fix, ${THROTTLE_RATE * 100}% of calls throttled (a tenth of W1)`, { ...fix, endpoint: proxy.endpoint, scenario: 'thr-faulty' });
    return { size, clean, throttled, calls: proxy.stats.requests, throttledCalls: proxy.stats.throttled };
  } finally {
    await proxy.close();
    await dropScenario(endpoint, 'thr-clean');
    await dropScenario(endpoint, 'thr-faulty');
  }
}

interface Figures {
  readonly options: Options;
  readonly machine: Record<string, string | number>;
  readonly w1: Loaded;
  /** The run with the median wall time of each repeated measurement, and every run's. */
  readonly scan: ChildResult;
  readonly scans: readonly ChildResult[];
  readonly baseline: ChildResult;
  readonly validate: ChildResult;
  readonly validates: readonly ChildResult[];
  /** The first validate: the one the breakdown was timed after. */
  readonly breakdownRun: ChildResult;
  readonly profiled?: ChildResult;
  readonly fix: ChildResult;
  readonly revalidate: ChildResult;
  readonly live?: ChildResult;
  readonly hourly?: ChildResult;
  readonly throttled: ThrottledFigures;
  readonly x4?: {
    readonly loaded: Loaded;
    readonly scan: ChildResult;
    readonly scans: readonly ChildResult[];
    readonly validate: ChildResult;
    readonly validates: readonly ChildResult[];
    readonly perUser?: ChildResult;
  };
  readonly totalMs: number;
}

function report(f: Figures): string {
  const out: string[] = [];
  const v = f.validate.fullRun!;
  const fx = f.fix.fullRun!;
  const items = f.scan.scan!.items.payments + f.scan.scan!.items.users;
  const rate = (r: ChildResult) => `${n((items / r.ms) * 1000)}`;
  const cpu = (r: ChildResult) => [s(r.cpuMs), r.serverCpuMs === undefined ? 'n/a' : s(r.serverCpuMs)];
  // The data's calls: a run's own records (lock, run record, each repair batch's read and usage update) go through the same client.
  const names = scenarioConfig('http://127.0.0.1:1', 'w1');
  const onData = (r: ChildResult, command: string): number =>
    r.tables ? (r.tables[names.usersTable]?.calls[command] ?? 0) + (r.tables[names.paymentsTable]?.calls[command] ?? 0) : (r.calls[command] ?? 0);
  const runTableCalls = (r: ChildResult): number => Object.values(r.tables?.[names.runsTable]?.calls ?? {}).reduce((sum, count) => sum + count, 0);
  const updates = onData(f.fix, 'UpdateItemCommand');
  out.push(`payment-sync benchmark · W1 ${n(f.w1.payments)} payments, ${n(f.w1.users)} users (seed ${f.options.seed}) · ${f.options.segments} segments/table, ${f.options.buckets} bucket(s)`);
  out.push(`machine: ${f.machine.cpus} CPUs (${f.machine.cpuModel}), ${f.machine.memoryGib} GiB, Node ${f.machine.node}; dynalite (in memory) in its own process; each measurement in its own process`);
  out.push(`W1 planted: ${Object.entries(f.w1.planted).map(([kind, count]) => `${kind} ${n(count)}`).join(', ')}`);
  out.push('');
  out.push(
    table(
      ['1× W1 measurement', 'wall s', 'client CPU s', 'server CPU s', 'items/s', 'read units', 'calls', 'ratio'],
      [
        [`(a) bare parallel scan of both tables (the read limit)${spread(f.scans)}`, s(f.scan.ms), ...cpu(f.scan), rate(f.scan), n(f.scan.readUnits, 1), `${n(f.scan.calls.ScanCommand ?? 0)} Scan`, '1.00× (limit)'],
        [
          '(b) seed-style baseline, read-only: sequential scan + GetItem per paid payment',
          s(f.baseline.ms),
          ...cpu(f.baseline),
          rate(f.baseline),
          n(f.baseline.readUnits, 1),
          `${n(f.baseline.calls.ScanCommand ?? 0)} Scan, ${n(f.baseline.calls.GetItemCommand ?? 0)} GetItem`,
          `${ratio(f.baseline.ms / f.validate.ms)} validate's time`,
        ],
        [`(c) payment-validate (full run, mode validate)${spread(f.validates)}`, s(f.validate.ms), ...cpu(f.validate), rate(f.validate), n(f.validate.readUnits, 1), `${n(f.validate.calls.ScanCommand ?? 0)} Scan`, `${ratio(f.validate.ms / f.scan.ms)} the scan`],
        [
          '(d) payment-fix (full run, mode fix) on the drifted data',
          s(f.fix.ms),
          ...cpu(f.fix),
          rate(f.fix),
          `${n(f.fix.readUnits, 1)} R / ${n(f.fix.writeUnits, 1)} W`,
          `${n(onData(f.fix, 'ScanCommand'))} Scan, ${n(onData(f.fix, 'QueryCommand'))} Query, ${n(onData(f.fix, 'GetItemCommand'))} GetItem, ${n(updates)} UpdateItem${f.fix.tables ? ` (+ ${n(runTableCalls(f.fix))} on the run table)` : ''}`,
          `${ratio(f.fix.ms / f.scan.ms)} the scan`,
        ],
        ['(e) payment-validate again, after the fix', s(f.revalidate.ms), ...cpu(f.revalidate), rate(f.revalidate), n(f.revalidate.readUnits, 1), `${n(f.revalidate.calls.ScanCommand ?? 0)} Scan`, `${ratio(f.revalidate.ms / f.scan.ms)} the scan`],
      ],
    ),
  );
  out.push('');
  out.push(`baseline found ${n(f.baseline.baseline!.missing)} missing courses over ${n(f.baseline.baseline!.paidPayments)} paid payments (${n(f.baseline.baseline!.orphans)} without a user); validate: ${Object.entries(v.issues).filter(([, count]) => count > 0).map(([kind, count]) => `${kind} ${n(count)}`).join(', ')}`);
  out.push(
    `writes: users needing a fix (validate, distinct users with a fixable issue) ${n(v.usersNeedingFix)}; fix: UpdateItem calls ${n(updates)}, failed ${n(Object.entries(f.fix.failures).filter(([key]) => key.startsWith('UpdateItem')).reduce((sum, [, count]) => sum + count, 0))}, users fixed ${n(fx.counts.usersFixed ?? 0)}, changes.jsonl lines ${n(fx.changeLines)}; after the fix, users needing a fix: ${n(f.revalidate.fullRun!.usersNeedingFix)}`,
  );
  out.push('');
  const stageRow = (label: string, r: ChildResult) => {
    const st = r.fullRun!.stages;
    return [label, s(st.snapshot), s(st.plan), s(st.repair), s(st.finalize), s(r.ms)];
  };
  out.push(table(['stages (s)', 'snapshot', 'plan', 'repair', 'finalize', 'total'], [stageRow('validate 1×', f.validate), stageRow('fix 1×', f.fix), stageRow('validate after fix 1×', f.revalidate), ...(f.x4 ? [stageRow('validate 4×', f.x4.validate)] : [])]));
  const b = f.breakdownRun.fullRun?.breakdown;
  if (b) {
    const duck = b.duckdbLoadMs + b.duckdbDrainMs;
    out.push('');
    out.push(`where the validate's time goes (1×; stages of the median validate, the parts re-timed on their own after the first one):`);
    out.push(
      table(
        ['part', 's', 'share of validate'],
        [
          ['scan itself (the bare scan, (a))', s(f.scan.ms), `${((100 * f.scan.ms) / f.validate.ms).toFixed(0)}%`],
          ['snapshot stage beyond the bare scan (encode, files, checkpoints)', s(v.stages.snapshot - f.scan.ms), `${((100 * (v.stages.snapshot - f.scan.ms)) / f.validate.ms).toFixed(0)}%`],
          ['JSON.stringify + gzip of the same data files, timed alone (in the run it partly overlaps the waits for the server)', s(b.encodeMs), `${((100 * b.encodeMs) / f.validate.ms).toFixed(0)}%`],
          ['DuckDB: load both tables from the gzipped files (to first chunk)', s(b.duckdbLoadMs), `${((100 * b.duckdbLoadMs) / f.validate.ms).toFixed(0)}%`],
          ['DuckDB: join and stream the rows to JS', s(b.duckdbDrainMs), `${((100 * b.duckdbDrainMs) / f.validate.ms).toFixed(0)}%`],
          ['planning (plan stage minus DuckDB: row JSON.parse, rules, report lines)', s(v.stages.plan - duck), `${((100 * (v.stages.plan - duck)) / f.validate.ms).toFixed(0)}%`],
          ['finalize (assemble issues.jsonl, summary)', s(v.stages.finalize), `${((100 * v.stages.finalize) / f.validate.ms).toFixed(0)}%`],
        ],
      ),
    );
  }
  const prof = f.profiled?.fullRun?.profile;
  if (prof && f.profiled) {
    out.push('');
    out.push(`main-thread CPU profile of a second validate (1×, ${s(f.profiled.ms)} s with the profiler on), ms by stage and category:`);
    for (const [stage, categories] of Object.entries(prof.byStage)) {
      const total = Object.values(categories).reduce((sum, ms) => sum + ms, 0);
      if (total < 50) continue;
      out.push(`  ${stage} (${n(total)} ms): ${Object.entries(categories).sort((x, y) => y[1] - x[1]).map(([name, ms]) => `${name} ${n(ms)}`).join('; ')}`);
      out.push(`    top self time: ${(prof.topByStage[stage] ?? []).map((entry) => `${entry.name} ${n(entry.ms)}`).join('; ')}`);
    }
  }
  out.push('');
  const rss = (runs: readonly ChildResult[]) => [n(median(runs.map((run) => run.maxRssMb))), runs.map((run) => n(run.maxRssMb)).join(', ')];
  const memoryRows: string[][] = [
    ['bare scan 1×', ...rss(f.scans)],
    ['seed-style baseline 1×', ...rss([f.baseline])],
    ['validate 1×', ...rss(f.validates)],
    ['fix 1×', ...rss([f.fix])],
  ];
  if (f.x4) memoryRows.push(['bare scan 4×', ...rss(f.x4.scans)], ['validate 4×', ...rss(f.x4.validates)]);
  out.push(table(['peak RSS of the measuring process', 'median MiB', 'each run'], memoryRows));
  const stagePeaks = (label: string, runs: readonly ChildResult[]) => {
    const stages = ['snapshot', 'plan', 'finalize'];
    return [label, ...stages.map((stage) => {
      const peaks = runs.map((run) => run.fullRun?.rssByStage[stage]).filter((peak) => peak !== undefined);
      return peaks.length === 0 ? '' : `${n(median(peaks.map((peak) => peak.rssMb)))} (heap ${n(median(peaks.map((peak) => peak.heapMb)))})`;
    })];
  };
  out.push('');
  out.push(table(['validate: highest RSS sampled in each stage, median MiB (JS heap in use then)', 'snapshot', 'plan', 'finalize'], [stagePeaks('1×', f.validates), ...(f.x4 ? [stagePeaks('4×', f.x4.validates)] : [])]));
  const rss1 = median(f.validates.map((run) => run.maxRssMb));
  const rss4 = f.x4 ? median(f.x4.validates.map((run) => run.maxRssMb)) : NaN;
  if (f.x4) {
    out.push('');
    out.push(
      `4× W1 (${n(f.x4.loaded.payments)} payments, ${n(f.x4.loaded.users)} users, ${f.options.buckets * 4} buckets): bare scan ${s(f.x4.scan.ms)} s${spread(f.x4.scans)}, validate ${s(f.x4.validate.ms)} s${spread(f.x4.validates)} (${ratio(f.x4.validate.ms / f.x4.scan.ms)} the scan; ${ratio(f.x4.validate.ms / f.validate.ms)} the 1× validate), read units ${n(f.x4.validate.readUnits, 1)}`,
    );
  }
  const per = f.x4?.perUser;
  if (per?.perUser) {
    out.push(`per-user fix (reconcileUser one after another, on 4× users needing a fix): ${n(per.perUser.users)} users, ${(per.ms / per.perUser.users).toFixed(2)} ms a user (${Object.entries(per.perUser.statuses).map(([status, count]) => `${status} ${count}`).join(', ')}; ${n(per.calls.QueryCommand ?? 0)} Query, ${n(per.calls.GetItemCommand ?? 0)} GetItem, ${n(per.calls.UpdateItemCommand ?? 0)} UpdateItem)`);
  }
  const lat = f.live?.live?.latenciesMs;
  if (lat && lat.length > 0) {
    out.push(`live grant, webhook write → capture proxy → stream handler → user write: p50 ${percentile(lat, 50).toFixed(1)} ms, p95 ${percentile(lat, 95).toFixed(1)} ms, max ${Math.max(...lat).toFixed(1)} ms over ${lat.length} writes`);
  }
  {
    const t = f.throttled;
    out.push(`fix under ${THROTTLE_RATE * 100}% throttling (${n(t.size.payments)} payments, ${n(t.size.users)} users; ${n(t.throttledCalls)} of ${n(t.calls)} calls answered ProvisionedThroughputExceeded/Throttling): ${s(t.throttled.ms)} s against ${s(t.clean.ms)} s fault-free, ${ratio(t.throttled.ms / t.clean.ms)}; users fixed ${n(t.throttled.fullRun?.counts.usersFixed ?? NaN)} / ${n(t.clean.fullRun?.counts.usersFixed ?? NaN)}`);
  }
  const render = [f.validate, f.fix].map((r) => r.fullRun?.renderMs).filter((ms) => ms !== undefined);
  if (render.length > 0) out.push(`state machine definition, first render in a process (CDK synth; done before each run's clock starts, not part of a run on AWS): ${render.map((ms) => s(ms)).join(' / ')} s (validate / fix)`);
  const hourly = f.hourly?.hourly;
  if (hourly) out.push('', ...hourlyReport(hourly));

  out.push('');
  out.push('targets:');
  const target = (label: string, value: string, met: boolean) => out.push(`  ${met ? 'MET   ' : 'MISSED'} ${label}: ${value}`);
  target('full validate ≤ 1.3× the bare scan', ratio(f.validate.ms / f.scan.ms), f.validate.ms / f.scan.ms <= 1.3);
  target('≥ 25× faster than the seed-style baseline', ratio(f.baseline.ms / f.validate.ms), f.baseline.ms / f.validate.ms >= 25);
  const writesPerUser = v.usersNeedingFix === 0 ? NaN : updates / v.usersNeedingFix;
  target('fix writes / users needing a fix = 1.00', `${writesPerUser.toFixed(2)} (UpdateItem ${n(updates)} / ${n(v.usersNeedingFix)}; changes.jsonl ${n(fx.changeLines)})`, Math.abs(writesPerUser - 1) < 0.005);
  if (f.x4) {
    const growth = rss4 / rss1;
    target('peak memory at 4× ≤ 1.25× that at 1× (validate, medians)', `${ratio(growth)} (${n(rss4)} / ${n(rss1)} MiB)`, growth <= 1.25);
  } else out.push('  (not run) peak memory at 4× ≤ 1.25× that at 1×: --skip-4x');
  if (hourly) {
    const h = hourlyFigures(hourly);
    target('hourly sync reads ≤ 2% of the items a full run reads', `${(100 * h.share).toFixed(2)}% (${n(h.hourlyItems)} / ${n(h.fullItems)})`, h.share <= 0.02);
    target('hourly sync repairs exactly the drifted users', `${h.exact ? 'yes' : 'no'} (repaired ${n(hourly.hourly.repairedUsers.length)}, drifted ${n(hourly.drift.driftedUsers.length)}; missed ${hourly.missed.length}, extra ${hourly.extra.length})`, h.exact);
  } else out.push('  (not run) hourly sync figures: --hourly-payments 0 --hourly-lists 0');

  const cost = costModel(f.validate, f.fix, 10_000_000, names.runsTable);
  out.push('');
  out.push(`cost model, 10,000,000 payments and ${n(cost.users)} users (W1's proportion), scaled ${cost.scale.toFixed(0)}× from the measured counts:`);
  out.push(`  average item size as DynamoDB counts it: payments ${cost.averageItemBytes.payments.toFixed(0)} B, users ${cost.averageItemBytes.users.toFixed(0)} B`);
  out.push(
    `  scan mode: ${n(cost.scan.readUnits)} read units (from sizes: ${n(cost.scan.readUnitsFromSizes)}; eventually consistent, half a unit per 4 KB), ${cost.scan.minutesAtBudget.toFixed(1)} min at ${n(READ_BUDGET_RCU_PER_SECOND)} RCU/s, $${cost.scan.onDemandDollars.toFixed(2)} on demand at $${(PRICES.readRequestUnit * 1e6).toFixed(3)}/M read units`,
  );
  out.push(`  export mode: no read capacity; ${cost.export.tableGib.toFixed(2)} GiB of items (${cost.export.tableGibWithOverhead.toFixed(2)} GiB with 100 B/item overhead) at $${PRICES.exportPerGb}/GB = $${cost.export.dollars.toFixed(2)}–$${cost.export.dollarsWithOverhead.toFixed(2)}`);
  out.push(
    `  repair: ${n(cost.repair.usersNeedingFix)} users needing a fix → ${n(cost.repair.updateItems)} conditional UpdateItem (${n(cost.repair.writeUnits)} write units), ${n(cost.repair.getItems)} consistent GetItem + ${n(cost.repair.queries)} index Query (${n(cost.repair.readUnits)} read units): $${cost.repair.dollars.toFixed(2)} on demand at $${(PRICES.writeRequestUnit * 1e6).toFixed(3)}/M write units`,
  );
  if (hourly) {
    const hc = hourlyCostModel(f.validate, hourly, 10_000_000);
    const mb = (gib: number) => `${(gib * 1024).toFixed(2)} MiB`;
    out.push(
      `  hourly sync by changes, ${(hc.changedFraction * 100).toFixed(1)}% of payments changed an hour (the measured sync scaled ${hc.scale.toFixed(0)}×): ${n(hc.changedPayments)} payments and ${n(hc.changedUsers)} user items changed, ${n(hc.candidates)} candidates`,
    );
    out.push(
      `    reads: ${n(hc.getItems)} consistent GetItem + ${n(hc.queries)} index Query = ${n(hc.readUnits)} read units an hour (${(100 * hc.readUnitRatio).toFixed(1)}% of the full scan's ${n(hc.full.scanReadUnits)}); the repairs' writes ${n(hc.writeUnits)} write units`,
    );
    out.push(
      `    incremental exports (no read capacity): payments ${mb(hc.exportGib.payments)} + users ${mb(hc.exportGib.users)} = ${mb(hc.exportGib.total)} of changed items an hour (${mb(hc.exportGibWithGrants)} if each payment's grant also rewrote its user); billed at least ${PRICES.incrementalExportMinimumMb} MiB per export (assumed): ${mb(hc.billedExportGib)} = $${hc.dollars.export.toFixed(4)} at $${PRICES.incrementalExportPerGb}/GB`,
    );
    const finding = hc.dollars.reads + hc.dollars.export;
    out.push(
      `    finding the drift, per hour: $${finding.toFixed(4)} (reads $${hc.dollars.reads.toFixed(4)} + exports $${hc.dollars.export.toFixed(4)}) against a full pass every hour: scan $${hc.full.scanDollars.toFixed(3)} (${n(hc.full.scanReadUnits)} read units) or export $${hc.full.exportDollars.toFixed(2)}–$${hc.full.exportDollarsWithOverhead.toFixed(2)}; a month (${HOURS_PER_MONTH} h): $${(finding * HOURS_PER_MONTH).toFixed(2)} against $${(hc.full.scanDollars * HOURS_PER_MONTH).toFixed(2)} (scan) or $${(hc.full.exportDollars * HOURS_PER_MONTH).toFixed(0)}–$${(hc.full.exportDollarsWithOverhead * HOURS_PER_MONTH).toFixed(0)} (export); the repairs' writes ($${hc.dollars.writes.toFixed(4)} an hour) are the same either way`,
    );
  }
  out.push('');
  out.push(`loading: 1× ${s(f.w1.loadMs)} s${f.x4 ? `, 4× ${s(f.x4.loaded.loadMs)} s` : ''}; whole bench ${(f.totalMs / 60_000).toFixed(1)} min`);
  return out.join('\n');
}

/** Items a run read from the two tables, as its summary counts them (an hourly sync: its export's lines, then its candidates' users and payments). */
const summaryItems = (r: HourlyRunFigures): number => (r.changes?.changeLines ?? 0) + (r.counts.usersScanned ?? 0) + (r.counts.paymentsScanned ?? 0);
/** The same from the meter: items the two tables' reads returned, plus an hourly sync's export lines. */
const meterItems = (h: HourlyFigures, r: HourlyRunFigures): number =>
  (r.changes?.changeLines ?? 0) + (r.meter.tables[h.tables.payments]?.itemsRead ?? 0) + (r.meter.tables[h.tables.users]?.itemsRead ?? 0);

function hourlyFigures(h: HourlyFigures) {
  const fullItems = summaryItems(h.full);
  const hourlyItems = summaryItems(h.hourly);
  const exact = h.missed.length === 0 && h.extra.length === 0 && h.hourly.repairedUsers.length === h.drift.driftedUsers.length && h.drift.notDrifted.length === 0;
  return { fullItems, hourlyItems, share: hourlyItems / fullItems, exact };
}

function hourlyReport(h: HourlyFigures): string[] {
  const out: string[] = [];
  const { share, exact, fullItems, hourlyItems } = hourlyFigures(h);
  const units = (r: HourlyRunFigures) => {
    const p = r.meter.tables[h.tables.payments];
    const u = r.meter.tables[h.tables.users];
    return `${n((p?.readUnits ?? 0) + (u?.readUnits ?? 0), 1)} R / ${n((p?.writeUnits ?? 0) + (u?.writeUnits ?? 0), 1)} W`;
  };
  const read = (r: HourlyRunFigures) => {
    const p = r.meter.tables[h.tables.payments]?.calls ?? {};
    const u = r.meter.tables[h.tables.users]?.calls ?? {};
    const parts = [
      r.changes ? `${n(r.changes.changeLines)} export lines` : '',
      p.ScanCommand || u.ScanCommand ? `${n((p.ScanCommand ?? 0) + (u.ScanCommand ?? 0))} Scan` : '',
      u.GetItemCommand ? `${n(u.GetItemCommand)} GetItem` : '',
      p.QueryCommand ? `${n(p.QueryCommand)} Query` : '',
      u.UpdateItemCommand ? `${n(u.UpdateItemCommand)} UpdateItem` : '',
    ];
    return parts.filter((part) => part !== '').join(', ');
  };
  const row = (label: string, r: HourlyRunFigures) => [
    label,
    s(r.ms),
    s(r.beforeRepairMs),
    n(summaryItems(r)),
    n(meterItems(h, r)),
    units(r),
    read(r),
    r.changes ? n(r.changes.candidates) : '—',
    n(r.counts.usersFixed ?? 0),
  ];
  out.push(`hourly sync by changes on W1 after the fix (one process: capture proxy with a change log in front of dynalite, one clock moved forward; the first render of the definition, ${s(h.renderMs)} s, before any run):`);
  out.push(
    table(
      ['run (bench clock)', 'wall s', 'until repair s', 'items read', 'items (meter)', 'units', 'calls on the two tables', 'candidates', 'users fixed'],
      [
        row(`(a) full fix, manual (+${h.full.atMinutes} min)`, h.full),
        row(`(b) hourly sync (+${h.absorb.atMinutes} min): absorbs (a)'s writes`, h.absorb),
        row(`(d) hourly sync (+${h.hourly.atMinutes} min) after the drift`, h.hourly),
      ],
    ),
  );
  const d = h.drift;
  out.push(
    `(c) drift at +${h.hourly.atMinutes} min, through the capture with the stream stopped: ${n(d.payments)} settled payments for ${n(d.paymentUsers)} users (courses they neither list nor paid for, dated before the grace window), ${n(d.lists)} lists written back without a paid course; ${n(d.driftedUsers.length)} distinct users, each confirmed drifted by a dry-run reconcile${d.notDrifted.length > 0 ? ` (${d.notDrifted.length} planted users NOT drifted: ${d.notDrifted.slice(0, 5).join(', ')})` : ''}; ${n(d.passedOver)} random picks passed over (not in sync before, or nothing to plant)`,
  );
  const c = h.hourly.changes;
  if (c) {
    out.push(
      `(d)'s window ${c.from} – ${c.to} (since ${c.sinceRunId}, less the overlap): ${n(c.changeLines)} export lines (payments ${n(h.exported.payments.lines)}, users ${n(h.exported.users.lines)}) → ${n(c.candidates)} candidates (${n(c.fromPayments)} from payments, ${n(c.fromUsers)} from users, ${n(c.fromValidation)} from a validation)`,
    );
  } else out.push(`(d) did not read by changes: ${h.hourly.fullBecause ?? 'no window'}`);
  if (h.absorb.changes) out.push(`(b)'s window: ${n(h.absorb.changes.changeLines)} export lines → ${n(h.absorb.changes.candidates)} candidates; users fixed ${n(h.absorb.counts.usersFixed ?? 0)}`);
  else out.push(`(b) did not read by changes: ${h.absorb.fullBecause ?? 'no window'}`);
  out.push(`hourly items read / full run items read: ${(100 * share).toFixed(2)}% (${n(hourlyItems)} / ${n(fullItems)}; target ≤ 2%)`);
  out.push(
    `repaired users == drifted users: ${exact ? 'yes' : 'no'} (${n(h.hourly.repairedUsers.length)} / ${n(d.driftedUsers.length)}; missed ${h.missed.length}${h.missed.length ? ` ${h.missed.slice(0, 5).join(', ')}` : ''}, extra ${h.extra.length}${h.extra.length ? ` ${h.extra.slice(0, 5).join(', ')}` : ''}; still drifted after it: ${h.stillDrifted})`,
  );
  out.push(`times: hourly sync ${s(h.hourly.ms)} s, full fix ${s(h.full.ms)} s (${ratio(h.hourly.ms / h.full.ms)}); client CPU ${s(h.hourly.cpuMs)} / ${s(h.full.cpuMs)} s`);
  return out;
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  let options: Options;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`bench: ${error.message}\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  process.env.AWS_ACCESS_KEY_ID ??= LOCAL_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY ??= LOCAL_CREDENTIALS.secretAccessKey;
  const machine = { cpus: cpus().length, cpuModel: cpus()[0]?.model.trim() ?? 'unknown', memoryGib: Math.round(totalmem() / 1024 ** 3), node: process.version };
  const server = await startDynaliteProcess();
  serverCpuMs = () => server.cpuMs();
  const { endpoint } = server;
  const { segments, buckets } = options;
  try {
    const w1 = await loadScenario(endpoint, 'w1', options.size, options.seed);
    const base = { endpoint, scenario: 'w1' };
    const fullRun = { ...base, kind: 'full-run', segments, buckets, breakdown: false, profile: false, sampleFixable: 0 } as const;
    const scans: ChildResult[] = [];
    const validates: ChildResult[] = [];
    for (let round = 1; round <= options.repeat; round++) {
      scans.push(await measure(`(a) bare parallel scan ${round}/${options.repeat}`, { ...base, kind: 'scan', segments }));
      validates.push(await measure(`(c) validate ${round}/${options.repeat}`, { ...fullRun, mode: 'validate', breakdown: round === 1 }));
    }
    const [scan, validate] = [medianRun(scans), medianRun(validates)];
    const baseline = await measure('(b) seed-style baseline (read-only)', { ...base, kind: 'baseline' });
    const missed = validate.ms / scan.ms > 1.3 || baseline.ms / validate.ms < 25;
    const profiled = options.profile || missed ? await measure('validate again with the CPU profiler (a target was missed or --profile)', { ...fullRun, mode: 'validate', profile: true }) : undefined;
    const fix = await measure('(d) fix', { ...fullRun, mode: 'fix' });
    const revalidate = await measure('(e) validate after the fix', { ...fullRun, mode: 'validate' });
    const live = options.live > 0 ? await measure(`live stream latency, ${options.live} writes`, { ...base, kind: 'live', writes: options.live, users: w1.users }) : undefined;
    const hourly =
      options.hourlyPayments + options.hourlyLists > 0
        ? await measure(`hourly sync by changes: full fix, hourly sync, ${options.hourlyPayments} payments + ${options.hourlyLists} lists of drift, hourly sync`, {
            ...base,
            kind: 'hourly',
            segments,
            buckets,
            users: w1.users,
            seed: options.seed,
            driftPayments: options.hourlyPayments,
            driftLists: options.hourlyLists,
          })
        : undefined;
    await dropScenario(endpoint, 'w1');
    const throttled = await measureThrottled(endpoint, options);

    let x4: Figures['x4'];
    if (!options.skip4x) {
      const loaded = await loadScenario(endpoint, 'w4', scaled(options.size, 4), options.seed);
      const base4 = { endpoint, scenario: 'w4' };
      const scans4: ChildResult[] = [];
      const validates4: ChildResult[] = [];
      for (let round = 1; round <= options.repeat; round++) {
        scans4.push(await measure(`4×: bare parallel scan ${round}/${options.repeat}`, { ...base4, kind: 'scan', segments }));
        // Buckets scale with the tables (the same items per bucket as at 1×): that is how a deployment bounds a join's memory.
        validates4.push(await measure(`4×: validate ${round}/${options.repeat}`, { ...fullRun, ...base4, buckets: buckets * 4, mode: 'validate', sampleFixable: round === 1 ? options.perUser : 0 }));
      }
      const sample = validates4[0]?.fullRun?.sampleFixable ?? [];
      const perUser = sample.length > 0 ? await measure(`4×: per-user fix of ${sample.length} users`, { ...base4, kind: 'per-user', userIds: sample }) : undefined;
      await dropScenario(endpoint, 'w4');
      x4 = { loaded, scan: medianRun(scans4), scans: scans4, validate: medianRun(validates4), validates: validates4, ...(perUser && { perUser }) };
    }
    const figures: Figures = { options, machine, w1, scan, scans, baseline, validate, validates, breakdownRun: validates[0] as ChildResult, ...(profiled && { profiled }), fix, revalidate, ...(live && { live }), ...(hourly && { hourly }), throttled, ...(x4 && { x4 }), totalMs: performance.now() - benchStarted };
    console.log(report(figures));
    if (options.json) writeFileSync(options.json, `${JSON.stringify(figures, null, 2)}\n`);
  } finally {
    await server.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
