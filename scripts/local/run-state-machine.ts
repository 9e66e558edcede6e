import { App, Stack } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { StateGraph } from 'aws-cdk-lib/aws-stepfunctions';
import { StateMachine, type StateMachineDefinition } from 'aws-local-stepfunctions';
import { EnvironmentError } from '../../lambdas/core/errors';
import type { FullRunResult } from '../../lambdas/core/jobs/full-run/finalize';
import { finalizeRun } from '../../lambdas/core/jobs/full-run/finalize';
import { planBucketTask, type PlanTaskInput } from '../../lambdas/core/jobs/full-run/plan-bucket';
import { runFolderKey, runLayout } from '../../lambdas/core/jobs/full-run/layout';
import { isSkipped, prepareRun } from '../../lambdas/core/jobs/full-run/prepare';
import { repairBatchTask, type RepairTaskInput } from '../../lambdas/core/jobs/full-run/repair-batch';
import { collectChanges, type CollectTaskInput } from '../../lambdas/core/jobs/full-run/collect-changes';
import { isReadOnlyMode, type RunRequest, type RunTaskContext, type SkippedRun } from '../../lambdas/core/jobs/full-run/run-request';
import { finishSnapshot, scanSegmentTurn, type ScanTurn, type SnapshotTaskInput } from '../../lambdas/core/jobs/full-run/snapshot-tasks';
import { RUN_STATES, runDefinition, type RunTaskFunctions } from '../../lib/constructs/run-definition';
import { describeTable } from '../../lambdas/core/store/table-checks';
import type { FailedStreamRecords } from '../../lambdas/core/stream-failures/failed-users';
import { LOCAL_REGION } from './embedded-dynamodb';
import { exportChanges, type ChangeLog } from './stream/change-log';

export type RunStage = 'snapshot' | 'plan' | 'repair';

/** Items done of an estimate, per stage, for a progress display. */
export interface RunProgress {
  readonly stage: RunStage;
  readonly done: number;
  /** DescribeTable's item counts for the snapshot (updated about every six hours), the snapshot's own afterwards. */
  readonly total: number;
  readonly unit: 'items' | 'users';
}

const LOCAL_ACCOUNT = '000000000000';

/**
 * The run's definition exactly as the stack synthesizes it (the same builder), with stand-in
 * ARNs: the local runner binds every Task to its handler by state name, so the ARNs are never
 * called. `writes: false` is the validation machine, which has no repair.
 */
export function renderRunDefinition(writes: boolean): StateMachineDefinition {
  const stack = new Stack(new App(), 'PaymentSyncLocalRun', { env: { account: LOCAL_ACCOUNT, region: LOCAL_REGION } });
  const fn = (name: string): lambda.IFunction => lambda.Function.fromFunctionArn(stack, name, `arn:aws:lambda:${LOCAL_REGION}:${LOCAL_ACCOUNT}:function:payment-sync-${name}`);
  const functions: RunTaskFunctions = {
    prepare: fn('prepare'),
    scanSegment: fn('scan-segment'),
    finishSnapshot: fn('finish-snapshot'),
    planBucket: fn('plan-bucket'),
    ...(writes ? { repairBatch: fn('repair-batch'), collectChanges: fn('collect-changes') } : {}),
    finalize: fn('finalize'),
  };
  const table = (name: string) => `arn:aws:dynamodb:${LOCAL_REGION}:${LOCAL_ACCOUNT}:table/${name}`;
  const chain = runDefinition(stack, { functions, exports: { bucketName: 'local-reports', paymentsTableArn: table('payments'), usersTableArn: table('users') } });
  return stack.resolve(new StateGraph(chain.startState, 'payment-sync run').toGraphJson()) as StateMachineDefinition;
}

const definitions = new Map<boolean, StateMachineDefinition>();
const definitionFor = (writes: boolean): StateMachineDefinition => {
  let definition = definitions.get(writes);
  if (!definition) definitions.set(writes, (definition = renderRunDefinition(writes)));
  return definition;
};

