import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { ConfiguredRetryStrategy } from '@smithy/core/retry';
import { backoffDelayMs } from '../backoff';
import type { SyncConfig } from '../config';

/** Attempts per call, throttling included; at 30% throttling, 10 fail together once in 170,000 calls. */
const MAX_ATTEMPTS = 10;

/**
 * One client per process (handlers create it at module scope). Retries on throttling and
 * service errors back off exponentially with full jitter from 25 ms to 2 s, each call on its
 * own (the SDK's standard strategy starts throttling retries at 500 ms). Not `adaptive`: its
 * client-side rate limiter, shared by every call of the process, held a fix under 30%
 * throttling for 51 s that takes under 2 s without faults. Reads are paced by the run's read
 * budget instead, writes by the repair's concurrency. Credentials: `credentials` when given (an
 * app whose platform reserves the AWS_ variables passes its own), else the configuration's for a
 * loopback endpoint, else the SDK's chain.
 */
export function createDynamoClient(config: SyncConfig, credentials?: DynamoDBClientConfig['credentials']): DynamoDBClient {
  const chosen = credentials ?? config.loopbackCredentials;
  return new DynamoDBClient({
    region: config.region,
    endpoint: config.endpoint,
    retryStrategy: new ConfiguredRetryStrategy(MAX_ATTEMPTS, (attempt) => backoffDelayMs(attempt, 25)),
    ...(chosen ? { credentials: chosen } : {}),
  });
}
