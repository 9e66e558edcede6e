import { loadConfig } from '../core/config';
import { createSyncDeps } from '../core/deps';
import { createStreamHandler } from './stream-batch';

/** Config and clients live for the container's lifetime; a bad environment fails the cold start, loudly. */
const deps = createSyncDeps(loadConfig());

/** DynamoDB stream batch of `lms-payments` → `{ batchItemFailures }`. */
export const handler = createStreamHandler(deps);
