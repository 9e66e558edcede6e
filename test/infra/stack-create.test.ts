import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Capture, Match } from 'aws-cdk-lib/assertions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { App } from 'aws-cdk-lib';
import { BUNDLING_STACKS } from 'aws-cdk-lib/cx-api';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { ScheduleInputSchema } from '../../lambdas/commons/events';
import type { S3Client } from '@aws-sdk/client-s3';
import { loadConfig } from '../../lambdas/core/config';
import { INCREMENTAL_FOLDER, runFolderKey } from '../../lambdas/core/jobs/full-run/layout';
import { S3Storage } from '../../lambdas/core/storage/s3-storage';
import { ISSUE_KINDS } from '../../lambdas/core/rules/plan';
import { STREAM_EVENT_SOURCE_SETTINGS } from '../../lambdas/stream/event-source-settings';
import { streamFilterPatterns } from '../../lambdas/stream/filter-criteria';
import { STREAM_METRICS } from '../../lambdas/stream/stream-batch';
import { addPaymentSync } from '../../lib/app';
import { RUN_STATES } from '../../lib/constructs/run-definition';
import { DUCKDB_BINDING, type SyncFunction } from '../../lib/constructs/sync-function';
import { renderRunDefinition } from '../../scripts/local/run-state-machine';
import {
  actionsOf,
  allowing,
  assetDirectoryOf,
  choose,
  definitionOf,
  keysIn,
  logicalId,
  removeOutput,
  resourcesAllowed,
  roleIdsOf,
  statementsOf,
  statesOf,
  synthesize,
  type AslDefinition,
  type AslState,
  type SynthesizedStack,
  type TokenNamer,
} from './stack-fixture';

/** The dev stack of cdk.json: created tables, defaults everywhere else. */
const CONTEXT = { paymentSync: { tables: { mode: 'create' } } };

const LOGS = ['logs:CreateLogStream', 'logs:PutLogEvents'];
/** What the per-user reconcile reads: a user's payments by the index, the user by key. */
const PER_USER_READ = ['dynamodb:GetItem', 'dynamodb:Query'];
/** Item writes: what no role of a validation may do on the users table. */
const ITEM_WRITES = ['dynamodb:UpdateItem', 'dynamodb:PutItem', 'dynamodb:DeleteItem', 'dynamodb:BatchWriteItem', 'dynamodb:PartiQLUpdate', 'dynamodb:PartiQLInsert', 'dynamodb:PartiQLDelete'];
/** The Lambda defaults the stack leaves as they are. */
const LAMBDA_DEFAULTS = loadConfig({ DYNAMODB_PAYMENTS_TABLE: 'p', DYNAMODB_USERS_TABLE: 'u' });

let synthesized: SynthesizedStack;
beforeAll(() => {
  synthesized = synthesize(CONTEXT);
});
afterAll(() => removeOutput(synthesized));

const template = () => synthesized.template;
/** The template's resources by logical id (CloudFormation JSON). */
const resources = () => template().toJSON().Resources;
const stack = () => synthesized.stack;
const reconciliation = () => stack().reconciliation;
const tasks = () => reconciliation().tasks;
/** The state machines' task functions, as the construct names them. */
const TASK_NAMES = ['prepare', 'scanSegment', 'finishSnapshot', 'planBucket', 'collectChanges', 'repairBatch', 'finalize'] as const;
type TaskName = (typeof TASK_NAMES)[number];
/** The functions people and schedules invoke. */
const entryPoints = () => ({
  stream: stack().realtime.handler,
  sync: reconciliation().sync,
  validate: reconciliation().validate,
  health: stack().health.handler,
});
/** Every function of the stack: the entry points and the state machines' tasks. */
const functions = (): Record<string, SyncFunction> => ({ ...entryPoints(), ...tasks() });
const arnOf = (construct: IConstruct) => ({ 'Fn::GetAtt': [logicalId(construct), 'Arn'] });
const joined = (...parts: unknown[]) => ({ 'Fn::Join': ['', parts] });
const usersArn = () => arnOf(stack().tables.users);
const paymentsArn = () => arnOf(stack().tables.payments);
const runFilesArn = () => joined(arnOf(reconciliation().reports), '/runs/*');
const same = (a: unknown) => (b: unknown) => JSON.stringify(a) === JSON.stringify(b);
const statements = (fn: { role: IConstruct }) => statementsOf(template(), logicalId(fn.role));
const actions = (fn: { role: IConstruct }) => actionsOf(statements(fn));
/**
 * A function's environment as the Lambda sees it, references (table, bucket, queue) standing in
 * as literals of the right shape.
 */
const literalEnvironment = (variables: Record<string, unknown>): Record<string, string> =>
  Object.fromEntries(
    Object.entries(variables).map(([key, value]) => [key, typeof value === 'string' ? value : key === 'FAILURE_QUEUE_URL' ? 'https://sqs.ap-southeast-1.amazonaws.com/123456789012/failures' : `${key}-value`]),
  );
const kebab = (name: string) => name.replace(/[A-Z]/g, (char) => `-${char.toLowerCase()}`);

/**
 * The references a run definition embeds, by what they are: a task's function (by the local
 * runner's name for it), a table, the reports bucket, the partition.
 */
const nameToken: TokenNamer = (token) => {
  const names = new Map<string, string>([
    [JSON.stringify({ Ref: 'AWS::Partition' }), '«partition»'],
    [JSON.stringify(paymentsArn()), '«table:payments»'],
    [JSON.stringify(usersArn()), '«table:users»'],
    [JSON.stringify({ Ref: logicalId(reconciliation().reports) }), '«bucket»'],
    ...TASK_NAMES.map((name): [string, string] => [JSON.stringify(arnOf(tasks()[name].function)), `«function:${kebab(name)}»`]),
  ]);
  const name = names.get(JSON.stringify(token));
  if (!name) throw new Error(`a reference the run definition should not hold: ${JSON.stringify(token)}`);
  return name;
};
const syncRun = () => definitionOf(template(), logicalId(reconciliation().syncRun), nameToken);
const validationRun = () => definitionOf(template(), logicalId(reconciliation().validationRun), nameToken);
/** The task functions a definition's Task states invoke, by their task names. */
const taskFunctionsOf = (definition: AslDefinition): TaskName[] =>
  [...statesOf(definition).values()]
    .map((state) => /^«function:([a-z-]+)»$/.exec(state.Resource ?? '')?.[1])
    .filter((name): name is string => name !== undefined)
    .map((name) => TASK_NAMES.find((task) => kebab(task) === name)!)
    .filter((name, index, all) => all.indexOf(name) === index)
    .sort();

describe('tables (create mode)', () => {
  it('creates both payment tables with the contract keys, generated names, PITR and RETAIN, and the run table', () => {
    template().resourceCountIs('AWS::DynamoDB::Table', 3);
    template().hasResource('AWS::DynamoDB::Table', {
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
      Properties: {
        TableName: Match.absent(),
        KeySchema: [{ AttributeName: 'orderId', KeyType: 'HASH' }],
        BillingMode: 'PAY_PER_REQUEST',
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        StreamSpecification: { StreamViewType: 'NEW_AND_OLD_IMAGES' },
        GlobalSecondaryIndexes: [
          { IndexName: 'userId-index', KeySchema: [{ AttributeName: 'userId', KeyType: 'HASH' }], Projection: { ProjectionType: 'ALL' } },
        ],
      },
    });
    template().hasResource('AWS::DynamoDB::Table', {
      DeletionPolicy: 'Retain',
      Properties: {
        TableName: Match.absent(),
        KeySchema: [{ AttributeName: 'userId', KeyType: 'HASH' }],
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        StreamSpecification: Match.absent(),
      },
    });
  });
});

describe('run table', () => {
  it('keys run records, the lock and the hold by pk (S), expires old runs by TTL on expiresAt, on demand, with PITR', () => {
    const runTable = resources()[logicalId(reconciliation().runTable)];
    expect(runTable.Type).toBe('AWS::DynamoDB::Table');
    expect(runTable.Properties.KeySchema).toEqual([{ AttributeName: 'pk', KeyType: 'HASH' }]);
    expect(runTable.Properties.AttributeDefinitions).toEqual([{ AttributeName: 'pk', AttributeType: 'S' }]);
    expect(runTable.Properties).toMatchObject({
      BillingMode: 'PAY_PER_REQUEST',
      TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
    });
    expect(runTable.Properties.TableName).toBeUndefined();
    // A dev stack removes its run records with it (prod keeps them: stack-import).
    expect(runTable.DeletionPolicy).toBe('Delete');
  });
});

