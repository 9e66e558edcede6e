import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BatchWriteItemCommand, PutItemCommand, ScanCommand, UpdateItemCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { DynamoDBBatchResponse, DynamoDBStreamEvent } from 'aws-lambda';
import { loadConfig, type SyncConfig } from '../../lambdas/core/config';
import { createSyncDeps, type SyncDeps } from '../../lambdas/core/deps';
import type { WireItem, WireValue } from '../../lambdas/core/rules/attribute-values';
import { decodeCourses, entryFormat, listedCourseIds, newEntry } from '../../lambdas/core/rules/courses-list';
import { readPayment } from '../../lambdas/core/rules/payment';
import { createDynamoClient } from '../../lambdas/core/store/dynamo-client';
import { createStreamHandler, type StreamTelemetry } from '../../lambdas/stream/stream-batch';
import { generateDemoData, putItems } from '../../scripts/local/demo-data';
import { createTables, DEFAULT_TABLES, localClient, startDynalite } from '../../scripts/local/embedded-dynamodb';
import type { EmbeddedDynamo } from '../../scripts/local/embedded-dynamodb';
import { startFaultProxy } from '../../scripts/local/fault-proxy';
import { readFailureMessages } from '../../scripts/local/stream/failure-destination';
import { startLocalStream } from '../../scripts/local/stream/local-stream';
import type { LocalStream } from '../../scripts/local/stream/local-stream';
import { fullRun, removeRunFolders } from '../support/full-run';

const PAYMENTS = DEFAULT_TABLES.paymentsTable;
const USERS = DEFAULT_TABLES.usersTable;
const GRACE_MS = 5 * 60_000;

/** Counts what the stream handler publishes, instead of printing EMF and logs. */
class CountingTelemetry implements StreamTelemetry {
  private readonly totals: Record<string, number> = {};
  readonly errors: Array<{ message: string; extra: Record<string, unknown> }> = [];
  readonly logger = {
    info: () => undefined,
    warn: () => undefined,
    error: (message: string, extra: Record<string, unknown>) => this.errors.push({ message, extra }),
    addContext: () => undefined,
  };
  readonly metrics = {
    addMetric: (name: string, _unit: unknown, value: number) => {
      this.totals[name] = (this.totals[name] ?? 0) + value;
    },
    publishStoredMetrics: () => undefined,
  };
  total(name: string): number {
    return this.totals[name] ?? 0;
  }
}

// Every server, client and folder a test opens is closed after it, last opened first.
const closers: Array<() => Promise<unknown> | unknown> = [];
const onCleanup = (close: () => Promise<unknown> | unknown) => closers.push(close);
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});
afterAll(removeRunFolders);

interface World {
  readonly dynamo: EmbeddedDynamo;
  readonly stream: LocalStream;
  readonly failureFile: string;
  /** The webhook's client: through the stream endpoint, so its payments writes become stream records. */
  readonly webhook: DynamoDBClient;
  /** Straight to dynalite: seeding history the stream never saw, and reading the final state. */
  readonly direct: DynamoDBClient;
  readonly env: Record<string, string>;
  readonly telemetry: CountingTelemetry;
}