async function estimatedItems(ctx: RunTaskContext): Promise<number> {
  let total = 0;
  for (const table of [ctx.deps.config.paymentsTable, ctx.deps.config.usersTable]) total += (await describeTable(ctx.deps.client, table))?.ItemCount ?? 0;
  return total;
}

export interface LocalRunOptions {
  readonly onProgress?: (progress: RunProgress) => void;
  /** The capture of writes to both tables: with it, an hourly sync reads only what changed (from `changesSince`). */
  readonly changeLog?: ChangeLog;
  readonly changesSince?: number;
  /** The local stream's failure destination, read as the hourly sync reads the failure queue. */
  readonly streamFailures?: FailedStreamRecords;
  /** Called as each Task state starts, with its name and input: what a test counts (cursor turns) or breaks. */
  readonly onTask?: (state: string, input: unknown) => void | Promise<void>;
}

/** The local stand-in for an incremental export's ARN: the key of its manifest summary. */
const LOCAL_EXPORT_ARN = 'local-capture:';

/** What the state machine passes ExportTableToPointInTime for an incremental export (its Parameters). */
interface ExportRequest {
  readonly S3Prefix: string;
  readonly IncrementalExportSpecification: { readonly ExportFromTime: number; readonly ExportToTime: number };
}

/**
 * The local incremental export of one table, from the call's own parameters: the captured
 * writes of the window, written under the prefix in the layout DynamoDB's export writes, and
 * answered as ExportTableToPointInTime answers.
 */
async function exportCapturedChanges(ctx: RunTaskContext, changeLog: ChangeLog | undefined, request: ExportRequest, table: string): Promise<unknown> {
  if (!changeLog) throw new EnvironmentError('an hourly sync by changes needs the local capture of writes (the embedded default has it)');
  const { summaryKey } = await exportChanges(changeLog, ctx.storage, request.S3Prefix, {
    table,
    from: new Date(request.IncrementalExportSpecification.ExportFromTime * 1000),
    to: new Date(request.IncrementalExportSpecification.ExportToTime * 1000),
  });
  return { ExportDescription: { ExportArn: `${LOCAL_EXPORT_ARN}${summaryKey}` } };
}

/** A local export is complete as soon as it is written. */
function describeCapturedChanges(exportArn: string): unknown {
  return { ExportDescription: { ExportArn: exportArn, ExportStatus: 'COMPLETED', ExportManifest: exportArn.slice(LOCAL_EXPORT_ARN.length) } };
}

const exportIsRemote = (): never => {
  throw new EnvironmentError('SNAPSHOT_MODE=export runs on AWS only (DynamoDB exports to S3); locally the snapshot is a scan: unset SNAPSHOT_MODE');
};

/**
 * A full run on this machine through the state machine AWS runs: the synthesized definition
 * under aws-local-stepfunctions, every Task bound in-process to the task function its Lambda
 * handler calls, with the local folder as the run's storage and the local run table.
 */
