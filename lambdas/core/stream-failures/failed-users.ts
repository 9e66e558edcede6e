import { GetRecordsCommand, GetShardIteratorCommand } from '@aws-sdk/client-dynamodb-streams';
import type { DynamoDBStreamsClient, ShardIteratorType } from '@aws-sdk/client-dynamodb-streams';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { z } from 'zod';
import { logger } from '../observability';
import { readText } from '../rules/attribute-values';
import type { WireItem } from '../rules/attribute-values';

/**
 * Users named by the stream's failure queue: the batches the stream Lambda's event source
 * mapping gave up on (retries exhausted, records too old). Lambda's on-failure destination
 * gets the batch's position in the stream (`DDBStreamBatchInfo`: shard, first and last sequence
 * number), not the records, so the records are read back from the stream, which keeps them 24
 * hours. Past that they are gone: such a message is counted `unreadable` and the caller decides
 * (a full run repairs whatever it named).
 *
 * Reading never removes a message: an operator purges the queue once a sync repaired the users
 * (docs/DEPLOY.md), so a run that fails half-way loses nothing.
 */
export interface FailedStreamRecords {
  /** Every user a failure message's records name, under the payments' user attribute `userAttr`. */
  usersNamed(userAttr: string): Promise<FailedStreamUsers>;
}

export interface FailedStreamUsers {
  /** Sorted, each once: the user of every record's NewImage and OldImage (a moved payment names both). */
  readonly userIds: string[];
  /** Failure messages read, unreadable ones included. */
  readonly messages: number;
  /** Messages whose records could not be read: not a failure message, or records gone from the stream. */
  readonly unreadable: number;
  /** Stream records read back from the messages' ranges. */
  readonly records: number;
  /** Records with a user attribute in neither image (a malformed payment): they name no one. */
  readonly recordsWithoutUser: number;
  /** The cap on messages was reached: the queue may hold more than were read. */
  readonly capped: boolean;
  /** Why messages were unreadable, the first `UNREADABLE_DETAILS` of them. */
  readonly unreadableMessages: UnreadableFailureMessage[];
}

/** What of a failure message this module reads: where the discarded records are. */
export interface StreamBatchPosition {
  readonly streamArn: string;
  readonly shardId: string;
  readonly startSequenceNumber: string;
  readonly endSequenceNumber: string;
  /** When the last record of the batch reached the stream (ISO), when the message says. */
  readonly approximateArrivalOfLastRecord?: string;
}

export type UnreadableReason =
  /** The message is not Lambda's stream failure message (not JSON, no DDBStreamBatchInfo, bad sequence numbers). */
  | 'not-a-failure-message'
  /** The records are no longer in the stream: past its 24-hour retention, or the stream or shard is gone. */
  | 'records-gone'
  /** The range could not be read to its end (the stream kept answering empty pages). */
  | 'incomplete';

export interface UnreadableFailureMessage {
  readonly reason: UnreadableReason;
  readonly detail: string;
  /** The batch's position, when the message named one. */
  readonly batch?: StreamBatchPosition;
}

/** How many unreadable messages an answer describes one by one (all are counted). */
export const UNREADABLE_DETAILS = 100;

const sequenceNumber = z.string().regex(/^\d{1,40}$/, 'a sequence number is a string of decimal digits');

const FailureMessageSchema = z.object({
  DDBStreamBatchInfo: z.object({
    streamArn: z.string().min(1),
    shardId: z.string().min(1),
    startSequenceNumber: sequenceNumber,
    endSequenceNumber: sequenceNumber,
    approximateArrivalOfLastRecord: z.string().optional(),
  }),
});

export type ParsedFailureMessage =
  | { readonly ok: true; readonly batch: StreamBatchPosition }
  | { readonly ok: false; readonly detail: string };

/** Reads one message body as Lambda's stream failure message; never throws. */
export function parseFailureMessage(body: string | undefined): ParsedFailureMessage {
  if (body === undefined) return { ok: false, detail: 'the message has no body' };
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return { ok: false, detail: 'the message is not JSON' };
  }
  const parsed = FailureMessageSchema.safeParse(json);
  if (!parsed.success) {
    return { ok: false, detail: `not a stream failure message: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(message)'}: ${i.message}`).join('; ')}` };
  }
  const batch = parsed.data.DDBStreamBatchInfo;
  if (BigInt(batch.startSequenceNumber) > BigInt(batch.endSequenceNumber)) {
    return { ok: false, detail: `the batch's start sequence number ${batch.startSequenceNumber} is past its end ${batch.endSequenceNumber}` };
  }
  const { approximateArrivalOfLastRecord, ...position } = batch;
  return { ok: true, batch: { ...position, ...(approximateArrivalOfLastRecord !== undefined && { approximateArrivalOfLastRecord }) } };
}