/** dynalite + both tables + the local stream delivering to the real stream handler built by `handlerDeps`. */
async function startWorld(handlerDeps: (world: { streamEndpoint: string; dynamoEndpoint: string; env: Record<string, string> }) => Promise<SyncDeps> | SyncDeps): Promise<World> {
  const dynamo = await startDynalite();
  onCleanup(() => dynamo.close());
  const direct = localClient(dynamo.endpoint);
  onCleanup(() => direct.destroy());
  await createTables(direct);
  const folder = await mkdtemp(join(tmpdir(), 'faults-concurrency-'));
  onCleanup(() => rm(folder, { recursive: true, force: true }));
  const failureFile = join(folder, 'stream-failures.jsonl');
  const telemetry = new CountingTelemetry();
  // The handler's deps need the stream's endpoint, so the stream starts first and the handler is set once built.
  const wiring: { handler?: (event: DynamoDBStreamEvent) => Promise<DynamoDBBatchResponse> } = {};
  const stream = await startLocalStream({
    upstreamEndpoint: dynamo.endpoint,
    paymentsTable: PAYMENTS,
    handler: (event) => {
      if (!wiring.handler) throw new Error('stream handler not built yet');
      return wiring.handler(event);
    },
    failureFile,
    // The deployed settings (10 retries, bisect, partial batch response); only the pause between retries is shorter.
    retryDelayMs: 20,
  });
  onCleanup(() => stream.stop());
  const env = {
    DYNAMODB_PAYMENTS_TABLE: PAYMENTS,
    DYNAMODB_USERS_TABLE: USERS,
    DYNAMODB_ENDPOINT: stream.endpoint,
    AWS_REGION: 'ap-southeast-1',
    REVOKE_ON_REFUND: 'false',
    GRACE_MINUTES: '5',
  };
  const deps = await handlerDeps({ streamEndpoint: stream.endpoint, dynamoEndpoint: dynamo.endpoint, env });
  onCleanup(() => deps.client.destroy());
  wiring.handler = createStreamHandler(deps, telemetry);
  const webhook = localClient(stream.endpoint);
  onCleanup(() => webhook.destroy());
  return { dynamo, stream, failureFile, webhook, direct, env, telemetry };
}

/** Deps as a Lambda or the command line builds them, each actor with a client of its own. */
const productDeps = (env: Record<string, string>): SyncDeps => {
  const deps = createSyncDeps(loadConfig(env));
  onCleanup(() => deps.client.destroy());
  return deps;
};

async function scanAll(client: DynamoDBClient, table: string): Promise<WireItem[]> {
  const items: WireItem[] = [];
  let cursor: Record<string, AttributeValue> | undefined;
  do {
    const page = await client.send(new ScanCommand({ TableName: table, ExclusiveStartKey: cursor, ConsistentRead: true }));
    items.push(...((page.Items ?? []) as WireItem[]));
    cursor = page.LastEvaluatedKey;
  } while (cursor);
  return items;
}

/** Each user's list as course ids in order (malformed entries left out) and its malformed entries as JSON. */
async function readLists(client: DynamoDBClient, config: SyncConfig): Promise<Map<string, { ids: string[]; malformed: string[] }>> {
  const lists = new Map<string, { ids: string[]; malformed: string[] }>();
  for (const item of await scanAll(client, config.usersTable)) {
    const courses = decodeCourses(item[config.user.courses]);
    const malformed = courses.state === 'list' ? courses.entries.filter((entry) => entry.kind === 'malformed').map((entry) => JSON.stringify(entry.raw)) : [];
    lists.set(item[config.user.key]?.S as string, { ids: listedCourseIds(courses), malformed });
  }
  return lists;
}

/** Every course of every paid payment, by user (payments of users that do not exist are left out: no user is created). */
async function paidCourses(client: DynamoDBClient, config: SyncConfig, users: ReadonlySet<string>): Promise<Map<string, Set<string>>> {
  const paid = new Map<string, Set<string>>();
  for (const item of await scanAll(client, config.paymentsTable)) {
    const reading = readPayment(item, config.payment, config);
    if (!reading.ok || reading.payment.classification !== 'paid' || !users.has(reading.payment.userId)) continue;
    const courses = paid.get(reading.payment.userId) ?? new Set<string>();
    reading.payment.courseIds.forEach((courseId) => courses.add(courseId));
    paid.set(reading.payment.userId, courses);
  }
  return paid;
}

/** Course ids listed more than once. */
const repeated = (ids: readonly string[]) => [...new Set(ids.filter((id, i) => ids.indexOf(id) !== i))];

