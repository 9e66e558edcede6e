import { type CfnResource, Duration, type RemovalPolicy, Size, Stack, Validations } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { MAX_RUN_HOURS } from '../../lambdas/core/runs/run-records';
import { RUNS_PREFIX } from '../../lambdas/core/storage/s3-storage';
import { runTaskEnvironment, type DeployConfig, type RunResources } from '../config';
import type { PaymentTables } from './payment-tables';
import { runDefinition, type RunTaskFunctions } from './run-definition';
import { SyncFunction, type HandlerName, type SharedFunctionProps } from './sync-function';

/** The join task holds one bucket in DuckDB; 60% of this goes to the join (JOIN_MEMORY_MB). */
const JOIN_MEMORY_MB = 3008;

export interface ReconciliationProps {
  readonly config: DeployConfig;
  readonly tables: PaymentTables;
  readonly functionDefaults: SharedFunctionProps;
  readonly removalPolicy: RemovalPolicy;
  /** The stream's failure queue: the hourly sync reads (never deletes) its messages for candidates. */
  readonly failureQueue: sqs.IQueue;
}

/** The run table's items are keyed `pk` (run#id, lock, hold, last#mode); old runs expire by TTL. */
const RUN_TABLE_KEY = 'pk';
const RUN_TABLE_TTL = 'expiresAt';
/** Every run's files: below the runs prefix of the reports bucket. */
const RUN_FILES = `${RUNS_PREFIX}/*`;

/**
 * Full reconciliation, the safety net under the stream, on AWS Step Functions: the sync and
 * validate functions are the entry points (schedules and manual invokes) that look at the hold
 * and the lock and start a run; the state machines do the work with one function per task,
 * each with only its own grants. The validation machine has no repair step, and none of its
 * functions may write users.
 */
export class Reconciliation extends Construct {
  readonly sync: SyncFunction;
  readonly validate: SyncFunction;
  readonly tasks: Required<{ [K in keyof RunTaskFunctions]: SyncFunction }>;
  readonly runTable: dynamodb.Table;
  readonly reports: s3.Bucket;
  readonly syncRun: sfn.StateMachine;
  readonly validationRun: sfn.StateMachine;

