import { GetItemCommand, UpdateItemCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { SyncConfig } from '../config';
import { backoffDelayMs, sleep } from '../backoff';
import { WriteConflictError } from '../errors';
import type { WireItem, WireValue } from '../rules/attribute-values';
import { decodeCourses, encodeCourses, type CourseEntry, type CoursesList } from '../rules/courses-list';

/** A user's list as read: `raw` is what the conditional write compares against. */
export interface UserSnapshot {
  readonly userId: string;
  readonly exists: boolean;
  readonly raw: WireValue | undefined;
  readonly courses: CoursesList;
}

/** What a planner must return: the list to write, or undefined for no change. */
export interface PlannedWrite {
  readonly next: readonly CourseEntry[] | undefined;
}

export type UpdateOutcome<P extends PlannedWrite> =
  | { readonly kind: 'not-found' }
  | { readonly kind: 'unchanged'; readonly snapshot: UserSnapshot; readonly plan: P }
  | { readonly kind: 'changed'; readonly before: UserSnapshot; readonly after: WireValue; readonly plan: P; readonly attempts: number };

/** Write attempts before a user counts as contended; each one re-reads and re-plans. */
export const MAX_WRITE_ATTEMPTS = 8;

export class UsersStore {
  private readonly names: Record<string, string>;
  private readonly projection = '#key, #courses';

  constructor(
    private readonly client: DynamoDBClient,
    private readonly config: SyncConfig,
  ) {
    this.names = { '#key': config.user.key, '#courses': config.user.courses };
  }

  private key(userId: string): Record<string, AttributeValue> {
    return { [this.config.user.key]: { S: userId } };
  }

  private snapshot(userId: string, item: WireItem | undefined): UserSnapshot {
    const raw = item?.[this.config.user.courses];
    return { userId, exists: item !== undefined, raw, courses: decodeCourses(raw) };
  }

  /** A strongly consistent read: the write path plans on it. */
  async get(userId: string): Promise<UserSnapshot> {
    const { Item } = await this.client.send(
      new GetItemCommand({
        TableName: this.config.usersTable,
        Key: this.key(userId),
        ConsistentRead: true,
        ProjectionExpression: this.projection,
        ExpressionAttributeNames: this.names,
      }),
    );
    return this.snapshot(userId, Item as WireItem | undefined);
  }

  /**
   * The one write path: read → plan → write on condition that the list is still what was
   * read (or still absent) and the user still exists; on conflict, re-read and re-plan.
   * No writer's change is lost, and a plan made on stale data is never written.
   */
  async update<P extends PlannedWrite>(
    userId: string,
    planner: (snapshot: UserSnapshot) => P,
    initial?: UserSnapshot,
  ): Promise<UpdateOutcome<P>> {
    for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt++) {
      if (attempt > 0) await sleep(backoffDelayMs(attempt));
      const snapshot = attempt === 0 && initial ? initial : await this.get(userId);
      if (!snapshot.exists) return { kind: 'not-found' };
      const plan = planner(snapshot);
      if (!plan.next) return { kind: 'unchanged', snapshot, plan };
      const after = encodeCourses(plan.next);
      if (await this.writeIfUnchanged(snapshot, after)) {
        return { kind: 'changed', before: snapshot, after, plan, attempts: attempt + 1 };
      }
    }
    throw new WriteConflictError(userId, MAX_WRITE_ATTEMPTS);
  }

  private async writeIfUnchanged(snapshot: UserSnapshot, after: WireValue): Promise<boolean> {
    const listUnchanged = snapshot.raw === undefined ? 'attribute_not_exists(#courses)' : '#courses = :before';
    try {
      await this.client.send(
        new UpdateItemCommand({
          TableName: this.config.usersTable,
          Key: this.key(snapshot.userId),
          UpdateExpression: 'SET #courses = :after',
          ConditionExpression: `attribute_exists(#key) AND ${listUnchanged}`,
          ExpressionAttributeNames: this.names,
          ExpressionAttributeValues: {
            ':after': after as AttributeValue,
            ...(snapshot.raw === undefined ? {} : { ':before': snapshot.raw as AttributeValue }),
          },
        }),
      );
      return true;
    } catch (error) {
      if ((error as Error).name === 'ConditionalCheckFailedException') return false;
      throw error;
    }
  }

  /**
   * Undo's write, not a plan: puts `before` back (or removes the attribute when `before` is
   * null, i.e. it was absent) only while the user exists and the list is still exactly
   * `expectedAfter`, what the run wrote. False when the condition fails: the user is gone or
   * the list changed since, and nothing was written.
   */
  async restoreIfUnchanged(userId: string, expectedAfter: WireValue, before: WireValue | null): Promise<boolean> {
    try {
      await this.client.send(
        new UpdateItemCommand({
          TableName: this.config.usersTable,
          Key: this.key(userId),
          UpdateExpression: before === null ? 'REMOVE #courses' : 'SET #courses = :before',
          ConditionExpression: 'attribute_exists(#key) AND #courses = :after',
          ExpressionAttributeNames: this.names,
          ExpressionAttributeValues: {
            ':after': expectedAfter as AttributeValue,
            ...(before === null ? {} : { ':before': before as AttributeValue }),
          },
        }),
      );
      return true;
    } catch (error) {
      if ((error as Error).name === 'ConditionalCheckFailedException') return false;
      throw error;
    }
  }
}
