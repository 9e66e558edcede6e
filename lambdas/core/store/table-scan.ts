import { ScanCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { WireItem } from '../rules/attribute-values';

/** Where a segment stopped: DynamoDB's LastEvaluatedKey, JSON-safe so a state machine can carry it. */
export type ScanCursor = Record<string, AttributeValue>;

export interface ScanPage {
  readonly items: WireItem[];
  readonly cursor: ScanCursor | undefined;
  readonly consumedCapacity: number;
}

export interface SegmentPosition {
  readonly segment: number;
  readonly totalSegments: number;
  readonly cursor?: ScanCursor | undefined;
  readonly pageSize?: number;
}

/** One page of one segment of a parallel scan, raw items and what they cost: the scan snapshot reads both tables through this. */
export async function scanSegmentPage(
  client: DynamoDBClient,
  tableName: string,
  position: SegmentPosition,
): Promise<ScanPage> {
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
