import { ConfiguredRetryStrategy } from '@smithy/core/retry';
import { loadConfig, LOCAL_CREDENTIALS } from '../../lambdas/core/config';
import { createDynamoClient } from '../../lambdas/core/store/dynamo-client';

const TABLES = { DYNAMODB_PAYMENTS_TABLE: 'p', DYNAMODB_USERS_TABLE: 'u' };

describe('the DynamoDB client every job uses', () => {
  test('retries each call on its own backoff: not the adaptive mode, whose rate limiter is shared by every call of the process', async () => {
    const client = createDynamoClient(loadConfig({ ...TABLES, DYNAMODB_ENDPOINT: 'http://127.0.0.1:9' }));
    const strategy = await client.config.retryStrategy();
    client.destroy();
    expect(strategy).toBeInstanceOf(ConfiguredRetryStrategy);
    expect((strategy as ConfiguredRetryStrategy).mode).toBe('standard');
  });

  describe('credentials come from the configuration (the client reads no environment itself)', () => {
    const credentialsOf = async (env: Record<string, string>, explicit?: { accessKeyId: string; secretAccessKey: string }) => {
      const client = createDynamoClient(loadConfig({ ...TABLES, ...env }), explicit);
      try {
        return (await client.config.credentials()).accessKeyId;
      } finally {
        client.destroy();
      }
    };

    test('a loopback endpoint signs with the configured pair, else with the local one', async () => {
      expect(await credentialsOf({ DYNAMODB_ENDPOINT: 'http://localhost:8000' })).toBe(LOCAL_CREDENTIALS.accessKeyId);
      expect(await credentialsOf({ DYNAMODB_ENDPOINT: 'http://[::1]:8000', AWS_ACCESS_KEY_ID: 'dev', AWS_SECRET_ACCESS_KEY: 's' })).toBe('dev');
    });

    test('AWS_PROFILE, a key with no secret, or an endpoint off this machine leave it to the SDK chain', () => {
      const loopback = { DYNAMODB_ENDPOINT: 'http://127.0.0.1:8000' };
      expect(loadConfig({ ...TABLES, ...loopback, AWS_PROFILE: 'lms' }).loopbackCredentials).toBeUndefined();
      expect(loadConfig({ ...TABLES, ...loopback, AWS_ACCESS_KEY_ID: 'dev' }).loopbackCredentials).toBeUndefined();
      expect(loadConfig({ ...TABLES, DYNAMODB_ENDPOINT: 'https://dynamodb.ap-southeast-1.amazonaws.com' }).loopbackCredentials).toBeUndefined();
      expect(loadConfig({ ...TABLES, AWS_ACCESS_KEY_ID: 'AKIA', AWS_SECRET_ACCESS_KEY: 's' }).loopbackCredentials).toBeUndefined();
    });

    test('credentials given by the caller win', async () => {
      const explicit = { accessKeyId: 'amplify', secretAccessKey: 'secret' };
      expect(await credentialsOf({ DYNAMODB_ENDPOINT: 'http://127.0.0.1:8000' }, explicit)).toBe('amplify');
      expect(await credentialsOf({ AWS_PROFILE: 'lms' }, explicit)).toBe('amplify');
    });
  });
});