describe('reports bucket', () => {
  const bucket = () => resources()[logicalId(reconciliation().reports)];

  it('encrypts, blocks public access, disables ACLs and expires run folders after config.reports.retentionDays (90)', () => {
    expect(bucket().Type).toBe('AWS::S3::Bucket');
    expect(bucket().Properties.BucketEncryption).toEqual({ ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] });
    expect(bucket().Properties.PublicAccessBlockConfiguration).toEqual({ BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true });
    expect(bucket().Properties.OwnershipControls).toEqual({ Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] });
    const rules = bucket().Properties.LifecycleConfiguration.Rules as Array<Record<string, unknown>>;
    expect(rules).toContainEqual(expect.objectContaining({ Prefix: 'runs/', ExpirationInDays: 90, Status: 'Enabled' }));
    expect(bucket().Properties.BucketName).toBeUndefined();
  });

  it('refuses plain HTTP: the bucket policy denies every request with aws:SecureTransport false, on the bucket and its objects', () => {
    const bucketRef = { Ref: logicalId(reconciliation().reports) };
    const policies = Object.values(template().findResources('AWS::S3::BucketPolicy')).filter((policy) => same(bucketRef)(policy.Properties.Bucket));
    expect(policies).toHaveLength(1);
    expect(policies[0]!.Properties.PolicyDocument.Statement).toContainEqual({
      Effect: 'Deny',
      Principal: { AWS: '*' },
      Action: 's3:*',
      Condition: { Bool: { 'aws:SecureTransport': 'false' } },
      Resource: [arnOf(reconciliation().reports), joined(arnOf(reconciliation().reports), '/*')],
    });
  });
});

