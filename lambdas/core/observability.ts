import { Logger, LogLevelThreshold, type LogItem } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { loadObservabilityConfig } from './config';

/** Defined in config.ts with the rest of the environment contract; re-exported for the health handler. */
export { METRICS_NAMESPACE, SERVICE_NAME } from './config';

const settings = loadObservabilityConfig();

/** A log line as a command line prints it for a person: level, message and the line's own fields. */
export interface PrintedLogLine {
  readonly level: string;
  readonly message: string;
  readonly fields: Readonly<Record<string, unknown>>;
}

/** Set by the command line for its run; module-level, since Powertools prints from inside its own constructor. */
let printer: ((line: PrintedLogLine) => void) | undefined;

/**
 * Powertools' logger, whose lines a command line can take over (its terminal and log file).
 * The Lambdas never set a printer: their lines stay Powertools' JSON for CloudWatch.
 */
class SyncLogger extends Logger {
  printTo(print: ((line: PrintedLogLine) => void) | undefined): void {
    printer = print;
  }

  protected override printLog(logLevel: number, log: LogItem): void {
    if (!printer) return super.printLog(logLevel, log);
    log.prepareForPrint();
    const { level, message, ...fields } = log.getAttributes();
    // The time is the printer's to write and the service is the process itself; the line's own fields stay.
    for (const key of ['timestamp', 'service', 'sampling_rate']) delete fields[key];
    printer({ level: String(level), message: String(message), fields });
  }
}

/** One logger and one metrics buffer per process; handlers flush metrics once per invocation. */
export const logger = new SyncLogger({ serviceName: settings.serviceName, logLevel: settings.logLevel });

/** For debug lines whose fields cost something to build (one per user): build them only when they print. */
export const debugEnabled = (): boolean => logger.level <= LogLevelThreshold.DEBUG;

export const metrics = new Metrics({ namespace: settings.metricsNamespace, serviceName: settings.serviceName });
