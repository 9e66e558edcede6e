import { DescribeContinuousBackupsCommand, type DynamoDBClient, type TableDescription } from '@aws-sdk/client-dynamodb';
import { HeadBucketCommand, S3Client } from '@aws-sdk/client-s3';
import type { SyncConfig } from '../lambdas/core/config';
import { ConfigError } from '../lambdas/core/errors';
import type { CheckStatus } from '../lambdas/core/jobs/health';
import { createDynamoClient } from '../lambdas/core/store/dynamo-client';
import { describeTable, dynamoLocation, findIndex } from '../lambdas/core/store/table-checks';

/** One thing a run needs, as the seed's `validate-production-env` reported it: what was found and, when it is not right, the fix. */
export interface EnvCheck {
  readonly name: EnvCheckName;
  readonly status: CheckStatus;
  readonly detail: string;
  readonly fix?: string;
}

export const ENV_CHECKS = [
  'configuration',
  'credentials',
  'paymentsTable',
  'usersTable',
  'paymentsUserIndex',
  'paymentsStream',
  'pointInTimeRecovery',
  'runsTable',
  'reportsBucket',
] as const;
export type EnvCheckName = (typeof ENV_CHECKS)[number];

export interface EnvCheckOptions {
  /** The DynamoDB client; by default the one every command uses (createDynamoClient). */
  readonly client?: DynamoDBClient;
  readonly s3?: S3Client;
}

const errorText = (error: unknown): string => {
  const { name, message } = error as Error;
  return name && name !== 'Error' ? `${name}: ${message}` : message;
};

/** The fix for a DynamoDB call that failed for another reason than a missing table. */
function dynamoFix(config: SyncConfig, error: unknown): string {
  const name = (error as Error).name;
  if (name === 'AccessDeniedException') return 'the credentials need dynamodb:DescribeTable and DescribeContinuousBackups on both tables and the run table (read access for a validation)';
  if (name === 'UnrecognizedClientException' || name === 'InvalidSignatureException' || name === 'ExpiredTokenException') return 'the credentials are not valid for this account: refresh them (aws sso login) or check AWS_PROFILE / AWS_ACCESS_KEY_ID';
  if (config.endpoint) return `is a DynamoDB-compatible server listening at DYNAMODB_ENDPOINT=${config.endpoint}? (unset DYNAMODB_ENDPOINT and the table variables for the embedded dynalite)`;
  return `check the network and AWS_REGION (${config.region})`;
}

/**
 * The seed's `validate-production-env`, for what this system needs: the configuration, the
 * credentials, both tables, the payments-by-user index, the payments stream and its view type,
 * point-in-time recovery, the run table and the reports bucket. Every check runs that can (a
 * failed one does not hide the others), except that nothing is asked of DynamoDB once it is
 * unreachable or the credentials are missing: each call would only wait out its retries.
 * `load` is the configuration loader; its ConfigError's problems are the first check's.
 */