/** A stream record's images, in the stream's own JSON (Lambda's event) or the SDK's form. */
export interface StreamRecordImages {
  readonly NewImage?: WireItem | undefined;
  readonly OldImage?: WireItem | undefined;
}

/** The users a record names: its new and its old image's user (both when a payment moved). */
export function usersOfRecord(images: StreamRecordImages | undefined, userAttr: string): string[] {
  const users = [readText(images?.NewImage?.[userAttr]), readText(images?.OldImage?.[userAttr])];
  return [...new Set(users.filter((user): user is string => user !== undefined))];
}

/** Adds up messages and records into one answer: the two implementations share it. */
export class FailedUsersTally {
  private readonly users = new Set<string>();
  private messages = 0;
  private records = 0;
  private recordsWithoutUser = 0;
  private unreadable = 0;
  private readonly details: UnreadableFailureMessage[] = [];

  constructor(private readonly userAttr: string) {}

  message(): void {
    this.messages += 1;
  }

  record(images: StreamRecordImages | undefined): void {
    this.records += 1;
    const users = usersOfRecord(images, this.userAttr);
    if (users.length === 0) this.recordsWithoutUser += 1;
    for (const user of users) this.users.add(user);
  }

  unreadableMessage(entry: UnreadableFailureMessage): void {
    this.unreadable += 1;
    if (this.details.length < UNREADABLE_DETAILS) this.details.push(entry);
  }

  answer(source: string, capped: boolean): FailedStreamUsers {
    const answer: FailedStreamUsers = {
      userIds: [...this.users].sort(),
      messages: this.messages,
      unreadable: this.unreadable,
      records: this.records,
      recordsWithoutUser: this.recordsWithoutUser,
      capped,
      unreadableMessages: [...this.details],
    };
    if (answer.unreadable > 0 || capped) {
      const why = capped ? 'more messages than the cap; those not read name users unknown here' : 'some messages could not be read; the users they name are unknown';
      logger.warn(`stream failure records: ${why} (a full run repairs them)`, {
        source,
        messages: answer.messages,
        unreadable: answer.unreadable,
        capped,
        firstUnreadable: answer.unreadableMessages.slice(0, 5),
      });
    }
    logger.debug('stream failure records: users named', { source, ...answer, userIds: answer.userIds.length, unreadableMessages: undefined });
    return answer;
  }
}

/** The stream no longer has the records (DynamoDB Streams' answers when they are). */
const RECORDS_GONE = new Set(['TrimmedDataAccessException', 'ExpiredIteratorException', 'ResourceNotFoundException']);

class RecordsUnreadable extends Error {
  constructor(
    readonly reason: UnreadableReason,
    message: string,
  ) {
    super(message);
  }
}

export interface SqsStreamFailuresOptions {
  /**
   * How long a received message stays invisible (seconds): long enough that a second receive
   * in the same run does not see it again; after it, the message is back for the next run.
   */
  readonly visibilityTimeoutSeconds?: number;
  /** Stop receiving past this many messages (the answer says `capped`). */
  readonly maxMessages?: number;
  /** Long polling: an empty answer then means the queue is empty, not that a sampled server was. */
  readonly waitTimeSeconds?: number;
  /** GetRecords' page size (DynamoDB Streams allows 1..1000). */
  readonly recordsPerPage?: number;
  /** Consecutive empty pages of an open shard before the range counts as `incomplete`. */
  readonly maxEmptyPages?: number;
}

const DEFAULTS: Required<SqsStreamFailuresOptions> = {
  visibilityTimeoutSeconds: 15 * 60,
  maxMessages: 10_000,
  waitTimeSeconds: 2,
  recordsPerPage: 1000,
  maxEmptyPages: 5,
};

/**
 * The failure queue on AWS: an SQS queue (Lambda's on-failure destination), whose messages
 * are received and left in place, and the payments table's DynamoDB stream, which the named
 * ranges are read back from. Needs `sqs:ReceiveMessage` on the queue and
 * `dynamodb:GetShardIterator` and `dynamodb:GetRecords` on the stream; never DeleteMessage.
 */
export class SqsStreamFailures implements FailedStreamRecords {
  private readonly options: Required<SqsStreamFailuresOptions>;

