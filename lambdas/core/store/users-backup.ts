import { CreateBackupCommand, ScanCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { SyncConfig } from '../config';
import type { RunStorage } from '../storage/run-storage';

/** Where a migration's backup went, for the runbook's restore step. */
export interface BackupReceipt {
  readonly kind: 'dynamodb-backup' | 'file';
  readonly location: string;
  readonly items?: number;
}

/** An on-demand DynamoDB backup of the users table: restorable from the console or `aws dynamodb restore-table-from-backup`. */
export async function backupUsersTable(client: DynamoDBClient, config: SyncConfig, runId: string): Promise<BackupReceipt> {
  const answer = await client.send(new CreateBackupCommand({ TableName: config.usersTable, BackupName: `${config.usersTable}-before-${runId}`.slice(0, 255) }));
  return { kind: 'dynamodb-backup', location: answer.BackupDetails?.BackupArn ?? '(no ARN returned)' };
}

/**
 * Every user item as DynamoDB JSON, one a line, into the run's storage: for endpoints without
 * CreateBackup (the embedded dynalite, whose tables are small).
 */
export async function exportUsersToStorage(client: DynamoDBClient, config: SyncConfig, storage: RunStorage, key: string): Promise<BackupReceipt> {
  const lines: string[] = [];
  let cursor: Record<string, AttributeValue> | undefined;
  do {
    const page = await client.send(new ScanCommand({ TableName: config.usersTable, ExclusiveStartKey: cursor, ConsistentRead: true }));
    for (const item of page.Items ?? []) lines.push(JSON.stringify(item));
    cursor = page.LastEvaluatedKey;
  } while (cursor);
  await storage.put(key, lines.map((line) => `${line}\n`).join(''));
  return { kind: 'file', location: key, items: lines.length };
}
