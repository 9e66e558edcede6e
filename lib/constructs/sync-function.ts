import * as path from 'node:path';
import { Duration, type RemovalPolicy, Stack, TimeZone, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as targets from 'aws-cdk-lib/aws-scheduler-targets';
import { Construct } from 'constructs';

const LAMBDAS_DIR = path.join(__dirname, '..', '..', 'lambdas');

export type HandlerName = 'stream' | 'sync' | 'validate' | 'health';

export interface SyncFunctionProps {
  /** Which of `lambdas/<name>/handler.ts` this function runs. */
  readonly handler: HandlerName;
  readonly description: string;
  readonly memorySize: number;
  readonly timeout: Duration;
  readonly environment: Record<string, string>;
  readonly logRetention: logs.RetentionDays;
  readonly logRemovalPolicy: RemovalPolicy;
}

/** What every function of a stack shares: the environment contract and log settings. */
export type SharedFunctionProps = Pick<SyncFunctionProps, 'environment' | 'logRetention' | 'logRemovalPolicy'>;

/**
 * One Lambda function of payment-sync with the project's defaults: Node 24 on ARM64,
 * esbuild bundling with source maps, its own log group and its own role, which starts
 * with nothing but writing to that log group; each concern adds exactly what it needs.
 */
export class SyncFunction extends Construct {
  readonly function: nodejs.NodejsFunction;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;
  private readonly handlerName: HandlerName;

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

    this.function = new nodejs.NodejsFunction(this, 'Function', {
      entry: path.join(LAMBDAS_DIR, props.handler, 'handler.ts'),
      handler: 'handler',
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      description: props.description,
      memorySize: props.memorySize,
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
      },
    });
  }

  /**
   * Runs the function on an EventBridge Scheduler schedule in a time zone. The target has
   * no input: the function receives Scheduler's own notification ("Scheduled Event").
   * Lambda is invoked asynchronously; a failed run is not retried, the next one heals.
   */
  addSchedule(id: string, props: { expression: string; timeZone: string; description: string }): scheduler.Schedule {
    this.function.configureAsyncInvoke({ retryAttempts: 0 });
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
      target: new targets.LambdaInvoke(this.function, { role, retryAttempts: 2, maxEventAge: Duration.hours(1) }),
    });
    Validations.of(role).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${stack.getLogicalId(this.function.node.defaultChild as lambda.CfnFunction)}.Arn>:*]`,
      reason: 'lambda:InvokeFunction on the function and its versions (ARN:*), as the Scheduler target grants it; one function only.',
    });
    return schedule;
  }
}
