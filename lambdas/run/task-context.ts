import { DynamoDBStreamsClient } from '@aws-sdk/client-dynamodb-streams';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { Context } from 'aws-lambda';
import { loadConfig } from '../core/config';
import { createSyncDeps } from '../core/deps';
import { ConfigError } from '../core/errors';
import type { RunTaskContext } from '../core/jobs/full-run/run-request';
import { logger, metrics } from '../core/observability';
import { RunRecords } from '../core/runs/run-records';
import { S3Storage } from '../core/storage/s3-storage';
import { SqsStreamFailures } from '../core/stream-failures/failed-users';

/** The run tasks' wiring, built once per process: the tables, the reports bucket and the run table. */
export function createRunTaskContext(): RunTaskContext & { readonly storage: S3Storage } {
  const config = loadConfig();
  if (!config.reportsBucket) throw new ConfigError(['REPORTS_BUCKET is required by the full run tasks (the stack sets it)']);
  const deps = createSyncDeps(config);
  const streamFailures = config.failureQueueUrl
    ? new SqsStreamFailures(new SQSClient({ region: config.region }), new DynamoDBStreamsClient({ region: config.region }), config.failureQueueUrl, {
        // Hidden briefly, so the failure alarm and health (which count visible messages) do not see the queue empty for a run's length.
        visibilityTimeoutSeconds: 30,
      })
    : undefined;
  return { deps, storage: new S3Storage(new S3Client({ region: config.region }), config.reportsBucket), runs: new RunRecords(deps.client, config.runsTable), streamFailures };
}

/** A state machine task as a Lambda handler: the run id on every log line, metrics flushed. */
export function taskHandler<I extends { run: { runId: string } }, O>(task: (input: I, context: Context) => Promise<O>): (input: I, context: Context) => Promise<O> {
  return async (input, context) => {
    logger.addContext(context);
    logger.appendKeys({ runId: input.run.runId });
    try {
      return await task(input, context);
    } finally {
      logger.removeKeys(['runId']);
      metrics.publishStoredMetrics();
    }
  };
}