describe('functions', () => {
  it('runs all eleven on Node 24, each with its own role and log group: the join task on x86_64 (the DuckDB binding shipped), every other on ARM64', () => {
    template().resourceCountIs('AWS::Lambda::Function', 11);
    const roles = new Set<string>();
    for (const [name, fn] of Object.entries(functions())) {
      template().hasResourceProperties('AWS::Lambda::Function', {
        Runtime: 'nodejs24.x',
        Architectures: [name === 'planBucket' ? 'x86_64' : 'arm64'],
        Handler: 'index.handler',
        Role: { 'Fn::GetAtt': [logicalId(fn.role), 'Arn'] },
        LoggingConfig: { LogGroup: { Ref: logicalId(fn.logGroup) } },
        Environment: { Variables: Match.objectLike({ NODE_OPTIONS: '--enable-source-maps' }) },
      });
      roles.add(logicalId(fn.role));
    }
    expect(roles.size).toBe(11);
    // Eleven functions' and two state machines' log groups, all kept as configured.
    template().resourceCountIs('AWS::Logs::LogGroup', 13);
    template().allResourcesProperties('AWS::Logs::LogGroup', { RetentionInDays: 30 });
  });

  it('sizes memory, timeout and /tmp per task: the join task for DuckDB (its snapshot and spill files in /tmp), the entry points small', () => {
    const sizes = Object.fromEntries(
      Object.entries(functions()).map(([name, fn]) => {
        const properties = resources()[logicalId(fn.function)].Properties;
        return [name, [properties.MemorySize, properties.Timeout, properties.EphemeralStorage?.Size]];
      }),
    );
    expect(sizes).toEqual({
      stream: [512, 60, undefined],
      sync: [512, 900, undefined],
      validate: [512, 900, undefined],
      health: [256, 30, undefined],
      prepare: [256, 300, undefined],
      scanSegment: [1024, 900, undefined],
      finishSnapshot: [512, 300, undefined],
      planBucket: [3008, 900, 4096],
      collectChanges: [1024, 900, undefined],
      repairBatch: [512, 900, undefined],
      finalize: [1024, 900, undefined],
    });
  });

  it('gives every function the whole environment contract; the entry points their state machine, the tasks the run settings, only the join task its memory', () => {
    const contract = [
      'DYNAMODB_PAYMENTS_TABLE',
      'DYNAMODB_USERS_TABLE',
      'PAYMENTS_USER_INDEX',
      'PAYMENT_ID_ATTR',
      'PAYMENT_USER_ATTR',
      'PAYMENT_COURSE_ATTR',
      'PAYMENT_STATUS_ATTR',
      'PAYMENT_FRAUD_ATTR',
      'PAYMENT_UPDATED_ATTR',
      'USER_KEY_ATTR',
      'USER_COURSES_ATTR',
      'PURCHASED_COURSES_FORMAT',
      'PAID_STATUSES',
      'REVOKED_STATUSES',
      'REVOKE_ON_REFUND',
      'GRACE_MINUTES',
      'MAX_USER_CHANGES_PER_RUN',
      'MAX_REVOCATIONS_PER_RUN',
      'SCAN_SEGMENTS',
      'LOG_LEVEL',
      'POWERTOOLS_SERVICE_NAME',
      'POWERTOOLS_METRICS_NAMESPACE',
      'NODE_OPTIONS',
    ];
    const runSettings = ['JOIN_BUCKETS', 'SCAN_READ_UNITS_PER_SECOND', 'RUNS_TABLE', 'REPORTS_BUCKET', 'SNAPSHOT_MODE', 'JOIN_CONCURRENCY', 'REPAIR_CONCURRENCY'];
    const extra: Record<string, string[]> = {
      stream: [],
      health: ['FAILURE_QUEUE_URL', 'SYNC_INTERVAL_MINUTES', 'RUNS_TABLE', 'SNAPSHOT_MODE'],
      sync: ['RUNS_TABLE', 'REPORTS_BUCKET', 'SYNC_STATE_MACHINE_ARN'],
      validate: ['RUNS_TABLE', 'REPORTS_BUCKET', 'VALIDATION_STATE_MACHINE_ARN'],
      ...Object.fromEntries(TASK_NAMES.map((name) => [name, runSettings])),
      planBucket: [...runSettings, 'JOIN_MEMORY_MB'],
      collectChanges: [...runSettings, 'FAILURE_QUEUE_URL'],
    };
    const variablesOf = (fn: SyncFunction) => resources()[logicalId(fn.function)].Properties.Environment.Variables as Record<string, unknown>;
    for (const [name, fn] of Object.entries(functions())) {
      const variables = variablesOf(fn);
      expect([name, Object.keys(variables).sort()]).toEqual([name, [...contract, ...extra[name]!].sort()]);
      expect(variables).toMatchObject({
        DYNAMODB_PAYMENTS_TABLE: { Ref: logicalId(stack().tables.payments) },
        DYNAMODB_USERS_TABLE: { Ref: logicalId(stack().tables.users) },
        POWERTOOLS_SERVICE_NAME: 'payment-sync',
        POWERTOOLS_METRICS_NAMESPACE: 'PaymentSync',
      });
      if ('RUNS_TABLE' in variables) expect([name, variables.RUNS_TABLE]).toEqual([name, { Ref: logicalId(reconciliation().runTable) }]);
      if ('REPORTS_BUCKET' in variables) expect([name, variables.REPORTS_BUCKET]).toEqual([name, { Ref: logicalId(reconciliation().reports) }]);
    }
    const health = variablesOf(entryPoints().health);
    expect(health.FAILURE_QUEUE_URL).toEqual({ Ref: logicalId(stack().realtime.failureQueue) });
    expect(variablesOf(tasks().collectChanges).FAILURE_QUEUE_URL).toEqual({ Ref: logicalId(stack().realtime.failureQueue) });
    expect(health.SYNC_INTERVAL_MINUTES).toBe('60');
    // Each entry point starts its own machine, and only that one.
    expect(variablesOf(entryPoints().sync).SYNC_STATE_MACHINE_ARN).toEqual({ Ref: logicalId(reconciliation().syncRun) });
    expect(variablesOf(entryPoints().validate).VALIDATION_STATE_MACHINE_ARN).toEqual({ Ref: logicalId(reconciliation().validationRun) });
    for (const name of TASK_NAMES) {
      // What the Lambda loader reads from a task's environment (references standing in as literals).
      expect([name, loadConfig(literalEnvironment(variablesOf(tasks()[name])))]).toEqual([
        name,
        expect.objectContaining({
          snapshotMode: 'export',
          joinConcurrency: 10,
          repairConcurrency: LAMBDA_DEFAULTS.repairConcurrency,
          joinBuckets: LAMBDA_DEFAULTS.joinBuckets,
          runsTable: 'RUNS_TABLE-value',
          reportsBucket: 'REPORTS_BUCKET-value',
        }),
      ]);
    }
    // About 60% of the join task's 3008 MB; the rest is Node's.
    expect(variablesOf(tasks().planBucket).JOIN_MEMORY_MB).toBe('1800');
  });

  it('bundles each handler with esbuild into one file with its source map (DuckDB stays outside, below)', () => {
    const outdir = synthesized.app.outdir;
    const bundles = readdirSync(outdir).filter((entry) => entry.startsWith('asset.') && existsSync(join(outdir, entry, 'index.js')));
    expect(bundles).toHaveLength(11);
    for (const bundle of bundles) {
      expect(existsSync(join(outdir, bundle, 'index.js.map'))).toBe(true);
      expect(readFileSync(join(outdir, bundle, 'index.js'), 'utf8')).toMatch(/\/\/# sourceMappingURL=index\.js\.map\s*$/);
    }
  });
});

describe('DuckDB in the join task’s asset', () => {
  /** e_machine of the ELF files of each Lambda architecture. */
  const ELF_MACHINE: Record<string, number> = { x86_64: 62, arm64: 183 };
  const BINDING = join('node_modules', ...DUCKDB_BINDING.package.split('/'));
  const planBucket = () => tasks().planBucket.function;

  /** e_machine of an ELF file: a little-endian uint16 at byte 18, after the magic, class and data bytes. */
  function elfMachine(file: string): number {
    const header = Buffer.alloc(20);
    const fd = openSync(file, 'r');
    try {
      expect(readSync(fd, header, 0, header.length, 0)).toBe(header.length);
    } finally {
      closeSync(fd);
    }
    expect([...header.subarray(0, 6)]).toEqual([0x7f, 0x45, 0x4c, 0x46, 2, 1]); // \x7fELF, 64-bit, little-endian
    return header.readUInt16LE(18);
  }

  it('ships exactly the runtime packages with the plan-bucket handler, with the binding of the function’s architecture', () => {
    const asset = assetDirectoryOf(synthesized, planBucket());
    expect(readdirSync(join(asset, 'node_modules')).sort()).toEqual(['@duckdb', 'detect-libc']);
    expect(readdirSync(join(asset, 'node_modules', '@duckdb')).sort()).toEqual(['node-api', 'node-bindings', DUCKDB_BINDING.package.replace('@duckdb/', '')].sort());
    const [architecture] = resources()[logicalId(planBucket())].Properties.Architectures as string[];
    expect(architecture).toBe('x86_64');
    for (const file of ['duckdb.node', 'libduckdb.so']) expect(elfMachine(join(asset, BINDING, file))).toBe(ELF_MACHINE[architecture!]);
  });

  it('requires DuckDB from the plan-bucket bundle instead of inlining it', () => {
    const asset = assetDirectoryOf(synthesized, planBucket());
    const bundle = readFileSync(join(asset, 'index.js'), 'utf8');
    expect(bundle).toContain('require("@duckdb/node-api")');
    expect(bundle).not.toMatch(/node-bindings|duckdb\.node|detect-libc/);
    const sources = (JSON.parse(readFileSync(join(asset, 'index.js.map'), 'utf8')) as { sources: string[] }).sources;
    expect(sources.filter((source) => /node_modules\/(@duckdb|detect-libc)\//.test(source))).toEqual([]);
  });

  it('ships no node_modules and no DuckDB with any other function (the sync and validate entry points included)', () => {
    const others = Object.entries(functions()).filter(([name]) => name !== 'planBucket');
    expect(others).toHaveLength(10);
    for (const [name, fn] of others) {
      const asset = assetDirectoryOf(synthesized, fn.function);
      expect([name, existsSync(join(asset, 'node_modules'))]).toEqual([name, false]);
      expect([name, readFileSync(join(asset, 'index.js'), 'utf8').includes('@duckdb/')]).toEqual([name, false]);
    }
  });

  it('loads the plan-bucket handler and runs a query from its asset folder alone', () => {
    const fn = planBucket();
    const asset = assetDirectoryOf(synthesized, fn);
    const variables = resources()[logicalId(fn)].Properties.Environment.Variables as Record<string, unknown>;
    // The deployed environment, table and bucket names (references) standing in as literals.
    const environment = literalEnvironment(variables);
    const script = `
      const { handler } = require('./index.js');
      const { DuckDBInstance } = require('@duckdb/node-api');
      (async () => {
        const connection = await (await DuckDBInstance.create(':memory:')).connect();
        const rows = (await connection.runAndReadAll('SELECT 6 * 7')).getRows();
        const loaded = Object.keys(require.cache).filter((file) => /duckdb|detect-libc/.test(file));
        console.log(JSON.stringify({ handler: typeof handler, rows, loaded }));
      })();`;
    const output = execFileSync(process.execPath, ['-e', script], {
      cwd: asset,
      env: { PATH: process.env.PATH, AWS_REGION: 'ap-southeast-1', ...environment },
      encoding: 'utf8',
    });
    const result = JSON.parse(output.trim().split('\n').pop()!) as { handler: string; rows: number[][]; loaded: string[] };
    expect(result.handler).toBe('function');
    expect(result.rows).toEqual([[42]]);
    expect(result.loaded).toContain(join(asset, BINDING, 'duckdb.node'));
    expect(result.loaded.every((file) => file.startsWith(`${asset}/`))).toBe(true);
  });
});

describe('stream event source', () => {
  it('reads the payments stream with the shared settings, the filters and the failure queue', () => {
    const filterPattern = new Capture();
    template().resourceCountIs('AWS::Lambda::EventSourceMapping', 1);
    template().hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: logicalId(entryPoints().stream.function) },
      EventSourceArn: { 'Fn::GetAtt': [logicalId(stack().tables.payments), 'StreamArn'] },
      StartingPosition: 'TRIM_HORIZON',
      BatchSize: STREAM_EVENT_SOURCE_SETTINGS.batchSize,
      MaximumBatchingWindowInSeconds: STREAM_EVENT_SOURCE_SETTINGS.maximumBatchingWindowInSeconds,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      BisectBatchOnFunctionError: true,
      MaximumRetryAttempts: STREAM_EVENT_SOURCE_SETTINGS.maximumRetryAttempts,
      MaximumRecordAgeInSeconds: STREAM_EVENT_SOURCE_SETTINGS.maximumRecordAgeInSeconds,
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [logicalId(stack().realtime.failureQueue), 'Arn'] } } },
      FilterCriteria: { Filters: [{ Pattern: filterPattern }] },
    });
    expect(STREAM_EVENT_SOURCE_SETTINGS.maximumRetryAttempts).toBeGreaterThan(0);
    expect(JSON.parse(filterPattern.asString())).toEqual(
      streamFilterPatterns(['settlement', 'success', 'paid', 'completed'], ['refund', 'chargeback'], 'status')[0],
    );
  });

  it('keeps failed batches in an encrypted queue that refuses plain HTTP', () => {
    template().hasResourceProperties('AWS::SQS::Queue', { SqsManagedSseEnabled: true, MessageRetentionPeriod: 14 * 24 * 3600 });
    template().hasResourceProperties('AWS::SQS::QueuePolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Action: 'sqs:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });
});

