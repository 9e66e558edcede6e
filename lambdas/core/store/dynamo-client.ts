import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { SyncConfig } from '../config';

/** Static credentials for a loopback endpoint (the embedded dynalite checks none). */
const LOOPBACK_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };

export interface ClientOptions {
  /** SDK attempts per call, throttling included; the SDK backs off between them. */
  readonly maxAttempts?: number;
}

/**
 * One client per process (handlers create it at module scope). Adaptive retry mode adds
 * client-side rate limiting on throttling, which matters for parallel scans.
 */
export function createDynamoClient(config: SyncConfig, options: ClientOptions = {}): DynamoDBClient {
  const loopback = config.endpoint !== undefined && /^https?:\/\/(127\.|localhost|\[::1\])/.test(config.endpoint);
  const hasCredentials = Boolean(process.env.AWS_ACCESS_KEY_ID || process.env.AWS_PROFILE);
  return new DynamoDBClient({
    region: config.region,
    endpoint: config.endpoint,
    maxAttempts: options.maxAttempts ?? 8,
    retryMode: 'adaptive',
    ...(loopback && !hasCredentials ? { credentials: LOOPBACK_CREDENTIALS } : {}),
  });
}
