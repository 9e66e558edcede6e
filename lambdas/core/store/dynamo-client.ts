import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ConfiguredRetryStrategy } from '@smithy/core/retry';
import { backoffDelayMs } from '../backoff';
import type { SyncConfig } from '../config';

/** Static credentials for a loopback endpoint (the embedded dynalite checks none). */
const LOOPBACK_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };

/** Attempts per call, throttling included; at 30% throttling, 10 fail together once in 170,000 calls. */
const MAX_ATTEMPTS = 10;

/**
 * One client per process (handlers create it at module scope). Retries on throttling and
 * service errors back off exponentially with full jitter from 25 ms to 2 s, each call on its
 * own (the SDK's standard strategy starts throttling retries at 500 ms). Not `adaptive`: its
 * client-side rate limiter, shared by every call of the process, held a fix under 30%
 * throttling for 51 s that takes under 2 s without faults. Reads are paced by the run's read
 * budget instead, writes by the repair's concurrency.
 */
export function createDynamoClient(config: SyncConfig): DynamoDBClient {
  const loopback = config.endpoint !== undefined && /^https?:\/\/(127\.|localhost|\[::1\])/.test(config.endpoint);
  const hasCredentials = Boolean(process.env.AWS_ACCESS_KEY_ID || process.env.AWS_PROFILE);
  return new DynamoDBClient({
    region: config.region,
    endpoint: config.endpoint,
    retryStrategy: new ConfiguredRetryStrategy(MAX_ATTEMPTS, (attempt) => backoffDelayMs(attempt, 25)),
    ...(loopback && !hasCredentials ? { credentials: LOOPBACK_CREDENTIALS } : {}),
  });
}
