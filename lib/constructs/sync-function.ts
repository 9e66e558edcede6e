import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { Duration, type RemovalPolicy, type Size, Stack, TimeZone, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as targets from 'aws-cdk-lib/aws-scheduler-targets';
import { Construct } from 'constructs';

const PROJECT_ROOT = path.join(__dirname, '..', '..');
const LAMBDAS_DIR = path.join(PROJECT_ROOT, 'lambdas');

/**
 * DuckDB's native binding and the architecture it is built for, decided together here.
 * `@duckdb/node-bindings` loads a per-platform package that npm installs for the host only
 * (an optional dependency per OS and CPU); this project's node_modules holds the linux-x64
 * (glibc) one, so the functions that ship DuckDB run on x86_64. To move them to ARM64, install
 * `@duckdb/node-bindings-linux-arm64` and change both fields.
 */
export const DUCKDB_BINDING = { package: '@duckdb/node-bindings-linux-x64', architecture: lambda.Architecture.X86_64 } as const;

/**
 * What `@duckdb/node-api` loads at run time (from the packages' package.json): the API, the
 * bindings loader, its platform binding (duckdb.node and libduckdb.so) and detect-libc.
 */
const DUCKDB_RUNTIME_PACKAGES = ['@duckdb/node-api', '@duckdb/node-bindings', DUCKDB_BINDING.package, 'detect-libc'];

/** `lambdas/<name>/handler.ts`, or a state machine task's `lambdas/run/<task>.ts`. */
export type HandlerName = 'stream' | 'sync' | 'validate' | 'health' | `run/${'prepare' | 'scan-segment' | 'finish-snapshot' | 'plan-bucket' | 'collect-changes' | 'repair-batch' | 'finalize'}`;

export interface SyncFunctionProps {
  /** Which of `lambdas/<name>/handler.ts` this function runs. */
  readonly handler: HandlerName;
  readonly description: string;
  readonly memorySize: number;
  readonly timeout: Duration;
  /** /tmp; Lambda's default (512 MiB) when absent. */
  readonly ephemeralStorageSize?: Size;
  /**
   * The handler imports DuckDB: it stays out of the esbuild bundle and its packages are copied
   * next to it from node_modules, and the function runs on the binding's architecture.
   */
  readonly usesDuckDb?: boolean;
  readonly environment: Record<string, string>;
  readonly logRetention: logs.RetentionDays;
  readonly logRemovalPolicy: RemovalPolicy;
}

/** What every function of a stack shares: the environment contract and log settings. */
export type SharedFunctionProps = Pick<SyncFunctionProps, 'environment' | 'logRetention' | 'logRemovalPolicy'>;

/**
 * A native module cannot go into the bundle: DuckDB stays external and its runtime packages
 * are copied as they are from the project's node_modules (never installed: synth is offline).
 */
const duckDbBundling: Pick<nodejs.BundlingOptions, 'externalModules' | 'commandHooks'> = {
  externalModules: ['@duckdb/node-api'],
  commandHooks: {
    beforeBundling: () => [],
    beforeInstall: () => [],
    afterBundling: (inputDir, outputDir) => [
      `mkdir -p "${outputDir}/node_modules/@duckdb"`,
      ...DUCKDB_RUNTIME_PACKAGES.map((name) => `cp -R "${inputDir}/node_modules/${name}" "${outputDir}/node_modules/${name}"`),
    ],
  },
};

/** Fails the synth with the reason, not with a failed `cp` inside the bundling step. */
function assertInstalled(packages: readonly string[]): void {
  const missing = packages.filter((name) => !existsSync(path.join(PROJECT_ROOT, 'node_modules', name, 'package.json')));
  if (missing.length > 0) {
    throw new Error(`DuckDB functions ship packages from node_modules, which lacks ${missing.join(', ')}: run npm ci on a linux-x64 host (see DUCKDB_BINDING)`);
  }
}

/**
 * One Lambda function of payment-sync with the project's defaults: Node 24 on ARM64 (on
 * DuckDB's binding's architecture for the functions that use it), esbuild bundling with
 * source maps, its own log group and its own role, which starts with nothing but writing to
 * that log group; each concern adds exactly what it needs.
 */
export class SyncFunction extends Construct {
  readonly function: nodejs.NodejsFunction;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;
  private readonly handlerName: HandlerName;
  private scheduled = false;

  constructor(scope: Construct, id: string, props: SyncFunctionProps) {
    super(scope, id);
    this.handlerName = props.handler;
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `payment-sync ${props.handler} function`,
    });
    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention,
      removalPolicy: props.logRemovalPolicy,
    });
    // Instead of AWSLambdaBasicExecutionRole (logs:* on every group): this group only.
    this.logGroup.grantWrite(this.role);

    if (props.usesDuckDb) assertInstalled(DUCKDB_RUNTIME_PACKAGES);
    this.function = new nodejs.NodejsFunction(this, 'Function', {
      entry: props.handler.startsWith('run/') ? path.join(LAMBDAS_DIR, `${props.handler}.ts`) : path.join(LAMBDAS_DIR, props.handler, 'handler.ts'),
      handler: 'handler',
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: props.usesDuckDb ? DUCKDB_BINDING.architecture : lambda.Architecture.ARM_64,
      description: props.description,
      memorySize: props.memorySize,
      ephemeralStorageSize: props.ephemeralStorageSize,
      timeout: props.timeout,
      role: this.role,
      logGroup: this.logGroup,
      environment: {
        ...props.environment,
        // Stack traces point at the TypeScript sources through the bundled source maps.
        NODE_OPTIONS: '--enable-source-maps',
      },
      bundling: {
        target: 'node24',
        minify: true,
        sourceMap: true,
        sourcesContent: false,
        // The SDK goes into the bundle, so production runs the version the tests ran.
        bundleAwsSDK: true,
        ...(props.usesDuckDb ? duckDbBundling : {}),
      },
    });
  }

  /**
   * Runs the function on an EventBridge Scheduler schedule in a time zone. Without `input` the
   * function receives Scheduler's own notification ("Scheduled Event"); with it, that object.
   * Lambda is invoked asynchronously; a failed run is not retried, the next one heals.
   */
  addSchedule(id: string, props: { expression: string; timeZone: string; description: string; input?: Record<string, unknown> }): scheduler.Schedule {
    if (!this.scheduled) this.function.configureAsyncInvoke({ retryAttempts: 0 });
    this.scheduled = true;
    const stack = Stack.of(this);
    const role = new iam.Role(this, `${id}Role`, {
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
      }),
      description: `EventBridge Scheduler: invokes the payment-sync ${this.handlerName} function`,
    });
    const schedule = new scheduler.Schedule(this, id, {
      description: props.description,
      schedule: scheduler.ScheduleExpression.expression(props.expression, TimeZone.of(props.timeZone)),
      target: new targets.LambdaInvoke(this.function, {
        role,
        retryAttempts: 2,
        maxEventAge: Duration.hours(1),
        ...(props.input ? { input: scheduler.ScheduleTargetInput.fromObject(props.input) } : {}),
      }),
    });
    Validations.of(role).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${stack.getLogicalId(this.function.node.defaultChild as lambda.CfnFunction)}.Arn>:*]`,
      reason: 'lambda:InvokeFunction on the function and its versions (ARN:*), as the Scheduler target grants it; one function only.',
    });
    return schedule;
  }
}