export async function runStateMachineLocally(baseContext: RunTaskContext, request: RunRequest, options: LocalRunOptions = {}): Promise<FullRunResult | SkippedRun> {
  if (baseContext.deps.config.snapshotMode === 'export') exportIsRemote();
  const { changeLog } = options;
  const ctx: RunTaskContext = {
    ...baseContext,
    ...(changeLog ? { changeSource: 'local-capture' as const, changesSince: options.changesSince } : {}),
    ...(options.streamFailures ? { streamFailures: options.streamFailures } : {}),
  };
  const { onProgress } = options;
  const scanned = new Map<string, number>();
  const estimate = onProgress ? await estimatedItems(ctx) : 0;
  let planned = 0;
  let repaired = 0;
  let candidates = 0;
  const handlers: Record<string, (input: never) => Promise<unknown>> = {
    [RUN_STATES.prepare]: async (input: { run: unknown }) => {
      const prepared = await prepareRun(ctx, input);
      if (!isSkipped(prepared) && prepared.run.snapshotMode !== 'changes') onProgress?.({ stage: 'snapshot', done: 0, total: estimate, unit: 'items' });
      return prepared;
    },
    [RUN_STATES.scanSegment]: (input: ScanTurn) =>
      scanSegmentTurn(ctx, input, {
        onPage: (item, progress) => {
          scanned.set(`${item.table}/${item.segment}`, progress.items);
          onProgress?.({ stage: 'snapshot', done: [...scanned.values()].reduce((a, b) => a + b, 0), total: estimate, unit: 'items' });
        },
      }),
    [RUN_STATES.finishSnapshot]: async (input: SnapshotTaskInput) => {
      const snapshot = await finishSnapshot(ctx, input);
      onProgress?.({ stage: 'plan', done: 0, total: snapshot.items, unit: 'users' });
      return snapshot;
    },
    [RUN_STATES.planBucket]: async (input: PlanTaskInput) => {
      const plan = await planBucketTask(ctx, input);
      planned += plan.usersScanned;
      candidates += plan.candidates;
      onProgress?.({ stage: 'plan', done: planned, total: 0, unit: 'users' });
      return plan;
    },
    [RUN_STATES.repairBatch]: async (input: RepairTaskInput) => {
      if (repaired === 0) onProgress?.({ stage: 'repair', done: 0, total: candidates, unit: 'users' });
      const repair = await repairBatchTask(ctx, input);
      repaired += repair.users;
      onProgress?.({ stage: 'repair', done: repaired, total: candidates, unit: 'users' });
      return repair;
    },
    [RUN_STATES.finalize]: (input: Parameters<typeof finalizeRun>[1]) => finalizeRun(ctx, input),
    [RUN_STATES.collectChanges]: async (input: CollectTaskInput) => {
      const collected = await collectChanges(ctx, input);
      candidates += collected.reduce((sum, plan) => sum + plan.candidates, 0);
      return collected;
    },
    [RUN_STATES.startPaymentsChanges]: (input: ExportRequest) => exportCapturedChanges(ctx, changeLog, input, ctx.deps.config.paymentsTable),
    [RUN_STATES.startUsersChanges]: (input: ExportRequest) => exportCapturedChanges(ctx, changeLog, input, ctx.deps.config.usersTable),
    [RUN_STATES.describePaymentsChanges]: async (input: { ExportArn: string }) => describeCapturedChanges(input.ExportArn),
    [RUN_STATES.describeUsersChanges]: async (input: { ExportArn: string }) => describeCapturedChanges(input.ExportArn),
    [RUN_STATES.startPaymentsExport]: async () => exportIsRemote(),
    [RUN_STATES.startUsersExport]: async () => exportIsRemote(),
    [RUN_STATES.describePaymentsExport]: async () => exportIsRemote(),
    [RUN_STATES.describeUsersExport]: async () => exportIsRemote(),
  };
  const { onTask } = options;
  const bound = Object.fromEntries(
    Object.entries(handlers).map(([state, handler]) => [
      state,
      async (input: never) => {
        await onTask?.(state, input);
        return handler(input);
      },
    ]),
  );
  const machine = new StateMachine(definitionFor(!isReadOnlyMode(request.mode)), { validationOptions: { checkArn: false } });
  const execution = machine.run(
    { run: request },
    {
      overrides: {
        taskResourceLocalHandlers: bound as never,
        waitTimeOverrides: Object.fromEntries([RUN_STATES.waitPaymentsExport, RUN_STATES.waitUsersExport, RUN_STATES.waitPaymentsChanges, RUN_STATES.waitUsersChanges].map((state) => [state, 0])),
      },
    },
  );
  try {
    return (await execution.result) as unknown as FullRunResult | SkippedRun;
  } catch (error) {
    // A failed run has been finalized (its summary says why); the execution then ends in RunFailed.
    const summary = await ctx.storage.getText(runLayout(runFolderKey(ctx.storage, request.runId)).summary);
    if (summary) return JSON.parse(summary) as FullRunResult;
    throw error;
  }
}