export async function checkEnvironment(load: () => SyncConfig, options: EnvCheckOptions = {}): Promise<EnvCheck[]> {
  const checks: EnvCheck[] = [];
  let config: SyncConfig;
  try {
    config = load();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    checks.push({
      name: 'configuration',
      status: 'fail',
      detail: error.problems.join('; '),
      fix: 'set or correct the variables named (README, "Configuration"); the other checks need a valid configuration, so they did not run',
    });
    return checks;
  }
  const where = dynamoLocation(config);
  checks.push({ name: 'configuration', status: 'pass', detail: `payments ${config.paymentsTable}, users ${config.usersTable}, runs ${config.runsTable} at ${where}` });

  const client = options.client ?? createDynamoClient(config);
  // Set when DynamoDB cannot be asked at all; the checks after it say so instead of waiting out retries.
  let unusable: string | undefined;

  if (config.endpoint) {
    checks.push({ name: 'credentials', status: 'pass', detail: `not needed: DYNAMODB_ENDPOINT=${config.endpoint} is a local server, which checks none` });
  } else {
    try {
      const { accessKeyId } = await client.config.credentials();
      checks.push({ name: 'credentials', status: 'pass', detail: `resolved from the AWS chain (access key …${accessKeyId.slice(-4)})` });
    } catch (error) {
      unusable = 'no credentials';
      checks.push({
        name: 'credentials',
        status: 'fail',
        detail: errorText(error),
        fix: 'export AWS_PROFILE (after aws sso login) or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run where a role provides them; the seed\'s AMPLIFY_AWS_ACCESS_KEY_ID / AMPLIFY_AWS_SECRET_ACCESS_KEY are not read',
      });
    }
  }

  const described = new Map<string, TableDescription | undefined>();
  /** DescribeTable once per table; undefined = not found; an unreachable DynamoDB marks the rest unusable. */
  const tableCheck = async (name: EnvCheckName, tableName: string, variable: string, missingFix: string): Promise<void> => {
    if (unusable) {
      checks.push({ name, status: 'fail', detail: `${tableName}: not checked (${unusable})` });
      return;
    }
    let table: TableDescription | undefined;
    try {
      table = await describeTable(client, tableName);
    } catch (error) {
      unusable = `DynamoDB at ${where} did not answer DescribeTable`;
      checks.push({ name, status: 'fail', detail: `${tableName}: cannot reach DynamoDB at ${where}: ${errorText(error)}`, fix: dynamoFix(config, error) });
      return;
    }
    described.set(tableName, table);
    if (!table) checks.push({ name, status: 'fail', detail: `${tableName} does not exist at ${where}`, fix: `check ${variable}${config.endpoint ? '' : ` and AWS_REGION (${config.region})`}; ${missingFix}` });
    else if (table.TableStatus !== 'ACTIVE') checks.push({ name, status: 'warn', detail: `${tableName} is ${table.TableStatus}`, fix: 'wait until it is ACTIVE' });
    else checks.push({ name, status: 'pass', detail: `${tableName}: ACTIVE at ${where}` });
  };
  await tableCheck('paymentsTable', config.paymentsTable, 'DYNAMODB_PAYMENTS_TABLE', 'it is the table the Midtrans webhook writes');
  await tableCheck('usersTable', config.usersTable, 'DYNAMODB_USERS_TABLE', 'it is the table whose purchasedCourses the sync keeps');

  const payments = described.get(config.paymentsTable);
  const notChecked = (name: EnvCheckName, why: string): void => void checks.push({ name, status: 'fail', detail: `not checked (${why})` });
  if (!payments) notChecked('paymentsUserIndex', unusable ?? `no table ${config.paymentsTable}`);
  else checks.push(indexCheck(config, payments));
  if (!payments) notChecked('paymentsStream', unusable ?? `no table ${config.paymentsTable}`);
  else checks.push(streamCheck(config, payments));
  if (unusable) notChecked('pointInTimeRecovery', unusable);
  else checks.push(await pointInTimeRecoveryCheck(config, client, described));

  await tableCheck('runsTable', config.runsTable, 'RUNS_TABLE', 'it holds the run records, the run lock and the hold; the stack creates it (key pk, a string)');
  if (unusable === 'no credentials' && config.reportsBucket) notChecked('reportsBucket', unusable);
  else checks.push(await bucketCheck(config, options.s3));
  return checks;
}

/** Attributes a per-user reconcile reads from the index: an INCLUDE projection must carry them. */
const indexedAttributes = (config: SyncConfig): string[] => [config.payment.id, config.payment.course, config.payment.status, config.payment.fraud, config.payment.updated];