const paymentItem = (orderId: string, userId: string, courseId: string | string[], status: string): Record<string, AttributeValue> => ({
  orderId: { S: orderId },
  userId: { S: userId },
  courseId: Array.isArray(courseId) ? { L: courseId.map((c) => ({ S: c })) } : { S: courseId },
  status: { S: status },
  grossAmount: { N: '150000' },
  updatedAt: { S: new Date().toISOString() },
});

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A guaranteed lost race on the write path: the first `times` conditional writes of users this
 * client sends are held until `interleave(userId)` (another writer's write of the same user) has
 * landed, so their condition fails and the product must re-read and re-plan. Counts the
 * conditional failures it sees.
 */
function raceWrites(client: DynamoDBClient, times: number, interleave: (userId: string) => Promise<void>): { raced: string[]; conflicts: number } {
  const race = { raced: [] as string[], conflicts: 0 };
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as { TableName?: string; Key?: Record<string, AttributeValue> };
      const userId = input.Key?.userId?.S;
      if (context.commandName === 'UpdateItemCommand' && input.TableName === USERS && userId && race.raced.length < times && !race.raced.includes(userId)) {
        race.raced.push(userId);
        await interleave(userId);
      }
      try {
        return await next(args);
      } catch (error) {
        if ((error as Error).name === 'ConditionalCheckFailedException') race.conflicts++;
        throw error;
      }
    },
    { step: 'initialize', name: 'raceWrites' },
  );
  return race;
}