describe('the run state machines: shape', () => {
  const WORK_STATES = ['Prepare', 'ScanSegments', 'ExportTables', 'FinishSnapshot', 'JoinBuckets', 'RepairBuckets'];
  /** The hourly sync's path by changes: sync runs only. */
  const CHANGES_STATES = ['ExportChanges', RUN_STATES.collectChanges];
  const TO_FINALIZE = { ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: RUN_STATES.finalize };
  const state = (definition: AslDefinition, name: string): AslState => {
    const found = statesOf(definition).get(name);
    if (!found) throw new Error(`no state ${name}`);
    return found;
  };

  it('are two Standard workflows with X-Ray tracing and execution logs (without execution data)', () => {
    for (const machine of [reconciliation().syncRun, reconciliation().validationRun]) {
      const properties = resources()[logicalId(machine)].Properties;
      expect(properties.StateMachineType).toBe('STANDARD');
      expect(properties.TracingConfiguration).toEqual({ Enabled: true });
      expect(properties.LoggingConfiguration).toMatchObject({ Level: 'ALL', IncludeExecutionData: false });
    }
    template().resourceCountIs('AWS::StepFunctions::StateMachine', 2);
  });

  it('maps small inline items only: no ItemReader, ItemBatcher or ResultWriter anywhere, every Map INLINE', () => {
    for (const definition of [syncRun(), validationRun()]) {
      const keys = keysIn(definition);
      for (const key of ['ItemReader', 'ItemBatcher', 'ResultWriter', 'ToleratedFailurePercentage', 'ToleratedFailureCount']) expect(keys.has(key)).toBe(false);
      const maps = [...statesOf(definition).values()].filter((candidate) => candidate.Type === 'Map');
      expect(maps.length).toBeGreaterThanOrEqual(2);
      for (const map of maps) expect(map.ItemProcessor?.ProcessorConfig).toEqual({ Mode: 'INLINE' });
    }
  });

  it('scans over $.scanItems, each segment looping ScanSegment → SegmentDone? → ScanSegment until $.done', () => {
    for (const definition of [syncRun(), validationRun()]) {
      const scan = state(definition, 'ScanSegments');
      expect(scan).toMatchObject({ Type: 'Map', ItemsPath: '$.scanItems' });
      const loop = scan.ItemProcessor!;
      expect(loop.StartAt).toBe(RUN_STATES.scanSegment);
      expect(loop.States[RUN_STATES.scanSegment]).toMatchObject({ Type: 'Task', Resource: '«function:scan-segment»', Next: 'SegmentDone?' });
      const done = loop.States['SegmentDone?'];
      // A turn that ran out of time says done: false and goes round again with its cursor.
      expect(choose(done, { done: false, cursor: 'c' })).toBe(RUN_STATES.scanSegment);
      expect(loop.States[choose(done, { done: true })]?.Type).toBe('Succeed');
      expect(scan.Next).toBe(RUN_STATES.finishSnapshot);
    }
  });

  it('joins buckets over $.bucketItems at $.run.joinConcurrency; repairs bucket after bucket, each one’s files at $.run.repairConcurrency', () => {
    const definition = syncRun();
    const join = state(definition, 'JoinBuckets');
    expect(join).toMatchObject({ Type: 'Map', ItemsPath: '$.bucketItems', MaxConcurrencyPath: '$.run.joinConcurrency' });
    expect(join.MaxConcurrency).toBeUndefined();
    expect(join.ItemProcessor).toMatchObject({ StartAt: RUN_STATES.planBucket, States: { [RUN_STATES.planBucket]: { Type: 'Task', Resource: '«function:plan-bucket»', End: true } } });
    expect(Object.keys(join.ItemProcessor!.States)).toEqual([RUN_STATES.planBucket]);

    const repair = state(definition, 'RepairBuckets');
    expect(repair).toMatchObject({ Type: 'Map', ItemsPath: '$.plans', MaxConcurrency: 1, Next: RUN_STATES.finalize });
    expect(repair.MaxConcurrencyPath).toBeUndefined();
    expect(repair.ItemProcessor!.StartAt).toBe('RepairFiles');
    const files = repair.ItemProcessor!.States.RepairFiles!;
    expect(files).toMatchObject({ Type: 'Map', MaxConcurrencyPath: '$.run.repairConcurrency', End: true });
    expect(files.ItemProcessor).toMatchObject({ StartAt: RUN_STATES.repairBatch, States: { [RUN_STATES.repairBatch]: { Type: 'Task', Resource: '«function:repair-batch»', End: true } } });
    // Repair only when the run writes (not a dry run, not held); otherwise straight to finalize.
    expect(join.Next).toBe('Writes?');
    expect(choose(state(definition, 'Writes?'), { run: { writes: true } })).toBe('RepairBuckets');
    expect(choose(state(definition, 'Writes?'), { run: { writes: false } })).toBe(RUN_STATES.finalize);
  });

  it('starts with Prepare, ends a skipped run at once, and takes the snapshot by export or by scan as the run says', () => {
    for (const definition of [syncRun(), validationRun()]) {
      expect(definition.StartAt).toBe(RUN_STATES.prepare);
      const skipped = state(definition, state(definition, RUN_STATES.prepare).Next!);
      expect(state(definition, choose(skipped, { skipped: { runningRunId: 'r' }, run: {} })).Type).toBe('Succeed');
      const mode = state(definition, choose(skipped, { run: { snapshotMode: 'scan' } }));
      expect(choose(mode, { run: { snapshotMode: 'scan' } })).toBe('ScanSegments');
      expect(choose(mode, { run: { snapshotMode: 'export' } })).toBe('ExportTables');
      expect(state(definition, 'ExportTables').Next).toBe(RUN_STATES.finishSnapshot);
      expect(state(definition, RUN_STATES.finishSnapshot)).toMatchObject({ Resource: '«function:finish-snapshot»', ResultPath: '$.snapshot', Next: 'JoinBuckets' });
    }
  });

  it('catches every failure of every work state into Finalize (ResultPath $.error), which fails the execution for a failed run', () => {
    for (const [definition, work] of [
      [syncRun(), [...WORK_STATES, ...CHANGES_STATES]],
      [validationRun(), WORK_STATES.filter((name) => name !== 'RepairBuckets')],
    ] as const) {
      // The top-level states that do work are exactly these, and each one's failure reaches Finalize.
      const doing = Object.entries(definition.States)
        .filter(([name, candidate]) => ['Task', 'Map', 'Parallel'].includes(candidate.Type) && name !== RUN_STATES.finalize)
        .map(([name]) => name);
      expect(doing.sort()).toEqual([...work].sort());
      for (const name of work) expect([name, definition.States[name]!.Catch]).toEqual([name, [TO_FINALIZE]]);

      const finalize = state(definition, RUN_STATES.finalize);
      expect(finalize).toMatchObject({ Type: 'Task', Resource: '«function:finalize»' });
      expect(finalize.Catch).toBeUndefined();
      const finished = state(definition, finalize.Next!);
      const failed = state(definition, choose(finished, { status: 'failed', error: 'States.TaskFailed: boom' }));
      expect(failed).toEqual({ Type: 'Fail', Error: 'RunFailed', CausePath: '$.error' });
      expect(state(definition, choose(finished, { status: 'completed' })).Type).toBe('Succeed');
    }
  });

  it('retries every Lambda task on throttles and on Lambda service errors, with backoff', () => {
    for (const definition of [syncRun(), validationRun()]) {
      const lambdaTasks = [...statesOf(definition).entries()].filter(([, candidate]) => candidate.Resource?.startsWith('«function:'));
      const expected: string[] = [RUN_STATES.prepare, RUN_STATES.scanSegment, RUN_STATES.finishSnapshot, RUN_STATES.planBucket, RUN_STATES.finalize];
      if (definition.States.RepairBuckets) expected.push(RUN_STATES.collectChanges, RUN_STATES.repairBatch);
      expect(lambdaTasks.map(([name]) => name).sort()).toEqual(expected.sort());
      for (const [name, task] of lambdaTasks) {
        const retrying = (error: string) => (task.Retry ?? []).find((retrier) => retrier.ErrorEquals.includes(error));
        for (const error of ['Lambda.TooManyRequestsException', 'Lambda.ServiceException', 'Lambda.AWSLambdaException', 'Lambda.SdkClientException']) {
          const retrier = retrying(error);
          expect([name, error, retrier]).toEqual([name, error, expect.objectContaining({ MaxAttempts: expect.any(Number), BackoffRate: expect.any(Number) })]);
          expect(retrier!.MaxAttempts).toBeGreaterThanOrEqual(3);
          expect(retrier!.BackoffRate).toBeGreaterThan(1);
          expect(retrier!.IntervalSeconds).toBeGreaterThanOrEqual(1);
        }
        expect([name, task.TimeoutSeconds]).toEqual([name, 900]);
      }
    }
  });

  it('puts a run’s files, exports included, where the grants and the lifecycle rule reach: runs/<run id> in the bucket', () => {
    expect(runFolderKey(new S3Storage({} as S3Client, 'bucket'), 'RUN-ID')).toBe('runs/RUN-ID');
  });

  /**
   * One table's export branch: start (the SDK integration, into <run folder>/<folder>/<table>)
   * → wait → describe → back to wait until COMPLETED (a Pass ends the branch) or FAILED (Fail).
   */
  function expectExportLoop(definition: AslDefinition, table: 'payments' | 'users', names: { start: string; wait: string; describe: string }, folder: string, parameters: Record<string, unknown>): void {
    const start = state(definition, names.start);
    expect(start).toMatchObject({
      Type: 'Task',
      Resource: 'arn:«partition»:states:::aws-sdk:dynamodb:exportTableToPointInTime',
      Parameters: { TableArn: `«table:${table}»`, S3Bucket: '«bucket»', 'S3Prefix.$': `States.Format('{}/${folder}/${table}', $.run.folder)`, ExportFormat: 'DYNAMODB_JSON', ...parameters },
      Next: names.wait,
    });
    expect(state(definition, names.wait)).toMatchObject({ Type: 'Wait', Next: names.describe });
    expect((state(definition, names.wait).Seconds as number) > 0).toBe(true);
    const describe = state(definition, names.describe);
    expect(describe).toMatchObject({ Type: 'Task', Resource: 'arn:«partition»:states:::aws-sdk:dynamodb:describeExport', Parameters: { 'ExportArn.$': '$.export.exportArn' } });
    // The whole description is kept: ExportManifest appears only once the export completed.
    expect(describe).toMatchObject({ ResultSelector: { 'description.$': '$.ExportDescription' }, ResultPath: '$.described' });
    expect(describe.Retry).toEqual(expect.arrayContaining([expect.objectContaining({ ErrorEquals: expect.arrayContaining(['DynamoDb.ThrottlingException']) })]));
    expect(start.Retry).toEqual(expect.arrayContaining([expect.objectContaining({ ErrorEquals: ['DynamoDb.LimitExceededException', 'DynamoDb.ThrottlingException'] })]));
    const check = state(definition, describe.Next!);
    const described = (status: string) => ({ described: { description: { ExportStatus: status } } });
    expect(choose(check, described('IN_PROGRESS'))).toBe(names.wait);
    expect(state(definition, choose(check, described('COMPLETED')))).toMatchObject({
      Type: 'Pass',
      End: true,
      Parameters: { 'exportArn.$': '$.export.exportArn', 'manifest.$': '$.described.description.ExportManifest' },
    });
    expect(state(definition, choose(check, described('FAILED'))).Type).toBe('Fail');
  }

  it('exports each table through the DynamoDB SDK integration: start → wait → describe → until COMPLETED (FAILED fails)', () => {
    for (const definition of [syncRun(), validationRun()]) {
      const exportTables = state(definition, 'ExportTables');
      expect(exportTables).toMatchObject({ Type: 'Parallel', ResultPath: '$.exports' });
      expect(exportTables.Branches!.map((branch) => branch.StartAt)).toEqual([RUN_STATES.startPaymentsExport, RUN_STATES.startUsersExport]);
      expectExportLoop(definition, 'payments', { start: RUN_STATES.startPaymentsExport, wait: RUN_STATES.waitPaymentsExport, describe: RUN_STATES.describePaymentsExport }, 'snapshot', {});
      expectExportLoop(definition, 'users', { start: RUN_STATES.startUsersExport, wait: RUN_STATES.waitUsersExport, describe: RUN_STATES.describeUsersExport }, 'snapshot', {});
      // A full export: the whole table at one time.
      for (const name of [RUN_STATES.startPaymentsExport, RUN_STATES.startUsersExport]) expect(state(definition, name).Parameters).not.toHaveProperty('ExportType');
    }
  });

  it('reads only what changed in an hourly sync by changes: incremental exports of the run’s window → CollectChanges → RepairBuckets', () => {
    const definition = syncRun();
    expect(choose(state(definition, 'SnapshotMode?'), { run: { snapshotMode: 'changes' } })).toBe('ExportChanges');
    const exportChanges = state(definition, 'ExportChanges');
    expect(exportChanges).toMatchObject({ Type: 'Parallel', ResultPath: '$.changes', Next: RUN_STATES.collectChanges });
    expect(exportChanges.Branches!.map((branch) => branch.StartAt)).toEqual([RUN_STATES.startPaymentsChanges, RUN_STATES.startUsersChanges]);
    const incremental = {
      ExportType: 'INCREMENTAL_EXPORT',
      IncrementalExportSpecification: { 'ExportFromTime.$': '$.run.changes.fromSeconds', 'ExportToTime.$': '$.run.changes.toSeconds', ExportViewType: 'NEW_AND_OLD_IMAGES' },
    };
    expectExportLoop(definition, 'payments', { start: RUN_STATES.startPaymentsChanges, wait: RUN_STATES.waitPaymentsChanges, describe: RUN_STATES.describePaymentsChanges }, INCREMENTAL_FOLDER, incremental);
    expectExportLoop(definition, 'users', { start: RUN_STATES.startUsersChanges, wait: RUN_STATES.waitUsersChanges, describe: RUN_STATES.describeUsersChanges }, INCREMENTAL_FOLDER, incremental);
    // The candidates from the changes take the place of the join's plans, and go to the repair.
    expect(state(definition, RUN_STATES.collectChanges)).toMatchObject({ Type: 'Task', Resource: '«function:collect-changes»', ResultPath: '$.plans', Next: 'RepairBuckets' });
  });

  it('has no repair at all in the ValidationRun: no RepairBuckets, RepairFiles or RepairBatch state, no repair function', () => {
    const states = statesOf(validationRun());
    for (const name of ['RepairBuckets', 'RepairFiles', RUN_STATES.repairBatch, 'Writes?', ...CHANGES_STATES]) expect([name, states.has(name)]).toEqual([name, false]);
    expect(JSON.stringify(validationRun())).not.toContain('«function:repair-batch»');
    expect(JSON.stringify(validationRun())).not.toContain('«function:collect-changes»');
    expect(state(validationRun(), 'JoinBuckets').Next).toBe(RUN_STATES.finalize);
    expect(taskFunctionsOf(validationRun())).toEqual(['finalize', 'finishSnapshot', 'planBucket', 'prepare', 'scanSegment']);
    expect(taskFunctionsOf(syncRun())).toEqual([...TASK_NAMES].sort());
  });
});

