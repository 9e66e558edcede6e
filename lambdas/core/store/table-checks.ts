import { DescribeTableCommand, type DynamoDBClient, type GlobalSecondaryIndexDescription, type TableDescription } from '@aws-sdk/client-dynamodb';

/**
 * The describe-table check, in one place for health, the command line's start-up check and
 * the environment check: the table's description, or undefined when it does not exist. Any
 * other failure (endpoint unreachable, access denied, throttled past the retries) is thrown.
 */
export async function describeTable(client: DynamoDBClient, tableName: string): Promise<TableDescription | undefined> {
  try {
    return (await client.send(new DescribeTableCommand({ TableName: tableName }))).Table;
  } catch (error) {
    if ((error as Error).name === 'ResourceNotFoundException') return undefined;
    throw error;
  }
}

/** A global secondary index of a described table, by name. */
export function findIndex(table: TableDescription | undefined, indexName: string): GlobalSecondaryIndexDescription | undefined {
  return table?.GlobalSecondaryIndexes?.find((index) => index.IndexName === indexName);
}

/** Where DynamoDB is, in an operator's words: the endpoint, or AWS and the region. */
export function dynamoLocation(config: { readonly endpoint: string | undefined; readonly region: string }): string {
  return config.endpoint ?? `AWS ${config.region}`;
}
