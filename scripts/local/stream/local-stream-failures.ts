import { readFile } from 'node:fs/promises';
import { FailedUsersTally, parseFailureMessage } from '../../../lambdas/core/stream-failures/failed-users';
import type { FailedStreamRecords, FailedStreamUsers, StreamBatchPosition } from '../../../lambdas/core/stream-failures/failed-users';
import type { ShardLog } from './shard-log';

/**
 * The failure queue, locally: the JSONL file the local event source mapping writes discarded
 * batches to (`JsonlFailureDestination`, one message a line), read back against the local
 * stream's shard log, as SqsStreamFailures reads the SQS queue against DynamoDB Streams.
 *
 * The shard log lives as long as its process; a message naming a shard of an earlier process
 * (the data directory keeps the failure file between commands) finds its records gone, as a
 * message older than the stream's 24 hours does on AWS: it is counted unreadable. The file is
 * only read, never emptied.
 */
export class LocalStreamFailures implements FailedStreamRecords {
  constructor(
    private readonly failureFile: string,
    private readonly shardLog: ShardLog,
  ) {}

  async usersNamed(userAttr: string): Promise<FailedStreamUsers> {
    const tally = new FailedUsersTally(userAttr);
    const text = await readFile(this.failureFile, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return '';
      throw error;
    });
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      tally.message();
      const parsed = parseFailureMessage(line);
      if (!parsed.ok) {
        tally.unreadableMessage({ reason: 'not-a-failure-message', detail: parsed.detail });
        continue;
      }
      const gone = this.missing(parsed.batch);
      if (gone) {
        tally.unreadableMessage({ reason: 'records-gone', detail: gone, batch: parsed.batch });
        continue;
      }
      for (const record of this.shardLog.between(parsed.batch.startSequenceNumber, parsed.batch.endSequenceNumber)) {
        tally.record(record.dynamodb);
      }
    }
    return tally.answer(this.failureFile, false);
  }

  /** Why the batch's records cannot be read from this shard log, or undefined when they can. */
  private missing(batch: StreamBatchPosition): string | undefined {
    const log = this.shardLog;
    if (batch.streamArn !== log.streamArn || batch.shardId !== log.shardId) {
      return `shard ${batch.shardId} of ${batch.streamArn} is not the local stream's (${log.shardId}): an earlier process's stream, gone`;
    }
    const [first] = log.between(batch.startSequenceNumber, batch.startSequenceNumber);
    if (!first) return `no record at sequence number ${batch.startSequenceNumber} in ${log.shardId}`;
    return undefined;
  }
}
