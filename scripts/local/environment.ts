import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, isAbsolute, join, relative, resolve } from 'node:path';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ClassicLevel } from 'classic-level';
import { loadConfig, type SyncConfig } from '../../lambdas/core/config';
import { createSyncDeps } from '../../lambdas/core/deps';
import { EnvironmentError } from '../../lambdas/core/errors';
import { RunRecords } from '../../lambdas/core/runs/run-records';
import { createStreamHandler } from '../../lambdas/stream/stream-batch';
import { createTables, DEFAULT_TABLES, LOCAL_CREDENTIALS, localClient, startDynalite, type EmbeddedDynamo } from './embedded-dynamodb';
import { generateDemoData, loadDemoData } from './demo-data';
import type { FailedStreamRecords } from '../../lambdas/core/stream-failures/failed-users';
import { ChangeLog } from './stream/change-log';
import { LocalStreamFailures } from './stream/local-stream-failures';
import { startLocalStream, type LocalStream } from './stream/local-stream';

export interface LocalEnvironment {
  /** The endpoint clients use. */
  readonly endpoint: string;
  /** The contract's environment variables pointing at this environment. */
  readonly env: Record<string, string>;
  readonly config: SyncConfig;
  readonly client: DynamoDBClient;
  close(): Promise<void>;
}

export interface LocalEnvironmentOptions {
  /** Contract variables to add (attribute mapping, statuses, policy, table names): the tables are created as they say. */
  readonly env?: Record<string, string>;
}

type Env = Readonly<Record<string, string | undefined>>;

/** The contract's variables for a dynalite at `endpoint` with the default tables. */
function embeddedEnv(endpoint: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    DYNAMODB_PAYMENTS_TABLE: DEFAULT_TABLES.paymentsTable,
    DYNAMODB_USERS_TABLE: DEFAULT_TABLES.usersTable,
    PAYMENTS_USER_INDEX: DEFAULT_TABLES.paymentsUserIndex,
    RUNS_TABLE: DEFAULT_TABLES.runsTable,
    DYNAMODB_ENDPOINT: endpoint,
    AWS_REGION: 'ap-southeast-1',
    AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
    ...extra,
  };
}

/**
 * A fresh in-memory dynalite with the tables as the contract describes them, for tests:
 * nothing leaves the machine and nothing is kept.
 */
export async function startLocalEnvironment(options: LocalEnvironmentOptions = {}): Promise<LocalEnvironment> {
  const dynamo = await startDynalite();
  const env = embeddedEnv(dynamo.endpoint, options.env);
  const config = loadConfig(env);
  const client = localClient(dynamo.endpoint);
  await createTables(client, config);
  return {
    endpoint: dynamo.endpoint,
    env,
    config,
    client,
    close: async () => {
      client.destroy();
      await dynamo.close();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The embedded default of the command line and `npm start`: kept on disk between commands.

/** Where the embedded default keeps its data between commands: `.local/` at the project root. */
export const LOCAL_DATA_DIR = resolve(__dirname, '..', '..', '.local');
/** Moves the embedded data elsewhere (tests: a temp dir); the value `memory` keeps it in memory, for one process. */
export const LOCAL_DATA_DIR_VARIABLE = 'PAYMENT_SYNC_LOCAL_DIR';
const IN_MEMORY = 'memory';

/** What the data directory holds; local:reset deletes these and nothing else. */
const DATA_LAYOUT = {
  /** dynalite's LevelDB. */
  dynamodb: 'dynamodb',
  /** A LevelDB of its own that only serves as the lock: the one process using the directory holds it open. */
  lock: 'lock',
  /** Who holds the lock, for the message a second process prints. */
  owner: 'owner.json',
  /** Written when the demo data is fully loaded: its absence means "seed (again)". */
  demo: 'demo.json',
  /** Every write to both tables through the capture: the hourly sync's local change source. */
  changes: 'changes',
  /** When the change log began: an hourly sync can read changes from then on only. */
  changesSince: 'changes-since.json',
  /** The local stream's failure destination (the SQS queue on AWS). */
  streamFailures: 'stream-failures.jsonl',
} as const;

/**
 * The data directory of the embedded default, or undefined for in-memory data: `.local/`,
 * unless PAYMENT_SYNC_LOCAL_DIR says otherwise. Commands that jest spawns (JEST_WORKER_ID is
 * inherited) keep their data in memory unless the test names a directory: tests never touch `.local/`.
 */
export function localDataDir(env: Env = process.env): string | undefined {
  const chosen = env[LOCAL_DATA_DIR_VARIABLE]?.trim();
  if (chosen === IN_MEMORY) return undefined;
  if (chosen) return resolve(chosen);
  return env.JEST_WORKER_ID ? undefined : LOCAL_DATA_DIR;
}

/** `.local/` from the project root, the absolute path from elsewhere. */
export function showDir(dir: string): string {
  const path = relative(process.cwd(), dir);
  return path && !path.startsWith('..') && !isAbsolute(path) ? `${path}/` : dir;
}

interface DataOwner {
  readonly pid: number;
  readonly command: string;
  readonly since: string;
}

function commandLabel(): string {
  const script = process.env.npm_lifecycle_event;
  return script ? `npm run ${script}` : [basename(process.argv[1] ?? 'node'), ...process.argv.slice(2)].join(' ');
}

/**
 * Takes the data directory for this process, or fails with a message that says who has it.
 * dynalite's LevelDB admits one process at a time, and a second one would crash on its first
 * request; this lock, taken before dynalite starts, turns that into a clear error. The operating
 * system releases it when its process ends, however it ends: a killed command leaves no stale lock.
 * Never call this twice in one process for one directory (LevelDB's lock is per process).
 * `alternative` ends the message: what else the caller can do.
 */
export async function lockDataDir(dir: string, alternative = ''): Promise<() => Promise<void>> {
  mkdirSync(dir, { recursive: true });
  const lock = new ClassicLevel(join(dir, DATA_LAYOUT.lock));
  const ownerFile = join(dir, DATA_LAYOUT.owner);
  try {
    await lock.open();
  } catch (error) {
    if ((error as { cause?: { code?: string } }).cause?.code !== 'LEVEL_LOCKED') throw error;
    let owner: DataOwner | undefined;
    try {
      owner = JSON.parse(readFileSync(ownerFile, 'utf8')) as DataOwner;
    } catch {
      owner = undefined;
    }
    const who = owner ? `pid ${owner.pid}, ${owner.command}, since ${owner.since}` : 'another process';
    throw new EnvironmentError(
      `the embedded data in ${showDir(dir)} is in use (${who}): one process at a time can open it (a LevelDB lock). ` +
        `Wait for that command to finish (or stop it) and run this again${alternative}.`,
    );
  }
  const owner: DataOwner = { pid: process.pid, command: commandLabel(), since: new Date().toISOString() };
  writeFileSync(ownerFile, `${JSON.stringify(owner)}\n`);
  return async () => {
    rmSync(ownerFile, { force: true });
    await lock.close();
  };
}

/** The demo data a data directory was seeded with. */
export interface DemoSeed {
  readonly users: number;
  readonly seed: number;
  readonly payments: number;
  /** How many of each drift the generator planted. */
  readonly planted: Record<string, number>;
  readonly seededAt: string;
}

function readDemoSeed(dir: string): DemoSeed | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, DATA_LAYOUT.demo), 'utf8')) as DemoSeed;
  } catch {
    return undefined;
  }
}

