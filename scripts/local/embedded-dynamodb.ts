import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';

/** Credentials dynalite accepts; it never checks signatures. */
export const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };
export const LOCAL_REGION = 'ap-southeast-1';

export interface TableNames {
  readonly paymentsTable: string;
  readonly usersTable: string;
  readonly paymentsUserIndex: string;
  /** Key attributes; the contract's defaults unless an attribute mapping says otherwise. */
  readonly paymentIdAttr: string;
  readonly paymentUserAttr: string;
  readonly userKeyAttr: string;
}

export const DEFAULT_TABLES: TableNames = {
  paymentsTable: 'lms-payments',
  usersTable: 'lms-users',
  paymentsUserIndex: 'userId-index',
  paymentIdAttr: 'orderId',
  paymentUserAttr: 'userId',
  userKeyAttr: 'userId',
};

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

/** Starts an in-memory dynalite on a free loopback port. */
export async function startDynalite(): Promise<EmbeddedDynamo> {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  return {
    endpoint: await listenOnLoopback(server),
    server,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export function localClient(endpoint: string): DynamoDBClient {
  return new DynamoDBClient({ endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
}

/** Creates both tables as the contract describes them (payments with the by-user index). */
export async function createTables(client: DynamoDBClient, names: TableNames = DEFAULT_TABLES): Promise<void> {
  await client.send(
    new CreateTableCommand({
      TableName: names.paymentsTable,
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [{ AttributeName: names.paymentIdAttr, KeyType: 'HASH' }],
      AttributeDefinitions: [
        { AttributeName: names.paymentIdAttr, AttributeType: 'S' },
        { AttributeName: names.paymentUserAttr, AttributeType: 'S' },
      ],
      GlobalSecondaryIndexes: [
        {
          IndexName: names.paymentsUserIndex,
          KeySchema: [{ AttributeName: names.paymentUserAttr, KeyType: 'HASH' }],
          Projection: { ProjectionType: 'ALL' },
        },
      ],
      StreamSpecification: { StreamEnabled: true, StreamViewType: 'NEW_AND_OLD_IMAGES' },
    }),
  );
  await client.send(
    new CreateTableCommand({
      TableName: names.usersTable,
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [{ AttributeName: names.userKeyAttr, KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: names.userKeyAttr, AttributeType: 'S' }],
    }),
  );
  // dynalite answers CreateTable with CREATING and flips to ACTIVE on a timer, as DynamoDB does.
  for (const table of [names.paymentsTable, names.usersTable]) {
    while ((await client.send(new DescribeTableCommand({ TableName: table }))).Table?.TableStatus !== 'ACTIVE') {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }
}