describe('concurrent writers, stream deliveries and a full fix on the same users', () => {
  test('every paid course ends listed exactly once, and nothing listed is lost', async () => {
    // Courses the app appended, by user: they must all survive.
    const appended = new Map<string, string[]>();
    const app: { append?: (userId: string, courseId: string) => Promise<void> } = {};
    const appRace = (label: string) => async (userId: string) => {
      appended.set(userId, [...(appended.get(userId) ?? []), `race-${label}`]);
      await app.append?.(userId, `race-${label}`);
    };
    let streamRace: ReturnType<typeof raceWrites> | undefined;
    const world = await startWorld(({ env }) => {
      const deps = createSyncDeps(loadConfig(env));
      streamRace = raceWrites(deps.client, 5, appRace('stream'));
      return deps;
    });
    const { stream, webhook, direct, env } = world;
    const config = loadConfig(env);

    // The app's own write: read → plan → conditional write, a course appended in the list's own format.
    const appDeps = productDeps(env);
    const appAppend = async (userId: string, courseId: string): Promise<void> => {
      await appDeps.users.update(userId, (snapshot) => {
        if (snapshot.courses.state === 'unsupported' || listedCourseIds(snapshot.courses).includes(courseId)) return { next: undefined };
        const entries = snapshot.courses.state === 'list' ? snapshot.courses.entries : [];
        return { next: [...entries, newEntry(courseId, entryFormat(snapshot.courses, config.coursesFormat), undefined, new Date().toISOString())] };
      });
    };
    app.append = appAppend;

    // 40 users with the demo's drift. Payments older than the grace window are history the stream
    // never saw (written straight to dynalite); the few inside it go through the webhook's path,
    // so the stream delivers them, as it would have.
    const now = Date.now();
    const demo = generateDemoData({ users: 40, seed: 23, mix: { paidPerUser: 2.5, missing: 0.3, duplicate: 0.3 } }, config);
    const recent = (item: WireItem) => Math.abs(now - Date.parse(item[config.payment.updated]?.S ?? '')) < GRACE_MS;
    await putItems(direct, USERS, demo.users);
    await putItems(direct, PAYMENTS, demo.payments.filter((item) => !recent(item)));
    await putItems(webhook, PAYMENTS, demo.payments.filter(recent));
    const userIds = demo.users.map((user) => user[config.user.key]?.S as string);
    const before = await readLists(direct, config);
    expect(demo.planted.missing).toBeGreaterThan(5);
    expect(demo.planted.duplicate).toBeGreaterThan(3);

    // The writers are started by the fix's own progress, so that they land during each of its
    // stages whatever the machine's speed: the snapshot's scan, the join and plan, the repair.
    const stages = new Map<string, () => void>();
    const stageStarted = Object.fromEntries(
      (['snapshot', 'plan', 'repair'] as const).map((stage) => [stage, new Promise<void>((resolve) => stages.set(stage, resolve))]),
    ) as Record<'snapshot' | 'plan' | 'repair', Promise<void>>;
    const seen = new Set<string>();
    const onProgress = ({ stage }: { stage: string }) => {
      seen.add(stage);
      stages.get(stage)?.();
    };

    // (a) The webhook: a new settlement for every user in each of two waves (at the snapshot's
    // start and at the repair's), some as pending → settlement, some multi-course in a BatchWriteItem.
    const webhookWrites = async (wave: number, start: Promise<void>): Promise<void> => {
      await start;
      const batch: Record<string, AttributeValue>[] = [];
      await Promise.all(
        userIds.map(async (userId, i) => {
          const orderId = `LIVE-${wave}-${i}`;
          const course = `live-${wave}-${i}`;
          await pause((i % 8) * 10);
          if (i % 5 === 0) {
            batch.push(paymentItem(orderId, userId, [course, `live-${wave}-${i}-bonus`], 'settlement'));
          } else if (i % 3 === 0) {
            await webhook.send(new PutItemCommand({ TableName: PAYMENTS, Item: paymentItem(orderId, userId, course, 'pending') }));
            await webhook.send(
              new UpdateItemCommand({
                TableName: PAYMENTS,
                Key: { orderId: { S: orderId } },
                UpdateExpression: 'SET #status = :paid, updatedAt = :now',
                ExpressionAttributeNames: { '#status': 'status' },
                ExpressionAttributeValues: { ':paid': { S: 'settlement' }, ':now': { S: new Date().toISOString() } },
              }),
            );
          } else {
            await webhook.send(new PutItemCommand({ TableName: PAYMENTS, Item: paymentItem(orderId, userId, course, i % 2 ? 'settlement' : 'capture') }));
          }
        }),
      );
      await putItems(webhook, PAYMENTS, batch);
    };

    // (c) The app's own writes through the one write path, for every even user: a course appended
    // in the list's own format during the plan; for every fourth user also, during the repair, the
    // very course the webhook's second wave is paying for at that moment.
    const appWrites = async (): Promise<void> => {
      await Promise.all(
        userIds.map(async (userId, i) => {
          if (i % 2 === 1) return;
          appended.set(userId, [...(appended.get(userId) ?? []), ...(i % 4 === 0 ? [`app-${i}`, `live-1-${i}`] : [`app-${i}`])]);
          await stageStarted.plan;
          await pause((i % 7) * 10);
          await appAppend(userId, `app-${i}`);
          if (i % 4 !== 0) return;
          await stageStarted.repair;
          await pause((i % 8) * 10);
          await appAppend(userId, `live-1-${i}`);
        }),
      );
    };

    // (b) A full fix at the same time, with a client of its own. Besides the races timing gives,
    // its first five repair writes, and the stream handler's first five grants, each lose one for sure.
    const fixDeps = productDeps(env);
    const fixRace = raceWrites(fixDeps.client, 5, appRace('fix'));
    const fixing = fullRun(fixDeps, 'fix', { onProgress }).finally(() => stages.forEach((release) => release()));
    const [fix] = await Promise.all([fixing, webhookWrites(0, stageStarted.snapshot), webhookWrites(1, stageStarted.repair), appWrites()]);
    expect([...seen].sort()).toEqual(['plan', 'repair', 'snapshot']);
    expect(fix.result.status).toBe('completed');
    await stream.idle();
    const last = await fullRun(fixDeps, 'fix');
    expect(last.result.status).toBe('completed');
    expect(last.result.issues.error).toBe(0);
    await stream.idle();

    const after = await readLists(direct, config);
    const paid = await paidCourses(direct, config, new Set(userIds));
    const problems: string[] = [];
    for (const userId of userIds) {
      const { ids, malformed } = after.get(userId) ?? { ids: [], malformed: [] };
      const count = (courseId: string) => ids.filter((id) => id === courseId).length;
      for (const courseId of paid.get(userId) ?? []) if (count(courseId) !== 1) problems.push(`${userId}: paid ${courseId} listed ${count(courseId)}×`);
      for (const courseId of [...(before.get(userId)?.ids ?? []), ...(appended.get(userId) ?? [])]) {
        if (count(courseId) === 0) problems.push(`${userId}: ${courseId} was listed and is lost`);
      }
      for (const courseId of repeated(ids)) problems.push(`${userId}: ${courseId} listed ${count(courseId)}×`);
      if (JSON.stringify(malformed) !== JSON.stringify(before.get(userId)?.malformed ?? [])) problems.push(`${userId}: malformed entries changed`);
    }
    expect(problems).toEqual([]);
    // Every live settlement was written (80 payments, 16 of them with two courses) and granted by someone.
    expect([...paid.values()].reduce((sum, courses) => sum + [...courses].filter((c) => c.startsWith('live-')).length, 0)).toBe(96);
    expect(world.telemetry.errors.filter((log) => log.message.startsWith('record rejected'))).toEqual([]);
    expect(await readFailureMessages(world.failureFile)).toEqual([]);
    // The forced races happened, and each cost its writer a failed condition and a re-plan.
    for (const race of [fixRace, streamRace]) {
      expect(race?.raced).toHaveLength(5);
      expect(race?.conflicts).toBeGreaterThanOrEqual(5);
    }
  }, 30_000);
});

