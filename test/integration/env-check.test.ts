import { createServer, type Server } from 'node:http';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateTableCommand, DynamoDBClient, type DescribeTableCommandOutput, type StreamSpecification } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { loadConfig } from '../../lambdas/core/config';
import { createSyncDeps } from '../../lambdas/core/deps';
import { EXIT, main, parseCommandLine, runCommand } from '../../scripts/cli';
import { checkEnvironment, ENV_CHECKS, type EnvCheck, type EnvCheckName } from '../../scripts/env-check';
import { listenOnLoopback } from '../../scripts/local/embedded-dynamodb';
import { startTestTables, type TestTables } from '../support/local-tables';

/** Runs the command line in-process with its terminal output captured. */
async function runCli(argv: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const out = jest.spyOn(process.stdout, 'write').mockImplementation((chunk) => ((stdout += String(chunk)), true));
  const err = jest.spyOn(process.stderr, 'write').mockImplementation((chunk) => ((stderr += String(chunk)), true));
  const error = jest.spyOn(console, 'error').mockImplementation((...args) => void (stderr += `${args.join(' ')}\n`));
  try {
    return { code: await main(argv, env), stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
    error.mockRestore();
  }
}

const byName = (checks: readonly EnvCheck[]): Record<EnvCheckName, EnvCheck> => Object.fromEntries(checks.map((check) => [check.name, check])) as Record<EnvCheckName, EnvCheck>;

/**
 * A client of the test dynalite that answers as AWS would where dynalite cannot: the payments
 * table's stream (dynalite has no Streams API) and point-in-time recovery (no DescribeContinuousBackups).
 */
function awsLikeClient(tables: TestTables, answers: { stream?: StreamSpecification; pointInTimeRecovery?: 'ENABLED' | 'DISABLED' }): DynamoDBClient {
  const client = new DynamoDBClient({ endpoint: tables.endpoint, region: 'ap-southeast-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'DescribeContinuousBackupsCommand' && answers.pointInTimeRecovery) {
        const output = { $metadata: {}, ContinuousBackupsDescription: { ContinuousBackupsStatus: 'ENABLED', PointInTimeRecoveryDescription: { PointInTimeRecoveryStatus: answers.pointInTimeRecovery } } };
        return { output, response: {} } as unknown as Awaited<ReturnType<typeof next>>;
      }
      const result = await next(args);
      const table = (result.output as DescribeTableCommandOutput).Table;
      if (context.commandName === 'DescribeTableCommand' && table?.TableName === tables.config.paymentsTable && answers.stream) table.StreamSpecification = answers.stream;
      return result;
    },
    { step: 'initialize', name: 'awsLikeAnswers' },
  );
  return client;
}

