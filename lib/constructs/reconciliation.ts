import { Duration, Size } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { fullRunEnvironment, type DeployConfig } from '../config';
import type { PaymentTables } from './payment-tables';
import { SyncFunction, type SharedFunctionProps, type SyncFunctionProps } from './sync-function';

/** A full run joins a snapshot of both tables in DuckDB; 60% of this goes to the join (JOIN_MEMORY_MB). */
const FULL_RUN_MEMORY_MB = 3008;

export interface ReconciliationProps {
  readonly config: DeployConfig;
  readonly tables: PaymentTables;
  readonly functionDefaults: SharedFunctionProps;
}

/**
 * Full reconciliation, the safety net under the stream: an hourly sync that repairs drift
 * and a daily read-only validation that reports it. For now each scheduled run is one
 * Lambda invocation that ends cleanly when its time budget runs out; the Step Functions
 * run (run records, report bucket, segment workers) replaces the schedule targets here.
 */
export class Reconciliation extends Construct {
  readonly sync: SyncFunction;
  readonly validate: SyncFunction;

  constructor(scope: Construct, id: string, props: ReconciliationProps) {
    super(scope, id);
    const { config, tables, functionDefaults } = props;
    const fullRun: Pick<SyncFunctionProps, 'memorySize' | 'ephemeralStorageSize' | 'timeout' | 'environment' | 'usesDuckDb'> = {
      memorySize: FULL_RUN_MEMORY_MB,
      // /tmp holds the run's scan snapshot and the join's database and spill files.
      ephemeralStorageSize: Size.gibibytes(4),
      timeout: Duration.minutes(15),
      environment: fullRunEnvironment(config, tables.names, FULL_RUN_MEMORY_MB),
      usesDuckDb: true,
    };

    this.sync = new SyncFunction(this, 'SyncFunction', {
      ...functionDefaults,
      ...fullRun,
      handler: 'sync',
      description: 'payment-sync: scheduled full sync, migration and manual per-user fixes',
    });
    tables.grantFullRead(this.sync.role);
    tables.grantUserCoursesUpdate(this.sync.role);
    this.sync.addSchedule('Schedule', {
      expression: config.schedules.sync,
      timeZone: config.schedules.timeZone,
      description: 'payment-sync: scheduled full sync (repairs drift the stream missed)',
    });

    // Read-only by its role: no write on either table, whatever the event asks.
    this.validate = new SyncFunction(this, 'ValidateFunction', {
      ...functionDefaults,
      ...fullRun,
      handler: 'validate',
      description: 'payment-sync: scheduled validation report and manual per-user checks (read-only)',
    });
    tables.grantFullRead(this.validate.role);
    this.validate.addSchedule('Schedule', {
      expression: config.schedules.validate,
      timeZone: config.schedules.timeZone,
      description: 'payment-sync: scheduled validation report (read-only)',
    });
  }
}
