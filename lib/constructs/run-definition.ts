import { Duration } from 'aws-cdk-lib';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import type { Construct } from 'constructs';
import { INCREMENTAL_FOLDER, SNAPSHOT_FOLDER } from '../../lambdas/core/jobs/full-run/layout';

/**
 * The names of the states that do work: the local runner binds each Task to its handler by
 * these names, so they are part of the definition's contract.
 */
export const RUN_STATES = {
  prepare: 'Prepare',
  scanSegment: 'ScanSegment',
  finishSnapshot: 'FinishSnapshot',
  planBucket: 'PlanBucket',
  repairBatch: 'RepairBatch',
  finalize: 'Finalize',
  startPaymentsExport: 'StartPaymentsExport',
  describePaymentsExport: 'DescribePaymentsExport',
  waitPaymentsExport: 'WaitPaymentsExport',
  startUsersExport: 'StartUsersExport',
  describeUsersExport: 'DescribeUsersExport',
  waitUsersExport: 'WaitUsersExport',
  startPaymentsChanges: 'StartPaymentsChangesExport',
  describePaymentsChanges: 'DescribePaymentsChangesExport',
  waitPaymentsChanges: 'WaitPaymentsChangesExport',
  startUsersChanges: 'StartUsersChangesExport',
  describeUsersChanges: 'DescribeUsersChangesExport',
  waitUsersChanges: 'WaitUsersChangesExport',
  collectChanges: 'CollectChanges',
} as const;

/** The Lambda functions behind the Task states; a validation definition has no repair. */
export interface RunTaskFunctions {
  readonly prepare: lambda.IFunction;
  readonly scanSegment: lambda.IFunction;
  readonly finishSnapshot: lambda.IFunction;
  readonly planBucket: lambda.IFunction;
  readonly repairBatch?: lambda.IFunction;
  /** The hourly sync's candidates from what changed (sync definition only, with repairBatch). */
  readonly collectChanges?: lambda.IFunction;
  readonly finalize: lambda.IFunction;
}

/** What the export mode needs: where the exports go and which tables (ARNs) they read. */
export interface ExportTargets {
  readonly bucketName: string;
  readonly paymentsTableArn: string;
  readonly usersTableArn: string;
}

export interface RunDefinitionProps {
  readonly functions: RunTaskFunctions;
  readonly exports: ExportTargets;
}

/** How long to wait between DescribeExport calls: exports take minutes. */
export const EXPORT_POLL = Duration.minutes(1);
/** A task's own time limit: Lambda's maximum. */
const TASK_TIMEOUT = Duration.minutes(15);

/**
 * Lambda tasks answer with the handler's result only (`payloadResponseOnly`), the same shape
 * a local handler returns; throttles and service errors are retried with backoff.
 */
function lambdaTask(scope: Construct, id: string, fn: lambda.IFunction, props: Partial<tasks.LambdaInvokeProps> = {}): tasks.LambdaInvoke {
  const task = new tasks.LambdaInvoke(scope, id, { lambdaFunction: fn, payloadResponseOnly: true, taskTimeout: sfn.Timeout.duration(TASK_TIMEOUT), ...props });
  task.addRetry({ errors: ['Lambda.TooManyRequestsException'], interval: Duration.seconds(2), maxAttempts: 6, backoffRate: 2, jitterStrategy: sfn.JitterType.FULL });
  return task;
}

type ExportKind = 'full' | 'changes';

const EXPORT_NAMES = {
  full: {
    payments: { start: RUN_STATES.startPaymentsExport, describe: RUN_STATES.describePaymentsExport, wait: RUN_STATES.waitPaymentsExport, done: 'PaymentsExported', failed: 'PaymentsExportFailed', check: 'PaymentsExportDone' },
    users: { start: RUN_STATES.startUsersExport, describe: RUN_STATES.describeUsersExport, wait: RUN_STATES.waitUsersExport, done: 'UsersExported', failed: 'UsersExportFailed', check: 'UsersExportDone' },
  },
  changes: {
    payments: { start: RUN_STATES.startPaymentsChanges, describe: RUN_STATES.describePaymentsChanges, wait: RUN_STATES.waitPaymentsChanges, done: 'PaymentsChangesExported', failed: 'PaymentsChangesExportFailed', check: 'PaymentsChangesExportDone' },
    users: { start: RUN_STATES.startUsersChanges, describe: RUN_STATES.describeUsersChanges, wait: RUN_STATES.waitUsersChanges, done: 'UsersChangesExported', failed: 'UsersChangesExportFailed', check: 'UsersChangesExportDone' },
  },
} as const;

/**
 * One table's export: start it, then wait and describe until it completes (or fails). A full
 * export is the table at one time; `changes` is an incremental export of the run's window (both
 * images of every item written in it: a payment moved between users names both).
 */