describe('the run state machines: the local definition is the synthesized one', () => {
  /** The local runner's stand-ins for what the stack references, named as nameToken names the stack's. */
  function normalize(value: unknown): unknown {
    if (Array.isArray(value)) return value.map(normalize);
    if (value && typeof value === 'object') {
      if ('Fn::Join' in value) {
        const [separator, parts] = (value as { 'Fn::Join': [string, unknown[]] })['Fn::Join'];
        return normalize(parts.map((part) => (typeof part === 'string' ? part : part && typeof part === 'object' && 'Ref' in part && part.Ref === 'AWS::Partition' ? '«partition»' : JSON.stringify(part))).join(separator));
      }
      return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, normalize(inner)]));
    }
    if (typeof value !== 'string') return value;
    return value
      .replace(/^arn:aws:lambda:[a-z0-9-]+:\d{12}:function:payment-sync-([a-z-]+)$/, '«function:$1»')
      .replace(/^arn:aws:dynamodb:[a-z0-9-]+:\d{12}:table\/([a-z]+)$/, '«table:$1»')
      .replace(/^local-reports$/, '«bucket»');
  }

  it.each([
    ['SyncRun', true],
    ['ValidationRun', false],
  ] as const)('the synthesized %s and renderRunDefinition(%s) have the same States tree, references aside', (machine, writes) => {
    const synthesizedDefinition = machine === 'SyncRun' ? syncRun() : validationRun();
    const local = normalize(JSON.parse(JSON.stringify(renderRunDefinition(writes)))) as AslDefinition;
    expect(local.StartAt).toBe(synthesizedDefinition.StartAt);
    expect(local.States).toEqual(synthesizedDefinition.States);
    // Not vacuous: the trees hold the function and table stand-ins they were compared by.
    const text = JSON.stringify(local.States);
    for (const reference of ['«function:prepare»', '«function:scan-segment»', '«table:payments»', '«table:users»', '«bucket»', 'arn:«partition»:states:::aws-sdk:dynamodb:exportTableToPointInTime']) {
      expect(text).toContain(reference);
    }
    expect(text.includes('«function:repair-batch»')).toBe(writes);
    expect(text).not.toMatch(/arn:aws:|\{"Ref"|Fn::/);
  });
});

