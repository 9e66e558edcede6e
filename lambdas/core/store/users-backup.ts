import { createWriteStream } from 'node:fs';
import { CreateBackupCommand, ScanCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { SyncConfig } from '../config';

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

/** Every user item as DynamoDB JSON, one a line: for endpoints without CreateBackup (the embedded dynalite). */
export async function exportUsersToFile(client: DynamoDBClient, config: SyncConfig, file: string): Promise<BackupReceipt> {
  const out = createWriteStream(file);
  let items = 0;
  let cursor: Record<string, AttributeValue> | undefined;
  do {
    const page = await client.send(new ScanCommand({ TableName: config.usersTable, ExclusiveStartKey: cursor, ConsistentRead: true }));
    for (const item of page.Items ?? []) {
      out.write(`${JSON.stringify(item)}\n`);
      items++;
    }
    cursor = page.LastEvaluatedKey;
  } while (cursor);
  await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
  return { kind: 'file', location: file, items };
}