function exportBranch(scope: Construct, kind: ExportKind, table: 'payments' | 'users', tableArn: string, bucketName: string): sfn.IChainable {
  const names = EXPORT_NAMES[kind][table];
  const folder = kind === 'full' ? SNAPSHOT_FOLDER : INCREMENTAL_FOLDER;
  const start = new tasks.CallAwsService(scope, names.start, {
    service: 'dynamodb',
    action: 'exportTableToPointInTime',
    parameters: {
      TableArn: tableArn,
      S3Bucket: bucketName,
      // The run's folder (runs/<run id> in the bucket): the export lands next to the run's other files.
      S3Prefix: sfn.JsonPath.format(`{}/${folder}/${table}`, sfn.JsonPath.stringAt('$.run.folder')),
      ExportFormat: 'DYNAMODB_JSON',
      ...(kind === 'changes'
        ? {
            ExportType: 'INCREMENTAL_EXPORT',
            // Timestamps in seconds since the epoch, as the API's JSON protocol takes them.
            IncrementalExportSpecification: {
              ExportFromTime: sfn.JsonPath.numberAt('$.run.changes.fromSeconds'),
              ExportToTime: sfn.JsonPath.numberAt('$.run.changes.toSeconds'),
              ExportViewType: 'NEW_AND_OLD_IMAGES',
            },
          }
        : {}),
    },
    iamResources: [tableArn],
    resultSelector: { exportArn: sfn.JsonPath.stringAt('$.ExportDescription.ExportArn') },
    resultPath: '$.export',
  });
  // A refused start (throttled, too many exports at once) started nothing: trying again cannot double it.
  start.addRetry({ errors: ['DynamoDb.LimitExceededException', 'DynamoDb.ThrottlingException'], interval: Duration.seconds(30), maxAttempts: 5, backoffRate: 2, jitterStrategy: sfn.JitterType.FULL });
  const wait = new sfn.Wait(scope, names.wait, { time: sfn.WaitTime.duration(EXPORT_POLL) });
  const describe = new tasks.CallAwsService(scope, names.describe, {
    service: 'dynamodb',
    action: 'describeExport',
    parameters: { ExportArn: sfn.JsonPath.stringAt('$.export.exportArn') },
    iamResources: [`${tableArn}/export/*`],
    // The whole description: ExportManifest is there only once the export completed.
    resultSelector: { description: sfn.JsonPath.objectAt('$.ExportDescription') },
    resultPath: '$.described',
  });
  describe.addRetry({ errors: ['DynamoDb.ThrottlingException', 'DynamoDb.InternalServerErrorException'], interval: Duration.seconds(10), maxAttempts: 5, backoffRate: 2, jitterStrategy: sfn.JitterType.FULL });
  const done = new sfn.Pass(scope, names.done, {
    parameters: { exportArn: sfn.JsonPath.stringAt('$.export.exportArn'), manifest: sfn.JsonPath.stringAt('$.described.description.ExportManifest') },
  });
  const check = new sfn.Choice(scope, names.check)
    .when(sfn.Condition.stringEquals('$.described.description.ExportStatus', 'COMPLETED'), done)
    .when(sfn.Condition.stringEquals('$.described.description.ExportStatus', 'FAILED'), new sfn.Fail(scope, names.failed, { error: 'ExportFailed', cause: `the ${table} table's ${kind === 'full' ? '' : 'incremental '}export failed` }))
    .otherwise(wait);
  return start.next(wait).next(describe).next(check);
}

/**
 * A full run: prepare → snapshot (export, or scan segments that loop worker → cursor → worker)
 * → finish the snapshot → join and plan each bucket → repair each candidate file (sync runs) →
 * finalize. Every failure is caught and reaches finalize, which closes the run and releases the
 * lock. Map items stay small and inline (segments, bucket numbers, file keys), so this
 * definition also runs under aws-local-stepfunctions, which has no ItemReader or ItemBatcher.
 */