function indexCheck(config: SyncConfig, payments: TableDescription): EnvCheck {
  const name = 'paymentsUserIndex';
  const indexName = config.paymentsUserIndex;
  const create = `aws dynamodb update-table --table-name ${config.paymentsTable} --attribute-definitions AttributeName=${config.payment.user},AttributeType=S --global-secondary-index-updates '[{"Create":{"IndexName":"${indexName}","KeySchema":[{"AttributeName":"${config.payment.user}","KeyType":"HASH"}],"Projection":{"ProjectionType":"ALL"}}}]' (docs/DEPLOY.md, step 2)`;
  const index = findIndex(payments, indexName);
  if (!index) return { name, status: 'fail', detail: `index ${indexName} not found on ${config.paymentsTable}`, fix: `set PAYMENTS_USER_INDEX to an existing index keyed by ${config.payment.user}, or create one: ${create}` };
  const key = index.KeySchema?.find((part) => part.KeyType === 'HASH')?.AttributeName;
  if (key !== config.payment.user) {
    return { name, status: 'fail', detail: `index ${indexName} is keyed by ${key ?? 'nothing'}, not by the user attribute ${config.payment.user}`, fix: `set PAYMENT_USER_ATTR to ${key ?? 'the user attribute'} if that is the user id, or PAYMENTS_USER_INDEX to an index keyed by ${config.payment.user}` };
  }
  const projection = index.Projection?.ProjectionType ?? 'ALL';
  const missing = projection === 'ALL' ? [] : indexedAttributes(config).filter((attribute) => attribute !== key && !(index.Projection?.NonKeyAttributes ?? []).includes(attribute));
  if (projection === 'KEYS_ONLY' || missing.length > 0) {
    return { name, status: 'fail', detail: `index ${indexName} projects ${projection}${missing.length ? ` without ${missing.join(', ')}` : ''}: each user's reconcile reads status, course and fraud status from it`, fix: `create an index with projection ALL under another name and set PAYMENTS_USER_INDEX to it: ${create}` };
  }
  if (index.IndexStatus !== 'ACTIVE') return { name, status: 'warn', detail: `index ${indexName} is ${index.IndexStatus} (backfilling)`, fix: 'wait until it is ACTIVE: runs query it for every user' };
  return { name, status: 'pass', detail: `${indexName}: ACTIVE, keyed by ${key}, projection ${projection}` };
}

function streamCheck(config: SyncConfig, payments: TableDescription): EnvCheck {
  const name = 'paymentsStream';
  const stream = payments.StreamSpecification;
  const enable = `aws dynamodb update-table --table-name ${config.paymentsTable} --stream-specification StreamEnabled=true,StreamViewType=NEW_AND_OLD_IMAGES, then deploy with its LatestStreamArn (docs/DEPLOY.md, step 1)`;
  if (!stream && config.endpoint) {
    return { name, status: 'warn', detail: `unknown locally: ${config.endpoint} reports no stream (dynalite has no Streams API; the local capture in front of it feeds the real-time path)` };
  }
  if (!stream?.StreamEnabled) return { name, status: 'fail', detail: `stream off on ${config.paymentsTable}: real-time grants and revocations are not running`, fix: enable };
  if (stream.StreamViewType !== 'NEW_AND_OLD_IMAGES') {
    return { name, status: 'fail', detail: `stream view type ${stream.StreamViewType}: the real-time path needs NEW_AND_OLD_IMAGES (a revocation compares the old and new status)`, fix: `disable the stream (StreamEnabled=false), then ${enable}; the new stream has a new ARN, so move any other reader to it` };
  }
  return { name, status: 'pass', detail: 'enabled, NEW_AND_OLD_IMAGES' };
}

/**
 * Point-in-time recovery: on the users table it is the roll-back of last resort (a warning when
 * off); SNAPSHOT_MODE=export needs it on both tables (a failure when off). dynalite does not
 * implement the call: "unknown locally", a warning.
 */