describe('IAM: each function its own least-privilege role', () => {
  const isUsersTable = (resource: unknown) => resource === '*' || same(usersArn())(resource) || same(joined(usersArn(), '*'))(resource);
  const writesUsers = (role: string) => ITEM_WRITES.some((action) => allowing(statementsOf(template(), role), action, isUsersTable).length > 0);
  const rolesAllowing = (action: string) =>
    roleIdsOf(template())
      .filter((role) => allowing(statementsOf(template(), role), action).length > 0)
      .sort();
  const roleOf = (fn: SyncFunction) => logicalId(fn.role);
  const machineRole = (machine: 'syncRun' | 'validationRun') => logicalId(reconciliation()[machine].role);

  it('grants the stream function stream read, the index query, and get/update on users', () => {
    expect(actions(entryPoints().stream)).toEqual(
      [
        ...LOGS,
        'dynamodb:DescribeStream',
        'dynamodb:GetItem',
        'dynamodb:GetRecords',
        'dynamodb:GetShardIterator',
        'dynamodb:ListStreams',
        'dynamodb:Query',
        'dynamodb:UpdateItem',
        'sqs:GetQueueAttributes',
        'sqs:GetQueueUrl',
        'sqs:SendMessage',
      ].sort(),
    );
    expect(statements(entryPoints().stream).find((statement) => statement.Action === 'dynamodb:Query')?.Resource).toEqual(
      joined(paymentsArn(), '/index/userId-index'),
    );
  });

  it('gives each run task exactly what its step calls', () => {
    const s3 = (...names: string[]) => names.map((name) => `s3:${name}`);
    const expected: Record<TaskName, string[]> = {
      prepare: [...LOGS, 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:CreateBackup', ...s3('PutObject')],
      scanSegment: [...LOGS, 'dynamodb:Scan', 'dynamodb:DescribeTable', ...s3('GetObject', 'PutObject', 'ListBucket')],
      finishSnapshot: [...LOGS, ...s3('GetObject', 'PutObject', 'ListBucket')],
      planBucket: [...LOGS, ...s3('GetObject', 'PutObject', 'ListBucket')],
      // The failure queue's messages (received, never deleted) and the stream records they name.
      collectChanges: [...LOGS, 'sqs:ReceiveMessage', 'dynamodb:GetShardIterator', 'dynamodb:GetRecords', ...s3('GetObject', 'PutObject', 'ListBucket')],
      repairBatch: [...LOGS, ...PER_USER_READ, 'dynamodb:UpdateItem', ...s3('GetObject', 'PutObject', 'ListBucket')],
      finalize: [...LOGS, 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:DeleteItem', ...s3('GetObject', 'PutObject', 'DeleteObject', 'ListBucket')],
    };
    for (const name of TASK_NAMES) expect([name, actions(tasks()[name])]).toEqual([name, expected[name].sort()]);
    // The run records and the lock live in the run table: its grants name it and nothing else.
    const runTable = arnOf(reconciliation().runTable);
    expect(resourcesAllowed(statements(tasks().prepare), 'dynamodb:PutItem')).toEqual([runTable]);
    expect(resourcesAllowed(statements(tasks().finalize), 'dynamodb:PutItem')).toEqual([runTable]);
    expect(resourcesAllowed(statements(tasks().finalize), 'dynamodb:DeleteItem')).toEqual([runTable]);
    expect(resourcesAllowed(statements(tasks().repairBatch), 'dynamodb:UpdateItem')).toEqual([usersArn(), runTable]);
    expect(resourcesAllowed(statements(tasks().collectChanges), 'sqs:ReceiveMessage')).toEqual([arnOf(stack().realtime.failureQueue)]);
    expect(resourcesAllowed(statements(tasks().collectChanges), 'dynamodb:GetRecords')).toEqual([{ 'Fn::GetAtt': [logicalId(stack().tables.payments), 'StreamArn'] }]);
  });

  it('gives the sync entry point the per-user fix and undo, the lock and hold, and the start of sync runs; no scan, no backup', () => {
    expect(actions(entryPoints().sync)).toEqual(
      [...LOGS, ...PER_USER_READ, 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'states:StartExecution', 's3:GetObject', 's3:PutObject', 's3:ListBucket'].sort(),
    );
    expect(resourcesAllowed(statements(entryPoints().sync), 'dynamodb:DeleteItem')).toEqual([arnOf(reconciliation().runTable)]);
  });

  it('limits every UpdateItem on users to the key and the courses list', () => {
    for (const fn of [entryPoints().stream, entryPoints().sync, tasks().repairBatch]) {
      const updates = allowing(statements(fn), 'dynamodb:UpdateItem', isUsersTable);
      expect(updates).toEqual([
        {
          Sid: 'UpdateUserCoursesOnly',
          Effect: 'Allow',
          Action: 'dynamodb:UpdateItem',
          Resource: usersArn(),
          Condition: {
            'ForAllValues:StringEquals': { 'dynamodb:Attributes': ['userId', 'purchasedCourses'] },
            StringEqualsIfExists: { 'dynamodb:ReturnValues': ['NONE', 'UPDATED_OLD', 'UPDATED_NEW'] },
          },
        },
      ]);
    }
  });

  it('lets only RepairBatch, the sync entry point (per-user fixes, undo) and the stream write users', () => {
    const writers = roleIdsOf(template()).filter(writesUsers);
    expect(writers.sort()).toEqual([roleOf(tasks().repairBatch), roleOf(entryPoints().sync), roleOf(entryPoints().stream)].sort());
  });

  it('keeps validation read-only: neither the validate entry point nor the ValidationRun, nor any task it can invoke, may write users', () => {
    const validationRole = machineRole('validationRun');
    // The functions the ValidationRun may invoke are exactly those its definition calls.
    const invocable = TASK_NAMES.filter((name) => allowing(statementsOf(template(), validationRole), 'lambda:InvokeFunction', same(arnOf(tasks()[name].function))).length > 0);
    expect([...invocable].sort()).toEqual(taskFunctionsOf(validationRun()));
    expect(invocable).not.toContain('repairBatch');
    const readOnly = [roleOf(entryPoints().validate), validationRole, ...invocable.map((name) => roleOf(tasks()[name]))];
    expect(readOnly).toHaveLength(7);
    for (const role of readOnly) expect([role, writesUsers(role)]).toEqual([role, false]);
    // The same check finds the grant where it is.
    expect(writesUsers(roleOf(tasks().repairBatch))).toBe(true);

    // The validate entry point: per-user reads, a look at the lock, the start of validation runs; nothing else.
    const validate = statements(entryPoints().validate);
    expect(actionsOf(validate)).toEqual([...LOGS, ...PER_USER_READ, 'states:StartExecution'].sort());
    for (const action of actionsOf(validate).filter((name) => !LOGS.includes(name))) {
      expect(action).not.toMatch(/\*|Put|Update|Delete|Write|Create|Restore|Transact|Import|PartiQL/i);
    }
  });

  it('lets the validate entry point start the ValidationRun only, and the sync entry point the SyncRun only', () => {
    const starters = Object.fromEntries(rolesAllowing('states:StartExecution').map((role) => [role, resourcesAllowed(statementsOf(template(), role), 'states:StartExecution')]));
    expect(starters).toEqual({
      [roleOf(entryPoints().sync)]: [{ Ref: logicalId(reconciliation().syncRun) }],
      [roleOf(entryPoints().validate)]: [{ Ref: logicalId(reconciliation().validationRun) }],
    });
  });

  it('lets only Prepare back up users, and only ScanSegment scan (both tables)', () => {
    expect(rolesAllowing('dynamodb:CreateBackup')).toEqual([roleOf(tasks().prepare)]);
    expect(resourcesAllowed(statements(tasks().prepare), 'dynamodb:CreateBackup')).toEqual([usersArn()]);
    expect(rolesAllowing('dynamodb:Scan')).toEqual([roleOf(tasks().scanSegment)]);
    expect(resourcesAllowed(statements(tasks().scanSegment), 'dynamodb:Scan')).toEqual([paymentsArn(), usersArn()]);
  });

  it('reads payments only by scan, export and through the index: no item reads of payments in any role', () => {
    for (const role of roleIdsOf(template())) {
      const getItem = resourcesAllowed(statementsOf(template(), role), 'dynamodb:GetItem');
      expect([role, getItem.filter((resource) => !same(usersArn())(resource) && !same(arnOf(reconciliation().runTable))(resource))]).toEqual([role, []]);
    }
  });

  it('grants run files only under runs/ of the reports bucket, and listing only of that prefix', () => {
    const bucketArn = arnOf(reconciliation().reports);
    let granted = 0;
    for (const role of roleIdsOf(template())) {
      for (const statement of statementsOf(template(), role).filter((candidate) => [candidate.Action].flat().some((action) => action.startsWith('s3:')))) {
        granted += 1;
        if (same('s3:ListBucket')(statement.Action)) {
          expect(statement).toMatchObject({ Resource: bucketArn, Condition: { StringLike: { 's3:prefix': ['runs/*'] } } });
        } else {
          expect([role, statement.Resource]).toEqual([role, runFilesArn()]);
        }
      }
    }
    expect(granted).toBeGreaterThanOrEqual(10);
  });

  it('lets each state machine invoke its own tasks only (the ValidationRun not RepairBatch)', () => {
    for (const [machine, definition] of [
      ['syncRun', syncRun()],
      ['validationRun', validationRun()],
    ] as const) {
      const invoked = resourcesAllowed(statementsOf(template(), machineRole(machine)), 'lambda:InvokeFunction');
      const expected = taskFunctionsOf(definition).flatMap((name) => [arnOf(tasks()[name].function), joined(arnOf(tasks()[name].function), ':*')]);
      expect(new Set(invoked.map((resource) => JSON.stringify(resource)))).toEqual(new Set(expected.map((resource) => JSON.stringify(resource))));
    }
  });

  it('gives the state machines the export integration: ExportTableToPointInTime on both tables, DescribeExport below them, PutObject under runs/', () => {
    for (const machine of ['syncRun', 'validationRun'] as const) {
      const granted = statementsOf(template(), machineRole(machine));
      expect(resourcesAllowed(granted, 'dynamodb:ExportTableToPointInTime')).toEqual([paymentsArn(), usersArn()]);
      expect(resourcesAllowed(granted, 'dynamodb:DescribeExport')).toEqual([joined(paymentsArn(), '/export/*'), joined(usersArn(), '/export/*')]);
      expect(resourcesAllowed(granted, 's3:PutObject')).toEqual([runFilesArn()]);
      // And no other table or bucket access: no item reads or writes, no reading run files.
      const dataActions = actionsOf(granted).filter((action) => /^(dynamodb|s3):/i.test(action));
      expect(dataActions.map((action) => action.toLowerCase()).sort()).toEqual(
        ['dynamodb:exporttabletopointintime', 'dynamodb:describeexport', 's3:putobject', 's3:putobjectacl', 's3:abortmultipartupload'].sort(),
      );
    }
  });

  it('gives the health function describe calls, point-in-time recovery status, run record reads, queue attributes and metric reads', () => {
    expect(actions(entryPoints().health)).toEqual(
      [...LOGS, 'cloudwatch:GetMetricStatistics', 'dynamodb:DescribeContinuousBackups', 'dynamodb:DescribeTable', 'dynamodb:GetItem', 'sqs:GetQueueAttributes'].sort(),
    );
    expect(resourcesAllowed(statements(entryPoints().health), 'dynamodb:GetItem')).toEqual([arnOf(reconciliation().runTable)]);
    expect(resourcesAllowed(statements(entryPoints().health), 'dynamodb:DescribeContinuousBackups')).toEqual([paymentsArn(), usersArn()]);
  });

  it('attaches no managed policy to any role (no AWSLambdaBasicExecutionRole logs:* on *)', () => {
    template().allResourcesProperties('AWS::IAM::Role', { ManagedPolicyArns: Match.absent() });
  });
});

describe('snapshot mode (create mode)', () => {
  it('is export: SNAPSHOT_MODE=export in every task function (and health, which then requires PITR), and point-in-time recovery on both created tables', () => {
    for (const [name, fn] of Object.entries({ ...tasks(), health: entryPoints().health })) {
      expect([name, resources()[logicalId(fn.function)].Properties.Environment.Variables.SNAPSHOT_MODE]).toEqual([name, 'export']);
    }
    for (const table of [stack().tables.payments, stack().tables.users]) {
      expect(resources()[logicalId(table)].Properties.PointInTimeRecoverySpecification).toEqual({ PointInTimeRecoveryEnabled: true });
    }
  });
});

describe('schedules (EventBridge Scheduler)', () => {
  const schedules = () => Object.values(template().findResources('AWS::Scheduler::Schedule'));
  const targeting = (fn: SyncFunction) => schedules().filter((schedule) => same(arnOf(fn.function))(schedule.Properties.Target.Arn));

  it.each([
    ['hourly sync', 'sync', 'cron(0 * * * ? *)', undefined],
    ['weekly full fix', 'sync', 'cron(0 3 ? * SUN *)', { scheduled: 'weekly-fix' }],
    ['daily validation', 'validate', 'cron(30 2 * * ? *)', undefined],
    ['health', 'health', 'rate(15 minutes)', undefined],
  ] as const)('runs the %s: the %s function on %s in Asia/Jakarta, with its input', (_what, name, expression, input) => {
    const fn = entryPoints()[name];
    const matching = targeting(fn).filter((schedule) => schedule.Properties.ScheduleExpression === expression);
    expect(matching).toHaveLength(1);
    const { Properties: properties } = matching[0]!;
    expect(properties).toMatchObject({ ScheduleExpressionTimezone: 'Asia/Jakarta', State: 'ENABLED', FlexibleTimeWindow: { Mode: 'OFF' } });
    expect(properties.Target.RetryPolicy).toEqual({ MaximumRetryAttempts: 2, MaximumEventAgeInSeconds: 3600 });
    if (input === undefined) {
      // Scheduler's own notification, which the handler reads as a schedule.
      expect(properties.Target.Input).toBeUndefined();
    } else {
      expect(JSON.parse(properties.Target.Input as string)).toEqual(input);
      expect(ScheduleInputSchema.safeParse(input).success).toBe(true);
    }
    const role = (properties.Target.RoleArn as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
    const granted = statementsOf(template(), role);
    expect(actionsOf(granted)).toEqual(['lambda:InvokeFunction']);
    expect(resourcesAllowed(granted, 'lambda:InvokeFunction')).toEqual([arnOf(fn.function), joined(arnOf(fn.function), ':*')]);
    template().hasResourceProperties('AWS::Lambda::EventInvokeConfig', { FunctionName: { Ref: logicalId(fn.function) }, MaximumRetryAttempts: 0 });
  });

  it('has exactly the four schedules, none on a task function', () => {
    template().resourceCountIs('AWS::Scheduler::Schedule', 4);
    expect(targeting(entryPoints().sync)).toHaveLength(2);
    for (const name of TASK_NAMES) expect(targeting(tasks()[name])).toEqual([]);
  });
});

describe('alarms', () => {
  const alarms = () => template().findResources('AWS::CloudWatch::Alarm');

  it('sends every alarm, and its recovery, to the encrypted alarm topic', () => {
    const topic = logicalId(stack().monitoring.topic);
    expect(Object.keys(alarms())).toHaveLength(13);
    for (const alarm of Object.values(alarms())) {
      expect(alarm.Properties.AlarmActions).toEqual([{ Ref: topic }]);
      expect(alarm.Properties.OKActions).toEqual([{ Ref: topic }]);
    }
    template().hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: { 'Fn::GetAtt': [Match.anyValue(), 'Arn'] } });
    template().hasResourceProperties('AWS::KMS::Key', {
      EnableKeyRotation: true,
      KeyPolicy: {
        Statement: Match.arrayWith([
          Match.objectLike({ Principal: { Service: 'cloudwatch.amazonaws.com' }, Action: ['kms:Decrypt', 'kms:GenerateDataKey*'] }),
        ]),
      },
    });
    template().resourceCountIs('AWS::SNS::Subscription', 0);
  });

  it('watches the stream: errors, iterator age and the failure queue', () => {
    const stream = { Ref: logicalId(entryPoints().stream.function) };
    template().hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/Lambda',
      MetricName: 'Errors',
      Dimensions: [{ Name: 'FunctionName', Value: stream }],
      Threshold: 1,
    });
    template().hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'IteratorAge',
      Statistic: 'Maximum',
      Dimensions: [{ Name: 'FunctionName', Value: stream }],
      Threshold: 5 * 60_000,
    });
    template().hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [logicalId(stack().realtime.failureQueue), 'QueueName'] } }],
      Threshold: 1,
    });
  });

  it('alarms on errors of the sync, validate and health functions', () => {
    for (const fn of [entryPoints().sync, entryPoints().validate, entryPoints().health]) {
      template().hasResourceProperties('AWS::CloudWatch::Alarm', {
        MetricName: 'Errors',
        Dimensions: [{ Name: 'FunctionName', Value: { Ref: logicalId(fn.function) } }],
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        Threshold: 1,
      });
    }
  });

  it('alarms on every failed execution of either run state machine', () => {
    for (const machine of [reconciliation().syncRun, reconciliation().validationRun]) {
      template().hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: 'AWS/States',
        MetricName: 'ExecutionsFailed',
        Dimensions: [{ Name: 'StateMachineArn', Value: { Ref: logicalId(machine) } }],
        Statistic: 'Sum',
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        Threshold: 1,
      });
    }
  });

  it('fires when no scheduled sync completed within two sync periods, missing data included', () => {
    template().hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'PaymentSync',
      MetricName: 'RunCompleted',
      Dimensions: Match.arrayEquals([
        { Name: 'mode', Value: 'cron-sync' },
        { Name: 'service', Value: 'payment-sync' },
      ]),
      Statistic: 'Sum',
      Period: 3600,
      EvaluationPeriods: 2,
      ComparisonOperator: 'LessThanThreshold',
      Threshold: 1,
      TreatMissingData: 'breaching',
    });
  });

  it('fires when full runs find more issues of the watched kinds than the threshold', () => {
    const expression = new Capture();
    template().hasResourceProperties('AWS::CloudWatch::Alarm', {
      ComparisonOperator: 'GreaterThanThreshold',
      Threshold: 10,
      Metrics: Match.arrayWith([
        Match.objectLike({ Expression: expression, ReturnData: true }),
        ...['missing', 'duplicate'].map((kind) =>
          Match.objectLike({
            MetricStat: {
              Metric: {
                Namespace: 'PaymentSync',
                MetricName: 'IssuesFound',
                Dimensions: Match.arrayEquals([
                  { Name: 'kind', Value: kind },
                  { Name: 'service', Value: 'payment-sync' },
                ]),
              },
              Period: 3600,
              Stat: 'Sum',
            },
          }),
        ),
      ]),
    });
    expect(expression.asString()).toBe('SUM([k0, k1])');
  });

  it('fires on capped and held runs and on an unhealthy (or silent) health check', () => {
    for (const metric of ['RunCapped', 'RunHeld']) {
      template().hasResourceProperties('AWS::CloudWatch::Alarm', { Namespace: 'PaymentSync', MetricName: metric, Threshold: 1 });
    }
    template().hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'PaymentSync',
      MetricName: 'HealthStatus',
      Statistic: 'Maximum',
      Period: 900,
      Threshold: 2,
      TreatMissingData: 'breaching',
    });
  });
});