export function runDefinition(scope: Construct, props: RunDefinitionProps): sfn.IChainable {
  const { functions, exports: targets } = props;
  const finalize = lambdaTask(scope, RUN_STATES.finalize, functions.finalize);
  const finished = new sfn.Choice(scope, 'RunFailed?')
    .when(sfn.Condition.stringEquals('$.status', 'failed'), new sfn.Fail(scope, 'RunFailed', { error: 'RunFailed', causePath: '$.error' }))
    .otherwise(new sfn.Succeed(scope, 'RunFinished'));
  finalize.next(finished);
  const toFinalize = { resultPath: '$.error' };

  const prepare = lambdaTask(scope, RUN_STATES.prepare, functions.prepare);
  prepare.addCatch(finalize, toFinalize);

  const scanTurn = lambdaTask(scope, RUN_STATES.scanSegment, functions.scanSegment);
  scanTurn.next(new sfn.Choice(scope, 'SegmentDone?').when(sfn.Condition.booleanEquals('$.done', true), new sfn.Succeed(scope, 'SegmentScanned')).otherwise(scanTurn));
  const scan = new sfn.Map(scope, 'ScanSegments', {
    itemsPath: '$.scanItems',
    itemSelector: { run: sfn.JsonPath.objectAt('$.run'), item: sfn.JsonPath.objectAt('$$.Map.Item.Value') },
    resultPath: sfn.JsonPath.DISCARD,
  });
  scan.itemProcessor(scanTurn);
  scan.addCatch(finalize, toFinalize);

  /** Both tables exported at once; the result is `[payments, users]`, each `{ exportArn, status, manifest }`. */
  const exportBoth = (id: string, kind: ExportKind, resultPath: string): sfn.Parallel => {
    const both = new sfn.Parallel(scope, id, { resultPath });
    both.branch(exportBranch(scope, kind, 'payments', targets.paymentsTableArn, targets.bucketName));
    both.branch(exportBranch(scope, kind, 'users', targets.usersTableArn, targets.bucketName));
    both.addCatch(finalize, toFinalize);
    return both;
  };
  const exportTables = exportBoth('ExportTables', 'full', '$.exports');

  const finishSnapshot = lambdaTask(scope, RUN_STATES.finishSnapshot, functions.finishSnapshot, { resultPath: '$.snapshot' });
  finishSnapshot.addCatch(finalize, toFinalize);
  scan.next(finishSnapshot);
  exportTables.next(finishSnapshot);

  const join = new sfn.Map(scope, 'JoinBuckets', {
    itemsPath: '$.bucketItems',
    itemSelector: { run: sfn.JsonPath.objectAt('$.run'), snapshot: sfn.JsonPath.objectAt('$.snapshot'), bucket: sfn.JsonPath.numberAt('$$.Map.Item.Value') },
    maxConcurrencyPath: '$.run.joinConcurrency',
    resultPath: '$.plans',
  });
  join.itemProcessor(lambdaTask(scope, RUN_STATES.planBucket, functions.planBucket));
  join.addCatch(finalize, toFinalize);
  finishSnapshot.next(join);

  let changesPath: sfn.IChainable | undefined;
  if (functions.repairBatch) {
    // Buckets one after the other, each bucket's files at the run's repair concurrency.
    const repairFiles = new sfn.Map(scope, 'RepairFiles', {
      itemsPath: '$.candidateKeys',
      itemSelector: { run: sfn.JsonPath.objectAt('$.run'), candidateKey: sfn.JsonPath.stringAt('$$.Map.Item.Value') },
      maxConcurrencyPath: '$.run.repairConcurrency',
    });
    repairFiles.itemProcessor(lambdaTask(scope, RUN_STATES.repairBatch, functions.repairBatch));
    const repair = new sfn.Map(scope, 'RepairBuckets', {
      itemsPath: '$.plans',
      itemSelector: { run: sfn.JsonPath.objectAt('$.run'), candidateKeys: sfn.JsonPath.listAt('$$.Map.Item.Value.candidateKeys') },
      maxConcurrency: 1,
      resultPath: sfn.JsonPath.DISCARD,
    });
    repair.itemProcessor(repairFiles);
    repair.addCatch(finalize, toFinalize);
    repair.next(finalize);
    join.next(new sfn.Choice(scope, 'Writes?').when(sfn.Condition.booleanEquals('$.run.writes', true), repair).otherwise(finalize));

    if (functions.collectChanges) {
      // The hourly sync: what changed in both tables since the last completed sync, its users
      // confirmed through the repair (report-only while a hold is in force).
      const exportChanges = exportBoth('ExportChanges', 'changes', '$.changes');
      const collect = lambdaTask(scope, RUN_STATES.collectChanges, functions.collectChanges, { resultPath: '$.plans' });
      collect.addCatch(finalize, toFinalize);
      exportChanges.next(collect);
      collect.next(repair);
      changesPath = exportChanges;
    }
  } else {
    join.next(finalize);
  }

  const snapshot = new sfn.Choice(scope, 'SnapshotMode?').when(sfn.Condition.stringEquals('$.run.snapshotMode', 'export'), exportTables);
  if (changesPath) snapshot.when(sfn.Condition.stringEquals('$.run.snapshotMode', 'changes'), changesPath);
  snapshot.otherwise(scan);
  const started = new sfn.Choice(scope, 'Skipped?').when(sfn.Condition.isPresent('$.skipped'), new sfn.Succeed(scope, 'RunSkipped')).otherwise(snapshot);
  return prepare.next(started);
}