async function pointInTimeRecoveryCheck(config: SyncConfig, client: DynamoDBClient, described: ReadonlyMap<string, TableDescription | undefined>): Promise<EnvCheck> {
  const name = 'pointInTimeRecovery';
  const exportMode = config.snapshotMode === 'export';
  const tables = exportMode ? [config.usersTable, config.paymentsTable] : [config.usersTable];
  const found: string[] = [];
  const off: string[] = [];
  for (const table of tables) {
    if (!described.get(table)) {
      found.push(`${table}: not checked (no table)`);
      continue;
    }
    let status: string | undefined;
    try {
      const answer = await client.send(new DescribeContinuousBackupsCommand({ TableName: table }));
      status = answer.ContinuousBackupsDescription?.PointInTimeRecoveryDescription?.PointInTimeRecoveryStatus;
    } catch (error) {
      if (config.endpoint) return { name, status: 'warn', detail: `unknown locally: ${config.endpoint} does not answer DescribeContinuousBackups (${(error as Error).name})` };
      return { name, status: exportMode ? 'fail' : 'warn', detail: `${table}: cannot read it: ${errorText(error)}`, fix: 'the credentials need dynamodb:DescribeContinuousBackups' };
    }
    found.push(`${table}: ${status ?? 'unknown'}`);
    if (status !== 'ENABLED') off.push(table);
  }
  const detail = found.join('; ');
  if (off.length === 0) return { name, status: 'pass', detail };
  const fix = off.map((table) => `aws dynamodb update-continuous-backups --table-name ${table} --point-in-time-recovery-specification PointInTimeRecoveryEnabled=true`).join('; ');
  if (exportMode) return { name, status: 'fail', detail: `${detail}: SNAPSHOT_MODE=export needs it on both tables`, fix: `${fix} (or SNAPSHOT_MODE=scan)` };
  return { name, status: 'warn', detail: `${detail}: no roll-back of last resort for the table the sync writes`, fix };
}

async function bucketCheck(config: SyncConfig, s3?: S3Client): Promise<EnvCheck> {
  const name = 'reportsBucket';
  const bucket = config.reportsBucket;
  if (!bucket) return { name, status: 'pass', detail: 'REPORTS_BUCKET unset: reports go to a local report folder (--report-dir, default ./reports)' };
  const client = s3 ?? new S3Client({ region: config.region });
  try {
    await client.send(new HeadBucketCommand({ Bucket: bucket }));
    return { name, status: 'pass', detail: `s3://${bucket} reachable` };
  } catch (error) {
    const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (status === 404) return { name, status: 'fail', detail: `s3://${bucket} does not exist (in ${config.region})`, fix: 'set REPORTS_BUCKET to the stack\'s reports bucket (an output of the stack), or unset it for a local folder' };
    if (status === 403) return { name, status: 'fail', detail: `s3://${bucket}: access denied`, fix: `the credentials need s3:ListBucket, s3:GetObject and s3:PutObject on ${bucket}` };
    return { name, status: 'fail', detail: `s3://${bucket}: ${errorText(error)}`, fix: 'check the network, AWS_REGION and the credentials' };
  } finally {
    if (!s3) client.destroy();
  }
}

/** The checks for a terminal: one line each, its fix under it; then the verdict. Answers the exit code's meaning: true when nothing failed. */
export function printEnvChecks(checks: readonly EnvCheck[], say: (line: string) => void): boolean {
  const width = Math.max(...checks.map((check) => check.name.length));
  for (const check of checks) {
    say(`  ${(check.status === 'fail' ? 'FAIL' : check.status).padEnd(4)} ${check.name.padEnd(width)}  ${check.detail}`);
    if (check.fix && check.status !== 'pass') say(`       ${' '.repeat(width)}  fix: ${check.fix}`);
  }
  const failed = checks.filter((check) => check.status === 'fail').length;
  const warned = checks.filter((check) => check.status === 'warn').length;
  say(`env-check: ${failed === 0 ? 'ready' : `${failed} check(s) failed`}${warned ? `, ${warned} warning(s)` : ''}`);
  return failed === 0;
}
