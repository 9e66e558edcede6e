import { QueryCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { SyncConfig } from '../config';
import type { WireItem } from '../rules/attribute-values';

export class PaymentsStore {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly config: SyncConfig,
  ) {}

  /** All payments of one user, through the payments-by-user index, every page. */
  async queryByUser(userId: string): Promise<WireItem[]> {
    const items: WireItem[] = [];
    let cursor: Record<string, AttributeValue> | undefined;
    do {
      const page = await this.client.send(
        new QueryCommand({
          TableName: this.config.paymentsTable,
          IndexName: this.config.paymentsUserIndex,
          KeyConditionExpression: '#user = :user',
          ExpressionAttributeNames: { '#user': this.config.payment.user },
          ExpressionAttributeValues: { ':user': { S: userId } },
          ExclusiveStartKey: cursor,
        }),
      );
      items.push(...((page.Items ?? []) as WireItem[]));
      cursor = page.LastEvaluatedKey;
    } while (cursor);
    return items;
  }
}
