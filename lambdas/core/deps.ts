import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { SyncConfig } from './config';
import { createDynamoClient } from './store/dynamo-client';
import { PaymentsStore } from './store/payments-store';
import { UsersStore } from './store/users-store';

/** Everything a job needs; built once per process (at module scope in a Lambda). */
export interface SyncDeps {
  readonly config: SyncConfig;
  readonly client: DynamoDBClient;
  readonly payments: PaymentsStore;
  readonly users: UsersStore;
  /** Epoch milliseconds; a parameter so tests can place payments inside or outside the grace window. */
  readonly now: () => number;
}

export function createSyncDeps(config: SyncConfig, client: DynamoDBClient = createDynamoClient(config), now: () => number = Date.now): SyncDeps {
  return { config, client, payments: new PaymentsStore(client, config), users: new UsersStore(client, config), now };
}
