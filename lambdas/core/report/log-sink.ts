import type { Logger } from '@aws-lambda-powertools/logger';
import type { ChangeLine, IssueLine, ReportSink } from './report';

/** Report lines as structured logs: the audit trail of a run inside Lambda. */
export class LogSink implements ReportSink {
  constructor(private readonly logger: Logger) {}
  issue(line: IssueLine): void {
    this.logger.info('issue', { report: 'issue', ...line });
  }
  change(line: ChangeLine): void {
    this.logger.info('change', { report: 'change', ...line });
  }
}