describe('payment-env-check against dynalite', () => {
  let tables: TestTables;
  let env: Record<string, string>;
  beforeAll(async () => {
    tables = await startTestTables();
    // A local endpoint needs no credentials: the client signs with its loopback pair.
    env = { ...Object.fromEntries(Object.entries(tables.env).filter(([name]) => !/^AWS_(ACCESS_KEY_ID|SECRET_ACCESS_KEY)$/.test(name))), LOG_FILE: '' };
    // The run table, as the stack creates it (the embedded default may have made it already).
    await tables.client.send(new CreateTableCommand({ TableName: tables.config.runsTable, BillingMode: 'PAY_PER_REQUEST', KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }], AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }] })).catch((error: Error) => {
      if (error.name !== 'ResourceInUseException') throw error;
    });
    // A payments table whose by-user index is keyed by another attribute.
    await tables.client.send(
      new CreateTableCommand({
        TableName: 'payments-other-key',
        BillingMode: 'PAY_PER_REQUEST',
        KeySchema: [{ AttributeName: 'orderId', KeyType: 'HASH' }],
        AttributeDefinitions: [
          { AttributeName: 'orderId', AttributeType: 'S' },
          { AttributeName: 'customerId', AttributeType: 'S' },
        ],
        GlobalSecondaryIndexes: [{ IndexName: 'userId-index', KeySchema: [{ AttributeName: 'customerId', KeyType: 'HASH' }], Projection: { ProjectionType: 'ALL' } }],
      }),
    );
  });
  afterAll(() => tables.close());

  test('a healthy set-up passes: every check is printed, local unknowns are warnings, exit 0; the log file has the run', async () => {
    const logFile = join(mkdtempSync(join(tmpdir(), 'env-check-')), 'payment-sync.log');
    const run = await runCli(['env-check'], { ...env, LOG_FILE: logFile });
    expect(run.code).toBe(EXIT.completed);
    for (const name of ENV_CHECKS) expect(run.stdout).toMatch(new RegExp(`^  (pass|warn) ${name} `, 'm'));
    expect(run.stdout).toMatch(/^ {2}warn pointInTimeRecovery +unknown locally/m);
    expect(run.stdout).toMatch(/^ {2}warn paymentsStream +unknown locally/m);
    expect(run.stdout).toMatch(/^ {2}pass reportsBucket +REPORTS_BUCKET unset: reports go to a local report folder/m);
    expect(run.stdout).toMatch(/^env-check: ready, 2 warning\(s\)$/m);
    expect(run.stdout).not.toMatch(/FAIL/);
    const log = readFileSync(logFile, 'utf8');
    expect(log).toMatch(/\[INFO\] start: env-check/);
    expect(log).toMatch(/\[INFO\] env-check: ready/);
    expect(log).toMatch(/\[INFO\] end: exit 0 \(completed\)/);
  });

  test('where the endpoint answers as AWS does, a whole stream and point-in-time recovery pass', async () => {
    const client = awsLikeClient(tables, { stream: { StreamEnabled: true, StreamViewType: 'NEW_AND_OLD_IMAGES' }, pointInTimeRecovery: 'ENABLED' });
    const checks = byName(await checkEnvironment(() => loadConfig(env), { client }));
    expect(Object.values(checks).map((check) => [check.name, check.status])).toEqual(ENV_CHECKS.map((name) => [name, 'pass']));
    expect(checks.paymentsUserIndex.detail).toBe('userId-index: ACTIVE, keyed by userId, projection ALL');
  });

  test.each([
    ['a missing users table', { DYNAMODB_USERS_TABLE: 'lms-users-typo' }, 'usersTable', /lms-users-typo does not exist at http:\/\/127\.0\.0\.1:\d+/, /check DYNAMODB_USERS_TABLE/],
    ['a missing payments table', { DYNAMODB_PAYMENTS_TABLE: 'lms-payments-typo' }, 'paymentsTable', /lms-payments-typo does not exist/, /check DYNAMODB_PAYMENTS_TABLE/],
    ['a missing index', { PAYMENTS_USER_INDEX: 'byUser' }, 'paymentsUserIndex', /index byUser not found on lms-payments/, /aws dynamodb update-table --table-name lms-payments .*"IndexName":"byUser"/],
    ['an index keyed by another attribute', { DYNAMODB_PAYMENTS_TABLE: 'payments-other-key' }, 'paymentsUserIndex', /index userId-index is keyed by customerId, not by the user attribute userId/, /PAYMENT_USER_ATTR/],
    ['a missing run table', { RUNS_TABLE: 'payment-sync-runs-typo' }, 'runsTable', /payment-sync-runs-typo does not exist/, /check RUNS_TABLE/],
  ] as const)('%s fails that check, with its fix, and exits 1', async (_case, broken, name, detail, fix) => {
    const run = await runCli(['env-check'], { ...env, ...broken });
    expect(run.code).toBe(EXIT.unhealthy);
    expect(run.stdout).toMatch(new RegExp(`^ {2}FAIL ${name} +${detail.source}`, 'm'));
    expect(run.stdout).toMatch(new RegExp(`^ {2}FAIL ${name} .*\\n +fix: .*${fix.source}`, 'm'));
    expect(run.stdout).toMatch(/^env-check: \d+ check\(s\) failed/m);
    // Only the broken check (and what stands on it) fails: the rest is still checked.
    expect(run.stdout).toMatch(/^ {2}pass configuration /m);
    expect(run.stdout).toMatch(/^ {2}pass reportsBucket /m);
  });

  test.each([
    ['off', { StreamEnabled: false }, /stream off on lms-payments: real-time grants and revocations are not running/],
    ['without old images', { StreamEnabled: true, StreamViewType: 'NEW_IMAGE' }, /stream view type NEW_IMAGE: the real-time path needs NEW_AND_OLD_IMAGES/],
  ] as const)('a stream %s fails paymentsStream and exits 1', async (_case, stream, detail) => {
    const config = loadConfig(env);
    const lines: string[] = [];
    const { exitCode } = await runCommand(parseCommandLine(['env-check']), createSyncDeps(config, awsLikeClient(tables, { stream })), false, (line) => lines.push(line));
    expect(exitCode).toBe(EXIT.unhealthy);
    const at = lines.findIndex((line) => /^ {2}FAIL paymentsStream /.test(line));
    expect(lines[at]).toMatch(detail);
    expect(lines[at + 1]).toMatch(/fix: .*--stream-specification StreamEnabled=true,StreamViewType=NEW_AND_OLD_IMAGES/);
    expect(lines.filter((line) => /^ {2}FAIL /.test(line))).toHaveLength(1);
  });

  test('point-in-time recovery off: a warning in scan mode, a failure when SNAPSHOT_MODE=export needs it', async () => {
    const client = awsLikeClient(tables, { stream: { StreamEnabled: true, StreamViewType: 'NEW_AND_OLD_IMAGES' }, pointInTimeRecovery: 'DISABLED' });
    const scan = byName(await checkEnvironment(() => loadConfig(env), { client }));
    expect(scan.pointInTimeRecovery).toMatchObject({ status: 'warn', detail: expect.stringMatching(/^lms-users: DISABLED: no roll-back/), fix: expect.stringMatching(/update-continuous-backups --table-name lms-users/) });
    const exported = byName(await checkEnvironment(() => loadConfig({ ...env, SNAPSHOT_MODE: 'export' }), { client }));
    expect(exported.pointInTimeRecovery).toMatchObject({ status: 'fail', detail: expect.stringMatching(/lms-users: DISABLED; lms-payments: DISABLED: SNAPSHOT_MODE=export needs it/) });
  });

  test('a bad configuration is the configuration check\'s failure, naming every problem (exit 1, not 2)', async () => {
    const run = await runCli(['env-check'], { ...env, DYNAMODB_USERS_TABLE: '', GRACE_MINUTES: 'soon' });
    expect(run.code).toBe(EXIT.unhealthy);
    expect(run.stdout).toMatch(/^ {2}FAIL configuration +DYNAMODB_USERS_TABLE is required; GRACE_MINUTES must be a whole number/m);
    expect(run.stdout).toMatch(/^ {2}FAIL .*\n +fix: set or correct the variables named/m);
    expect(run.stdout).not.toMatch(/paymentsTable/);
  });

  test('an unreachable endpoint fails the first table with its fix; the checks that need DynamoDB say they were not checked', async () => {
    const run = await runCli(['env-check'], { ...env, DYNAMODB_ENDPOINT: 'http://127.0.0.1:1' });
    expect(run.code).toBe(EXIT.unhealthy);
    expect(run.stdout).toMatch(/^ {2}FAIL paymentsTable +lms-payments: cannot reach DynamoDB at http:\/\/127\.0\.0\.1:1: .*ECONNREFUSED/m);
    expect(run.stdout).toMatch(/fix: is a DynamoDB-compatible server listening at DYNAMODB_ENDPOINT=http:\/\/127\.0\.0\.1:1\?/);
    for (const name of ['usersTable', 'paymentsUserIndex', 'paymentsStream', 'pointInTimeRecovery', 'runsTable']) {
      expect(run.stdout).toMatch(new RegExp(`^ {2}FAIL ${name} +(\\S+: )?not checked \\(DynamoDB at http://127\\.0\\.0\\.1:1 did not answer DescribeTable\\)`, 'm'));
    }
  });

  describe('the reports bucket (HeadBucket)', () => {
    let server: Server;
    let s3: S3Client;
    beforeAll(async () => {
      // Answers HeadBucket as S3 does: 200 for the bucket that exists, 404 otherwise.
      server = createServer((request, response) => {
        response.statusCode = request.url?.startsWith('/reports-here') ? 200 : 404;
        response.end();
      });
      const endpoint = await listenOnLoopback(server);
      s3 = new S3Client({ endpoint, forcePathStyle: true, region: 'ap-southeast-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' }, maxAttempts: 1 });
    });
    afterAll(async () => {
      s3.destroy();
      await new Promise((resolve) => server.close(resolve));
    });

    test('a bucket that exists passes; one that does not fails with its fix', async () => {
      const here = byName(await checkEnvironment(() => loadConfig({ ...env, REPORTS_BUCKET: 'reports-here' }), { s3 }));
      expect(here.reportsBucket).toMatchObject({ status: 'pass', detail: 's3://reports-here reachable' });
      const missing = byName(await checkEnvironment(() => loadConfig({ ...env, REPORTS_BUCKET: 'reports-gone' }), { s3 }));
      expect(missing.reportsBucket).toMatchObject({ status: 'fail', detail: 's3://reports-gone does not exist (in ap-southeast-1)', fix: expect.stringMatching(/REPORTS_BUCKET/) });
    });
  });
});