describe('dashboard', () => {
  it('shows the product metrics: grants, revocations, issues by kind, run durations, lag', () => {
    const body = new Capture();
    template().hasResourceProperties('AWS::CloudWatch::Dashboard', { DashboardBody: { 'Fn::Join': ['', body] } });
    // The body is JSON with references spliced in; stand a placeholder in for each of them.
    const parts = body.asArray().map((part) => (typeof part === 'string' ? part : 'REF'));
    const widgets = (JSON.parse(parts.join('')) as { widgets: Array<{ properties: { metrics?: string[][] } }> }).widgets;
    const plotted = widgets.flatMap((widget) => widget.properties.metrics ?? []);
    const productMetrics = plotted.filter((metric) => metric[0] === 'PaymentSync').map((metric) => metric[1]);
    expect(new Set(productMetrics)).toEqual(
      new Set([
        ...Object.values(STREAM_METRICS),
        'RunCompleted',
        'RunCapped',
        'RunHeld',
        'RunFailed',
        'UsersFixed',
        'CoursesAdded',
        'CoursesRemoved',
        'DuplicatesRemoved',
        'RunDurationMs',
        'IssuesFound',
        'HealthStatus',
      ]),
    );
    const issueKinds = plotted.filter((metric) => metric[1] === 'IssuesFound').map((metric) => metric[3]);
    expect(issueKinds).toEqual([...ISSUE_KINDS]);
    expect(plotted.some((metric) => metric[0] === 'AWS/Lambda' && metric[1] === 'IteratorAge')).toBe(true);
  });
});

