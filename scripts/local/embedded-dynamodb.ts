import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient, ListTablesCommand, type CreateTableCommandInput } from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';
import { LOCAL_CREDENTIALS, loadConfig, type PaymentAttributes, type SyncConfig, type UserAttributes } from '../../lambdas/core/config';

/** Credentials dynalite accepts (it never checks signatures): the configuration's local pair. */
export { LOCAL_CREDENTIALS };
export const LOCAL_REGION = 'ap-southeast-1';

/**
 * The tables the embedded dynalite holds, in the runtime configuration's own words: SyncConfig
 * is the one home of the tables' names, the index and the key attributes (any SyncConfig is one
 * of these). lib/config.ts's TableNames is the stack's side of the same tables.
 */
export type LocalTables = Pick<SyncConfig, 'paymentsTable' | 'usersTable' | 'runsTable' | 'paymentsUserIndex'> & {
  readonly payment: Pick<PaymentAttributes, 'id' | 'user'>;
  readonly user: Pick<UserAttributes, 'key'>;
};

/** The seed's table names, with the contract's defaults (loadConfig's) for the index, the run table and the keys. */
export const DEFAULT_TABLES: LocalTables = (() => {
  const config = loadConfig({ DYNAMODB_PAYMENTS_TABLE: 'lms-payments', DYNAMODB_USERS_TABLE: 'lms-users' });
  return {
    paymentsTable: config.paymentsTable,
    usersTable: config.usersTable,
    runsTable: config.runsTable,
    paymentsUserIndex: config.paymentsUserIndex,
    payment: { id: config.payment.id, user: config.payment.user },
    user: { key: config.user.key },
  };
})();

export interface EmbeddedDynamo {
  /** The dynalite server's own endpoint (no stream capture in front of it). */
  readonly endpoint: string;
  readonly server: Server;
  close(): Promise<void>;
}

/** Listens on a free loopback port (nothing local is reachable from elsewhere); returns the endpoint. */
export async function listenOnLoopback(server: Server): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return `http://127.0.0.1:${port}`;
}

/**
 * Starts dynalite on a free loopback port: in memory, or with `path` on disk (a LevelDB
 * directory, which one process at a time may open: take the data directory's lock first,
 * scripts/local/environment.ts).
 */
export async function startDynalite(options: { readonly path?: string } = {}): Promise<EmbeddedDynamo> {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0, ...(options.path && { path: options.path }) });
  return {
    endpoint: await listenOnLoopback(server),
    server,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export function localClient(endpoint: string): DynamoDBClient {
  return new DynamoDBClient({ endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
}

/**
 * Creates the tables as the contract describes them (payments with the by-user index and a
 * stream, users, the run table), those not there yet: data kept on disk by an earlier version
 * gains the tables added since.
 */
export async function createTables(client: DynamoDBClient, tables: LocalTables = DEFAULT_TABLES): Promise<void> {
  const definitions: CreateTableCommandInput[] = [
    {
      TableName: tables.paymentsTable,
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [{ AttributeName: tables.payment.id, KeyType: 'HASH' }],
      AttributeDefinitions: [
        { AttributeName: tables.payment.id, AttributeType: 'S' },
        { AttributeName: tables.payment.user, AttributeType: 'S' },
      ],
      GlobalSecondaryIndexes: [
        {
          IndexName: tables.paymentsUserIndex,
          KeySchema: [{ AttributeName: tables.payment.user, KeyType: 'HASH' }],
          Projection: { ProjectionType: 'ALL' },
        },
      ],
      StreamSpecification: { StreamEnabled: true, StreamViewType: 'NEW_AND_OLD_IMAGES' },
    },
    {
      TableName: tables.usersTable,
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [{ AttributeName: tables.user.key, KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: tables.user.key, AttributeType: 'S' }],
    },
    // The run table: run records, the lock and the hold (lambdas/core/runs/run-records.ts). On AWS
    // its TTL attribute is `expiresAt`; dynalite has no UpdateTimeToLive, so locally nothing expires.
    {
      TableName: tables.runsTable,
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
    },
  ];
  const existing = new Set<string>();
  let cursor: string | undefined;
  do {
    const page = await client.send(new ListTablesCommand({ ExclusiveStartTableName: cursor }));
    for (const name of page.TableNames ?? []) existing.add(name);
    cursor = page.LastEvaluatedTableName;
  } while (cursor);
  const missing = definitions.filter((definition) => !existing.has(definition.TableName as string));
  for (const definition of missing) await client.send(new CreateTableCommand(definition));
  // dynalite answers CreateTable with CREATING and flips to ACTIVE on a timer, as DynamoDB does.
  for (const { TableName } of missing) {
    while ((await client.send(new DescribeTableCommand({ TableName }))).Table?.TableStatus !== 'ACTIVE') {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }
}