function writeDemoSeed(dir: string, seed: DemoSeed): void {
  const file = join(dir, DATA_LAYOUT.demo);
  writeFileSync(`${file}.tmp`, `${JSON.stringify(seed, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
}

export interface EmbeddedDefault extends LocalEnvironment {
  /** Where the data is kept; undefined when it is in memory (gone when the process ends). */
  readonly dataDir: string | undefined;
  /** The demo data the tables were seeded with (now, or by an earlier command). */
  readonly demo: DemoSeed;
  /** This start created and seeded the data; false: an earlier command's data, as it left it. */
  readonly seededNow: boolean;
  /** The stream capture in front of dynalite (`endpoint` is its endpoint) and its delivery to the stream handler. */
  readonly stream: LocalStream;
  /** Every write through `endpoint` to either table since the data was created: what an hourly sync reads. */
  readonly changeLog: ChangeLog;
  /** Epoch ms the change log covers from (older data kept in `.local/` had none). */
  readonly changesSince: number;
  /** The local stream's failure file, read against this process's stream (records of an earlier process's stream are gone). */
  readonly streamFailures: FailedStreamRecords | undefined;
  /** For the operator: which data this is and how to start over. */
  readonly notes: readonly string[];
}

/** The demo data of the embedded default: the command line's --demo-users and --demo-seed defaults. */
export const DEMO_DEFAULTS = { users: 200, seed: 7 } as const;

export interface EmbeddedDefaultOptions {
  /**
   * Size and seed of the demo data when it is created (200 and 7 when unset). Existing data is
   * kept as it is; sizes asked for that differ from its own are said not to apply.
   */
  readonly users?: number;
  readonly seed?: number;
  /** Where PAYMENT_SYNC_LOCAL_DIR is read (the command line's environment); process.env by default. */
  readonly env?: Env;
}

/**
 * The embedded default of the command line and `npm start`: dynalite on disk in `.local/`,
 * created and seeded with the demo data on first use and kept as the commands leave it, with
 * the stream capture in front of it, so that payment writes through `endpoint` reach the stream
 * handler as they would on AWS. One process at a time (lockDataDir); in memory when
 * PAYMENT_SYNC_LOCAL_DIR=memory, or under jest.
 */
export async function startEmbeddedDefault(options: EmbeddedDefaultOptions = {}): Promise<EmbeddedDefault> {
  const users = options.users ?? DEMO_DEFAULTS.users;
  const seed = options.seed ?? DEMO_DEFAULTS.seed;
  const dataDir = localDataDir(options.env ?? process.env);
  const cleanups: Array<() => Promise<void> | void> = [];
  const close = async (): Promise<void> => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  };
  try {
    let demo: DemoSeed | undefined;
    const notes: string[] = [];
    if (dataDir) {
      cleanups.push(await lockDataDir(dataDir, `; ${LOCAL_DATA_DIR_VARIABLE}=${IN_MEMORY} runs on fresh in-memory demo data instead`));
      demo = readDemoSeed(dataDir);
      if (!demo && existsSync(join(dataDir, DATA_LAYOUT.dynamodb))) {
        // Tables without the seed's record: a first start that was stopped while seeding.
        rmSync(join(dataDir, DATA_LAYOUT.dynamodb), { recursive: true, force: true });
        notes.push('the earlier first start stopped before the demo data was loaded: seeding again');
      }
    }
    const dynamo: EmbeddedDynamo = await startDynalite(dataDir ? { path: join(dataDir, DATA_LAYOUT.dynamodb) } : {});
    cleanups.push(() => dynamo.close());
    // Seeding and the stream handler go to dynalite directly: only writes through the capture
    // proxy become stream records (a seeded drift must stay drift, for the commands to find).
    const direct = localClient(dynamo.endpoint);
    cleanups.push(() => direct.destroy());
    const directConfig = loadConfig(embeddedEnv(dynamo.endpoint));
    await createTables(direct, directConfig);
    const seededNow = !demo;
    if (!demo) {
      const dataset = generateDemoData({ users, seed }, directConfig);
      await loadDemoData(direct, directConfig, dataset);
      demo = { users: dataset.users.length, seed, payments: dataset.payments.length, planted: dataset.planted, seededAt: new Date().toISOString() };
      if (dataDir) writeDemoSeed(dataDir, demo);
    } else {
      // One process at a time has the data: a run lock in it is one a stopped command left behind.
      const runs = new RunRecords(direct, directConfig.runsTable);
      const left = await runs.readLock();
      if (left) {
        await runs.releaseLock(left.runId);
        notes.push(`released the run lock of ${left.runId} (${left.mode}), left by a command that was stopped during its run`);
      }
    }
    const changeLog = new ChangeLog(dataDir ? { folder: join(dataDir, DATA_LAYOUT.changes) } : {});
    const changesSince = dataDir ? changeLogStart(join(dataDir, DATA_LAYOUT.changesSince)) : Date.now();
    const stream = await startLocalStream({
      upstreamEndpoint: dynamo.endpoint,
      paymentsTable: directConfig.paymentsTable,
      usersTable: directConfig.usersTable,
      changeLog,
      handler: createStreamHandler(createSyncDeps(directConfig, direct)),
      ...(dataDir && { failureFile: join(dataDir, DATA_LAYOUT.streamFailures) }),
    });
    cleanups.push(() => stream.stop());
    const streamFailures = dataDir ? new LocalStreamFailures(join(dataDir, DATA_LAYOUT.streamFailures), stream.log) : undefined;
    const env = embeddedEnv(stream.endpoint);
    const config = loadConfig(env);
    const client = localClient(stream.endpoint);
    cleanups.push(() => client.destroy());

    const data = `${demo.users} demo users and ${demo.payments} payments, seed ${demo.seed}`;
    if (!dataDir) notes.unshift(`data in memory: ${data}, gone when this process ends`);
    else if (seededNow) notes.unshift(`data in ${showDir(dataDir)} created now with ${data}; it persists between commands (npm run local:reset starts over)`);
    else {
      const seededAt = `${demo.seededAt.slice(0, 16).replace('T', ' ')} UTC`;
      notes.unshift(`using the existing data in ${showDir(dataDir)} as earlier commands left it (seeded ${seededAt} with ${data}); npm run local:reset starts over`);
      const asked = options.users !== undefined || options.seed !== undefined;
      if (asked && (users !== demo.users || seed !== demo.seed)) {
        notes.push(`${users} demo users (seed ${seed}) asked for, not applied: the demo's size and seed take effect only when the data is created (npm run local:reset first)`);
      }
    }
    return { endpoint: stream.endpoint, env, config, client, dataDir, demo, seededNow, stream, changeLog, changesSince, streamFailures, notes, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/** When the change log began, recorded the first time it is opened. */
function changeLogStart(file: string): number {
  if (existsSync(file)) return (JSON.parse(readFileSync(file, 'utf8')) as { since: number }).since;
  const since = Date.now();
  writeFileSync(file, JSON.stringify({ since }));
  return since;
}

/**
 * Deletes the embedded data (what DATA_LAYOUT names, then the directory if nothing else is in
 * it), under its lock: never while a command uses it. Answers whether there was anything to delete.
 */
export async function resetLocalData(dir: string): Promise<boolean> {
  if (!existsSync(dir)) return false;
  const release = await lockDataDir(dir);
  await release();
  for (const entry of Object.values(DATA_LAYOUT)) rmSync(join(dir, entry), { recursive: true, force: true });
  rmSync(join(dir, `${DATA_LAYOUT.demo}.tmp`), { force: true });
  if (readdirSync(dir).length === 0) rmSync(dir, { recursive: true, force: true });
  return true;
}