describe('a stream batch under 30% throttling', () => {
  test('every settlement is granted exactly once through the product’s retry policy', async () => {
    // The handler's client goes through the fault proxy straight to dynalite: its reads and writes
    // of users need no capture. The webhook writes payments through the stream endpoint, unthrottled.
    let proxy: Awaited<ReturnType<typeof startFaultProxy>> | undefined;
    const world = await startWorld(async ({ dynamoEndpoint, env }) => {
      proxy = await startFaultProxy(dynamoEndpoint, { throttleRate: 0.3, seed: 17 });
      const faulty = proxy;
      onCleanup(() => faulty.close());
      const config = loadConfig({ ...env, DYNAMODB_ENDPOINT: faulty.endpoint });
      return createSyncDeps(config, createDynamoClient(config));
    });
    const { stream, webhook, direct, env, telemetry } = world;
    const config = loadConfig(env);

    // 30 users: lists of ids, of objects, empty and absent; each pays for one new course (every
    // fifth for two), in three BatchWriteItems of ten.
    const users: WireItem[] = Array.from({ length: 30 }, (_, i) => {
      const userId = `thr-${String(i).padStart(2, '0')}`;
      const lists: Array<WireValue | undefined> = [
        { L: [{ S: 'old-1' }, { S: 'old-2' }] },
        { L: [{ M: { courseId: { S: 'old-1' }, purchasedAt: { S: '2025-01-01T00:00:00.000Z' }, source: { S: 'webhook' } } }] },
        { L: [] },
        undefined,
      ];
      const list = lists[i % lists.length];
      return { userId: { S: userId }, email: { S: `${userId}@example.com` }, ...(list && { purchasedCourses: list }) };
    });
    await putItems(direct, USERS, users);
    const userIds = users.map((user) => user.userId?.S as string);
    const expected = new Map(userIds.map((userId, i) => [userId, i % 5 === 0 ? [`new-${i}`, `new-${i}-b`] : [`new-${i}`]]));
    const payments = userIds.map((userId, i) => paymentItem(`THR-${i}`, userId, expected.get(userId) as string[], i % 2 ? 'settlement' : 'SETTLEMENT'));
    for (let start = 0; start < payments.length; start += 10) {
      const answer = await webhook.send(new BatchWriteItemCommand({ RequestItems: { [PAYMENTS]: payments.slice(start, start + 10).map((Item) => ({ PutRequest: { Item } })) } }));
      expect(answer.UnprocessedItems?.[PAYMENTS] ?? []).toEqual([]);
    }
    await stream.idle();

    const after = await readLists(direct, config);
    const problems: string[] = [];
    for (const [i, userId] of userIds.entries()) {
      const ids = after.get(userId)?.ids ?? [];
      const old = i % 4 === 0 ? ['old-1', 'old-2'] : i % 4 === 1 ? ['old-1'] : [];
      if (JSON.stringify(ids) !== JSON.stringify([...old, ...(expected.get(userId) ?? [])])) problems.push(`${userId}: ${JSON.stringify(ids)}`);
    }
    expect(problems).toEqual([]);
    expect(proxy?.stats.throttled).toBeGreaterThan(0);
    // A record redelivered after its grant landed finds the course listed: grants still equal payments.
    expect(telemetry.total('GrantsApplied')).toBe(30);
    expect(telemetry.total('RecordsRejected')).toBe(0);
    expect(await readFailureMessages(world.failureFile)).toEqual([]);
  }, 30_000);
});