  constructor(
    private readonly sqs: SQSClient,
    private readonly streams: DynamoDBStreamsClient,
    private readonly queueUrl: string,
    options: SqsStreamFailuresOptions = {},
  ) {
    this.options = { ...DEFAULTS, ...options };
  }

  async usersNamed(userAttr: string): Promise<FailedStreamUsers> {
    const tally = new FailedUsersTally(userAttr);
    const seen = new Set<string>();
    let capped = false;
    for (;;) {
      if (seen.size >= this.options.maxMessages) {
        capped = true;
        break;
      }
      const answer = await this.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: this.queueUrl,
          MaxNumberOfMessages: Math.min(10, this.options.maxMessages - seen.size),
          VisibilityTimeout: this.options.visibilityTimeoutSeconds,
          WaitTimeSeconds: this.options.waitTimeSeconds,
        }),
      );
      const messages = answer.Messages ?? [];
      if (messages.length === 0) break;
      for (const message of messages) {
        // Standard queues deliver at least once: the same message twice counts once.
        const id = message.MessageId ?? message.ReceiptHandle ?? `${seen.size}`;
        if (seen.has(id)) continue;
        seen.add(id);
        tally.message();
        await this.readMessage(message.Body, tally);
      }
    }
    return tally.answer(this.queueUrl, capped);
  }

  private async readMessage(body: string | undefined, tally: FailedUsersTally): Promise<void> {
    const parsed = parseFailureMessage(body);
    if (!parsed.ok) {
      tally.unreadableMessage({ reason: 'not-a-failure-message', detail: parsed.detail });
      return;
    }
    try {
      await this.readRange(parsed.batch, tally);
    } catch (error) {
      if (error instanceof RecordsUnreadable) {
        tally.unreadableMessage({ reason: error.reason, detail: error.message, batch: parsed.batch });
        return;
      }
      if (error instanceof Error && RECORDS_GONE.has(error.name)) {
        tally.unreadableMessage({ reason: 'records-gone', detail: `${error.name}: ${error.message}`, batch: parsed.batch });
        return;
      }
      throw error;
    }
  }

  /**
   * Reads the batch's records, from its first sequence number to its last (compared as
   * numbers: sequence numbers differ in length), or to the end of a closed shard. Records are
   * counted as they are read: a range cut short by the stream is still counted unreadable.
   */
  private async readRange(batch: StreamBatchPosition, tally: FailedUsersTally): Promise<void> {
    const end = BigInt(batch.endSequenceNumber);
    let last: string | undefined;
    let iterator: string | undefined = await this.iterator(batch, 'AT_SEQUENCE_NUMBER', batch.startSequenceNumber);
    let emptyPages = 0;
    let renewed = false;
    while (iterator) {
      let page;
      try {
        page = await this.streams.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: this.options.recordsPerPage }));
      } catch (error) {
        // An iterator lives 15 minutes: once, start again after the last record read.
        if (error instanceof Error && error.name === 'ExpiredIteratorException' && !renewed) {
          renewed = true;
          iterator = last === undefined
            ? await this.iterator(batch, 'AT_SEQUENCE_NUMBER', batch.startSequenceNumber)
            : await this.iterator(batch, 'AFTER_SEQUENCE_NUMBER', last);
          continue;
        }
        throw error;
      }
      const records = page.Records ?? [];
      emptyPages = records.length === 0 ? emptyPages + 1 : 0;
      for (const record of records) {
        const sequence = record.dynamodb?.SequenceNumber;
        if (sequence === undefined || BigInt(sequence) > end) return;
        tally.record(record.dynamodb);
        last = sequence;
        if (BigInt(sequence) === end) return;
      }
      iterator = page.NextShardIterator;
      if (iterator && emptyPages >= this.options.maxEmptyPages) {
        throw new RecordsUnreadable('incomplete', `${emptyPages} empty pages before sequence number ${batch.endSequenceNumber} (last read: ${last ?? 'none'})`);
      }
    }
    // The shard closed before the end of the range: every record there was is read.
  }

  private async iterator(batch: StreamBatchPosition, type: ShardIteratorType, sequence: string): Promise<string> {
    const answer = await this.streams.send(
      new GetShardIteratorCommand({ StreamArn: batch.streamArn, ShardId: batch.shardId, ShardIteratorType: type, SequenceNumber: sequence }),
    );
    if (!answer.ShardIterator) throw new RecordsUnreadable('records-gone', `no shard iterator for ${batch.shardId} at ${sequence}`);
    return answer.ShardIterator;
  }
}
