import { QueryCommand, ScanCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { SyncConfig } from '../config';
import type { WireItem } from '../rules/attribute-values';

/** Where a segment stopped: DynamoDB's LastEvaluatedKey, JSON-safe so a state machine can carry it. */
export type ScanCursor = Record<string, AttributeValue>;

export interface ScanPage<T> {
  readonly items: T[];
  readonly cursor: ScanCursor | undefined;
  readonly consumedCapacity: number;
}

export interface SegmentPosition {
  readonly segment: number;
  readonly totalSegments: number;
  readonly cursor?: ScanCursor | undefined;
  readonly pageSize?: number;
}

/** One page of one segment of a parallel scan, with what it cost: the scan snapshot reads both tables through this. */
export async function scanSegmentPage(
  client: DynamoDBClient,
  tableName: string,
  position: SegmentPosition,
): Promise<ScanPage<WireItem>> {
  const page = await client.send(
    new ScanCommand({
      TableName: tableName,
      Segment: position.segment,
      TotalSegments: position.totalSegments,
      ExclusiveStartKey: position.cursor,
      Limit: position.pageSize,
      ReturnConsumedCapacity: 'TOTAL',
    }),
  );
  return {
    items: (page.Items ?? []) as WireItem[],
    cursor: page.LastEvaluatedKey,
    consumedCapacity: page.ConsumedCapacity?.CapacityUnits ?? 0,
  };
}

export class PaymentsStore {
  constructor(
    private readonly client: DynamoDBClient,
    private readonly config: SyncConfig,
  ) {}

  /** All payments of one user, through the payments-by-user index, every page. */
  async queryByUser(userId: string): Promise<WireItem[]> {
    const items: WireItem[] = [];
    let cursor: ScanCursor | undefined;
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
