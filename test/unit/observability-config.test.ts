import { loadConfig, loadObservabilityConfig, METRICS_NAMESPACE, SERVICE_NAME } from '../../lambdas/core/config';
import * as lib from '../../lib/config';

const TABLES = { DYNAMODB_PAYMENTS_TABLE: 'p', DYNAMODB_USERS_TABLE: 'u' };

describe("the logger's and metrics' configuration", () => {
  test('defaults to the one service name and namespace, which the stack also sets and alarms on', () => {
    expect(loadObservabilityConfig({})).toEqual({ serviceName: 'payment-sync', metricsNamespace: 'PaymentSync', logLevel: 'INFO' });
    expect(lib.SERVICE_NAME).toBe(SERVICE_NAME);
    expect(lib.METRICS_NAMESPACE).toBe(METRICS_NAMESPACE);
  });

  test('POWERTOOLS_SERVICE_NAME and POWERTOOLS_METRICS_NAMESPACE are read, trimmed, blank = unset; loadConfig carries the same', () => {
    const env = { POWERTOOLS_SERVICE_NAME: ' lms-sync ', POWERTOOLS_METRICS_NAMESPACE: '  ', LOG_LEVEL: 'warn' };
    expect(loadObservabilityConfig(env)).toEqual({ serviceName: 'lms-sync', metricsNamespace: 'PaymentSync', logLevel: 'WARN' });
    expect(loadConfig({ ...TABLES, ...env }).observability).toEqual({ serviceName: 'lms-sync', metricsNamespace: 'PaymentSync' });
  });

  test('never fails: the logger exists before the configuration is validated, and a bad LOG_LEVEL is loadConfig’s error', () => {
    expect(loadObservabilityConfig({ LOG_LEVEL: 'loud' }).logLevel).toBe('INFO');
    expect(() => loadConfig({ ...TABLES, LOG_LEVEL: 'loud' })).toThrow(/LOG_LEVEL/);
  });
});