describe('outputs', () => {
  it('names what operators invoke, start and watch', () => {
    expect(Object.keys(template().findOutputs('*')).sort()).toEqual(
      [
        'AlarmTopicArn',
        'DashboardName',
        'FailureQueueUrl',
        'HealthFunctionName',
        'PaymentsTableName',
        'ReportsBucketName',
        'RunTableName',
        'StreamFunctionName',
        'SyncFunctionName',
        'SyncRunStateMachineArn',
        'UsersTableName',
        'ValidateFunctionName',
        'ValidationRunStateMachineArn',
      ].sort(),
    );
    template().hasOutput('SyncFunctionName', { Value: { Ref: logicalId(entryPoints().sync.function) } });
    template().hasOutput('ValidateFunctionName', { Value: { Ref: logicalId(entryPoints().validate.function) } });
    template().hasOutput('SyncRunStateMachineArn', { Value: { Ref: logicalId(reconciliation().syncRun) } });
    template().hasOutput('ValidationRunStateMachineArn', { Value: { Ref: logicalId(reconciliation().validationRun) } });
    template().hasOutput('ReportsBucketName', { Value: { Ref: logicalId(reconciliation().reports) } });
    template().hasOutput('RunTableName', { Value: { Ref: logicalId(reconciliation().runTable) } });
  });
});

describe('cdk-nag (AWS Solutions)', () => {
  it('reports no unacknowledged finding', () => {
    const report = new AwsSolutionsChecks().validateScope(synthesized.app);
    expect(report.violations.map((violation) => `${violation.ruleName} ${violation.violatingResources.map((r) => r.constructPath)}`)).toEqual([]);
  });

  it('acknowledges only the expected findings, each with its reason, written into the template', () => {
    type Acknowledged = { Metadata?: { cdk_nag?: { rules_to_suppress: Array<{ id: string; reason: string }> } } };
    const all = template().toJSON().Resources as Record<string, Acknowledged & { Type: string }>;
    const acknowledged = Object.values(all).flatMap((resource) => resource.Metadata?.cdk_nag?.rules_to_suppress ?? []);
    for (const { reason } of acknowledged) expect(reason.length).toBeGreaterThan(40);
    // A resource an acknowledgement names by logical id exists, and is named here by its kind.
    const kind: Record<string, string> = { 'AWS::Lambda::Function': '<function>', 'AWS::DynamoDB::Table': '<table>', 'AWS::S3::Bucket': '<bucket>' };
    const byKind = (id: string) =>
      id.replace(/<(\w+)\.Arn>/, (_, resource: string) => {
        const type = all[resource]?.Type;
        if (!type || !kind[type]) throw new Error(`${id} names ${resource}, which is not a resource of a known kind`);
        return kind[type];
      });
    // Written on every resource under the acknowledged construct (a role and its policy, say).
    expect(new Set(acknowledged.map(({ id }) => byKind(id)))).toEqual(
      new Set([
        'AwsSolutions-IAM5[Resource::*]', // stream role (dynamodb:ListStreams), health role (metric reads), state machine roles (X-Ray, log delivery)
        'AwsSolutions-IAM5[Resource::<function>:*]', // scheduler and state machine roles: invoke the function's versions
        'AwsSolutions-IAM5[Resource::<bucket>/runs/*]', // run files are named at run time, below runs/
        'AwsSolutions-IAM5[Resource::<table>/export/*]', // DescribeExport: export ids are DynamoDB's
        'AwsSolutions-S1', // no server access logs on the reports bucket
        'AwsSolutions-SQS3', // the failure queue is itself the dead end
      ]),
    );
  });

  it('fails the synth of the app when a finding is not acknowledged', () => {
    // No bundling (an empty list of stacks to bundle): cdk-nag reads the template, not the assets.
    const app = new App({ context: { ...CONTEXT, [BUNDLING_STACKS]: [] }, outdir: mkdtempSync(join(tmpdir(), 'payment-sync-cdk-')) });
    const built = addPaymentSync(app);
    new sqs.Queue(built, 'QueueWithoutSslPolicy');
    try {
      expect(() => app.synth()).toThrow(/AwsSolutions-SQS4/);
    } finally {
      rmSync(app.outdir, { recursive: true, force: true });
    }
  });
});
