import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { loadConfig, type SyncConfig } from '../../lambdas/core/config';
import { createTables, DEFAULT_TABLES, LOCAL_CREDENTIALS, localClient, startDynalite } from './embedded-dynamodb';
import { generateDemoData, loadDemoData, type DemoDataset } from './demo-data';

export interface LocalEnvironment {
  /** The endpoint clients use. */
  readonly endpoint: string;
  /** The contract's environment variables pointing at this environment. */
  readonly env: Record<string, string>;
  readonly config: SyncConfig;
  readonly client: DynamoDBClient;
  close(): Promise<void>;
}

export interface LocalEnvironmentOptions {
  /** Contract variables to add (attribute mapping, statuses, policy); tables keep the defaults. */
  readonly env?: Record<string, string>;
}

/**
 * The embedded default: an in-memory dynalite with both tables as the contract describes.
 * Nothing leaves the machine.
 */
export async function startLocalEnvironment(options: LocalEnvironmentOptions = {}): Promise<LocalEnvironment> {
  const dynamo = await startDynalite();
  const env: Record<string, string> = {
    DYNAMODB_PAYMENTS_TABLE: DEFAULT_TABLES.paymentsTable,
    DYNAMODB_USERS_TABLE: DEFAULT_TABLES.usersTable,
    PAYMENTS_USER_INDEX: DEFAULT_TABLES.paymentsUserIndex,
    DYNAMODB_ENDPOINT: dynamo.endpoint,
    AWS_REGION: 'ap-southeast-1',
    AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
    ...options.env,
  };
  const config = loadConfig(env);
  const client = localClient(dynamo.endpoint);
  await createTables(client, {
    ...DEFAULT_TABLES,
    paymentIdAttr: config.payment.id,
    paymentUserAttr: config.payment.user,
    userKeyAttr: config.user.key,
  });
  return {
    endpoint: dynamo.endpoint,
    env,
    config,
    client,
    close: async () => {
      client.destroy();
      await dynamo.close();
    },
  };
}

/** The embedded default with the demo data loaded. */
export async function startDemoEnvironment(users = 200, seed = 7): Promise<LocalEnvironment & { dataset: DemoDataset }> {
  const local = await startLocalEnvironment();
  const dataset = generateDemoData({ users, seed }, local.config);
  await loadDemoData(local.client, local.config, dataset);
  return { ...local, dataset };
}
