import type { Context } from 'aws-lambda';
import { loadConfig } from '../../lambdas/core/config';
import { ConfigError } from '../../lambdas/core/errors';

export type Handler = (event: unknown, context: Context) => Promise<unknown>;

/** Loads a handler as Lambda would: a fresh module whose cold start reads the environment. */
export async function loadHandler(path: string, env: Record<string, string>): Promise<Handler> {
  Object.assign(process.env, env, { POWERTOOLS_METRICS_DISABLED: 'true', LOG_LEVEL: 'ERROR' });
  let handler: Handler | undefined;
  await jest.isolateModulesAsync(async () => {
    handler = ((await import(path)) as { handler: Handler }).handler;
  });
  return handler as Handler;
}

/** The ConfigError loadConfig throws for env, or a failure when it does not throw one. */
export function configError(env: Record<string, string | undefined>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}