  constructor(scope: Construct, id: string, props: ReconciliationProps) {
    super(scope, id);
    const { config, tables, functionDefaults, removalPolicy } = props;

    this.runTable = new dynamodb.Table(this, 'RunTable', {
      partitionKey: { name: RUN_TABLE_KEY, type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      timeToLiveAttribute: RUN_TABLE_TTL,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      removalPolicy,
    });
    this.reports = new s3.Bucket(this, 'Reports', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [
        { id: 'ExpireRuns', prefix: `${RUNS_PREFIX}/`, expiration: Duration.days(config.reports.retentionDays), abortIncompleteMultipartUploadAfter: Duration.days(1) },
      ],
      removalPolicy,
      autoDeleteObjects: false,
    });
    Validations.of(this.reports).acknowledge({
      id: 'AwsSolutions-S1',
      reason: 'Server access logs would log every task\'s reads and writes of run files; each run is recorded in the run table and the functions\' logs.',
    });
    const resources: RunResources = { runsTable: this.runTable.tableName, reportsBucket: this.reports.bucketName };

    const task = (handler: HandlerName, description: string, sizing: { memorySize: number; timeout?: Duration; duckDb?: boolean; environment?: Record<string, string> }): SyncFunction =>
      new SyncFunction(this, `${handler.replace('run/', '').replace(/(^|-)(\w)/g, (_, _dash, c: string) => c.toUpperCase())}Task`, {
        ...functionDefaults,
        handler,
        description: `payment-sync run task: ${description}`,
        memorySize: sizing.memorySize,
        timeout: sizing.timeout ?? Duration.minutes(15),
        environment: { ...runTaskEnvironment(config, tables.names, resources, sizing.duckDb ? sizing.memorySize : undefined), ...sizing.environment },
        ...(sizing.duckDb ? { usesDuckDb: true, ephemeralStorageSize: Size.gibibytes(4) } : {}),
      });
    this.tasks = {
      prepare: task('run/prepare', 'lock, hold, run record, backup before a migration', { memorySize: 256, timeout: Duration.minutes(5) }),
      scanSegment: task('run/scan-segment', 'one turn of a scan worker into the export layout', { memorySize: 1024 }),
      finishSnapshot: task('run/finish-snapshot', 'the snapshot manifests', { memorySize: 512, timeout: Duration.minutes(5) }),
      planBucket: task('run/plan-bucket', 'join and plan one bucket in DuckDB', { memorySize: JOIN_MEMORY_MB, duckDb: true }),
      collectChanges: task('run/collect-changes', 'the hourly sync\'s candidates from what changed', { memorySize: 1024, environment: { FAILURE_QUEUE_URL: props.failureQueue.queueUrl } }),
      repairBatch: task('run/repair-batch', 'confirm and repair one candidate file (writes users)', { memorySize: 512 }),
      finalize: task('run/finalize', 'report, summary, run record, hold, lock', { memorySize: 1024 }),
    };
    const { prepare, scanSegment, finishSnapshot, planBucket, collectChanges, repairBatch, finalize } = this.tasks;
    const runTable = (grantee: SyncFunction, sid: string, actions: string[]): void => {
      grantee.role.addToPrincipalPolicy(new iam.PolicyStatement({ sid, actions, resources: [this.runTable.tableArn] }));
    };
    runTable(prepare, 'RunLockAndRecord', ['dynamodb:GetItem', 'dynamodb:PutItem']);
    tables.grantUsersBackup(prepare.role);
    this.grantRunFiles(prepare.role, ['s3:PutObject']);
    tables.grantSnapshotScan(scanSegment.role);
    this.grantRunFiles(scanSegment.role, ['s3:GetObject', 's3:PutObject']);
    this.grantRunFiles(finishSnapshot.role, ['s3:GetObject', 's3:PutObject']);
    this.grantRunFiles(planBucket.role, ['s3:GetObject', 's3:PutObject']);
    this.grantRunFiles(collectChanges.role, ['s3:GetObject', 's3:PutObject']);
    // The failure queue's messages name stream records: received (hidden for the run), never deleted, then read from the stream.
    collectChanges.role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'ReadFailureQueue', actions: ['sqs:ReceiveMessage'], resources: [props.failureQueue.queueArn] }));
    if (tables.payments.tableStreamArn) {
      collectChanges.role.addToPrincipalPolicy(
        new iam.PolicyStatement({ sid: 'ReadFailedStreamRecords', actions: ['dynamodb:GetShardIterator', 'dynamodb:GetRecords'], resources: [tables.payments.tableStreamArn] }),
      );
    }
    tables.grantPerUserRead(repairBatch.role);
    tables.grantUserCoursesUpdate(repairBatch.role);
    runTable(repairBatch, 'RunUsage', ['dynamodb:GetItem', 'dynamodb:UpdateItem']);
    this.grantRunFiles(repairBatch.role, ['s3:GetObject', 's3:PutObject']);
    runTable(finalize, 'RunCloseAndUnlock', ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:DeleteItem']);
    this.grantRunFiles(finalize.role, ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'], true);
    const exports = { bucketName: this.reports.bucketName, paymentsTableArn: tables.payments.tableArn, usersTableArn: tables.users.tableArn };
    const machine = (machineId: string, functions: RunTaskFunctions, comment: string): sfn.StateMachine => {
      const logGroup = new logs.LogGroup(this, `${machineId}Logs`, { retention: config.logging.retentionDays, removalPolicy });
      const stateMachine = new sfn.StateMachine(this, machineId, {
        stateMachineType: sfn.StateMachineType.STANDARD,
        definitionBody: sfn.DefinitionBody.fromChainable(runDefinition(new Construct(this, `${machineId}Definition`), { functions: functions, exports })),
        comment,
        timeout: Duration.hours(MAX_RUN_HOURS),
        tracingEnabled: true,
        logs: { destination: logGroup, level: sfn.LogLevel.ALL, includeExecutionData: false },
      });
      const logicalId = (construct: Construct): string => Stack.of(this).getLogicalId(construct.node.defaultChild as CfnResource);
      const acknowledge = (resource: string, reason: string) => Validations.of(stateMachine.role).acknowledge({ id: `AwsSolutions-IAM5[Resource::${resource}]`, reason });
      acknowledge('*', 'X-Ray tracing and the execution log delivery (logs:CreateLogDelivery and friends) support no resource-level permissions.');
      for (const fn of Object.values(functions)) acknowledge(`<${logicalId(fn)}.Arn>:*`, 'lambda:InvokeFunction on the task function and its versions (ARN:*), as LambdaInvoke grants it; one function per statement.');
      for (const table of [tables.payments, tables.users]) {
        // A created table's ARN is a reference to it; an imported one's is spelt out.
        const tableArn = table.node.defaultChild ? `<${logicalId(table)}.Arn>` : `arn:<AWS::Partition>:dynamodb:${Stack.of(this).region}:${Stack.of(this).account}:table/${table.tableName}`;
        acknowledge(`${tableArn}/export/*`, 'DescribeExport names an export by an id DynamoDB picks at run time, below the table the run exports.');
      }
      return stateMachine;
    };
    const fn = (construct: SyncFunction) => construct.function;
    this.syncRun = machine('SyncRun', { prepare: fn(prepare), scanSegment: fn(scanSegment), finishSnapshot: fn(finishSnapshot), planBucket: fn(planBucket), collectChanges: fn(collectChanges), repairBatch: fn(repairBatch), finalize: fn(finalize) }, 'payment-sync: a sync run (fix, migrate, hourly and weekly schedules)');
    this.validationRun = machine('ValidationRun', { prepare: fn(prepare), scanSegment: fn(scanSegment), finishSnapshot: fn(finishSnapshot), planBucket: fn(planBucket), finalize: fn(finalize) }, 'payment-sync: a full validation run (read-only: no repair step)');
    // The export writes into the bucket with the state machine's role.
    for (const stateMachine of [this.syncRun, this.validationRun]) {
      this.grantRunFiles(stateMachine.role, ['s3:PutObject', 's3:PutObjectAcl', 's3:AbortMultipartUpload']);
    }

    const entryEnvironment = {
      ...functionDefaults.environment,
      RUNS_TABLE: this.runTable.tableName,
      REPORTS_BUCKET: this.reports.bucketName,
    };
    this.sync = new SyncFunction(this, 'SyncFunction', {
      ...functionDefaults,
      environment: { ...entryEnvironment, SYNC_STATE_MACHINE_ARN: this.syncRun.stateMachineArn },
      handler: 'sync',
      memorySize: 512,
      timeout: Duration.minutes(15),
      description: 'payment-sync: starts sync runs (schedules and by hand), per-user fixes, undo, releasing the hold',
    });
    tables.grantPerUserRead(this.sync.role);
    tables.grantUserCoursesUpdate(this.sync.role);
    this.syncRun.grantStartExecution(this.sync.role);
    runTable(this.sync, 'ReadLockReleaseHold', ['dynamodb:GetItem', 'dynamodb:DeleteItem']);
    this.grantRunFiles(this.sync.role, ['s3:GetObject', 's3:PutObject']);
    this.sync.addSchedule('Schedule', {
      expression: config.schedules.sync,
      timeZone: config.schedules.timeZone,
      description: 'payment-sync: hourly sync run (repairs drift the stream missed; capped, held after a cap)',
    });
    this.sync.addSchedule('FullFixSchedule', {
      expression: config.schedules.fullFix,
      timeZone: config.schedules.timeZone,
      description: 'payment-sync: weekly full fix run (capped, held after a cap)',
      input: { scheduled: 'weekly-fix' },
    });

    // Read-only by its role: it may start the validation machine only, and write no table.
    this.validate = new SyncFunction(this, 'ValidateFunction', {
      ...functionDefaults,
      environment: { ...entryEnvironment, VALIDATION_STATE_MACHINE_ARN: this.validationRun.stateMachineArn },
      handler: 'validate',
      memorySize: 512,
      timeout: Duration.minutes(15),
      description: 'payment-sync: starts validation runs (schedule and by hand) and per-user checks (read-only)',
    });
    tables.grantPerUserRead(this.validate.role);
    this.validationRun.grantStartExecution(this.validate.role);
    runTable(this.validate, 'ReadLock', ['dynamodb:GetItem']);
    this.validate.addSchedule('Schedule', {
      expression: config.schedules.validate,
      timeZone: config.schedules.timeZone,
      description: 'payment-sync: daily validation run (read-only report)',
    });
  }

  /**
   * Object actions on the run folders (`runs/*`) only, and with `list`, ListBucket under that
   * prefix: each role gets the actions its task performs on run files, none on anything else.
   */
  private grantRunFiles(role: iam.IRole, actions: string[], list = false): void {
    role.addToPrincipalPolicy(new iam.PolicyStatement({ sid: 'RunFiles', actions, resources: [this.reports.arnForObjects(RUN_FILES)] }));
    const statements = [] as iam.PolicyStatement[];
    if (list || actions.includes('s3:GetObject')) {
      // Listing answers "not found" for a missing object instead of "access denied", and finalize lists parts.
      statements.push(new iam.PolicyStatement({ sid: 'ListRunFiles', actions: ['s3:ListBucket'], resources: [this.reports.bucketArn], conditions: { StringLike: { 's3:prefix': [RUN_FILES] } } }));
    }
    for (const statement of statements) role.addToPrincipalPolicy(statement);
    Validations.of(role).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${Stack.of(this).getLogicalId(this.reports.node.defaultChild as s3.CfnBucket)}.Arn>/${RUN_FILES}]`,
      reason: 'Run files are named by run id and stage at run time (runs/<run id>/...): the grant covers the runs/ prefix of the stack\'s own reports bucket, with only the object actions this role performs.',
    });
  }
}
