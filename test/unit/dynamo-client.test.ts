import { ConfiguredRetryStrategy } from '@smithy/core/retry';
import { loadConfig } from '../../lambdas/core/config';
import { createDynamoClient } from '../../lambdas/core/store/dynamo-client';

describe('the DynamoDB client every job uses', () => {
  test('retries each call on its own backoff: not the adaptive mode, whose rate limiter is shared by every call of the process', async () => {
    const client = createDynamoClient(loadConfig({ DYNAMODB_PAYMENTS_TABLE: 'p', DYNAMODB_USERS_TABLE: 'u', DYNAMODB_ENDPOINT: 'http://127.0.0.1:9' }));
    const strategy = await client.config.retryStrategy();
    client.destroy();
    expect(strategy).toBeInstanceOf(ConfiguredRetryStrategy);
    expect((strategy as ConfiguredRetryStrategy).mode).toBe('standard');
  });
});
