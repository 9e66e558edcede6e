import type { ChildResult, TableFigures } from './child';
import type { HourlyFigures } from './hourly';

/**
 * Prices assumed for the cost model (on-demand, us-east-1 and most regions, as of 2025; check
 * the price list of your region): they are inputs, not measurements.
 */
export const PRICES = {
  /** Per read request unit (4 KB strongly consistent read, or two eventually consistent ones). */
  readRequestUnit: 0.125 / 1e6,
  /** Per write request unit (1 KB written). */
  writeRequestUnit: 0.625 / 1e6,
  /** ExportTableToPointInTime, per GB of table size; it reads no table capacity. */
  exportPerGb: 0.1,
  /**
   * ExportTableToPointInTime with `ExportType: INCREMENTAL_EXPORT`, per GB of changed data it
   * processes (incremental exports launched September 2023 at the full export's rate); it reads
   * no table capacity either.
   */
  incrementalExportPerGb: 0.1,
  /** The smallest size an incremental export is billed for, MiB, per export: an assumption, not checked against a price list from this machine. */
  incrementalExportMinimumMb: 10,
};

/** Hours in the month the monthly figures use (365 × 24 / 12). */
export const HOURS_PER_MONTH = 730;

/** The read budget the scan-mode minutes are given at. */
export const READ_BUDGET_RCU_PER_SECOND = 4_000;
/** DynamoDB counts this much storage overhead per item in a table's size. */
const ITEM_OVERHEAD_BYTES = 100;
const GIB = 1024 ** 3;

export interface CostModel {
  readonly payments: number;
  readonly users: number;
  readonly scale: number;
  readonly averageItemBytes: { readonly payments: number; readonly users: number };
  readonly scan: {
    /** The measured run's consumed capacity, scaled. */
    readonly readUnits: number;
    /** The same from the items' sizes: Σ size / 4 KB / 2 (eventually consistent). */
    readonly readUnitsFromSizes: number;
    readonly minutesAtBudget: number;
    readonly onDemandDollars: number;
  };
  readonly export: { readonly tableGib: number; readonly tableGibWithOverhead: number; readonly dollars: number; readonly dollarsWithOverhead: number };
  readonly repair: {
    readonly usersNeedingFix: number;
    readonly updateItems: number;
    readonly writeUnits: number;
    readonly getItems: number;
    readonly queries: number;
    readonly readUnits: number;
    readonly dollars: number;
  };
}

const sizes = (tables: Record<'payments' | 'users', TableFigures>) => ({
  payments: tables.payments.dynamoBytes / Math.max(1, tables.payments.items),
  users: tables.users.dynamoBytes / Math.max(1, tables.users.items),
});

/**
 * Scales the measured W1 run to `targetPayments` payments with users in W1's proportion: every
 * count the model uses (items, capacity, calls) grows linearly with the tables, so each is the
 * measured figure times `targetPayments / measured payments`.
 */
export function costModel(validate: ChildResult, fix: ChildResult, targetPayments: number, runsTable?: string): CostModel {
  const run = validate.fullRun;
  if (!run) throw new Error('the cost model needs a validate run');
  const measuredPayments = run.tables.payments.items;
  const scale = targetPayments / measuredPayments;
  const users = run.tables.users.items * scale;
  const average = sizes(run.tables);
  const readUnits = run.consumedCapacity * scale;
  const bytes = run.tables.payments.dynamoBytes + run.tables.users.dynamoBytes;
  const readUnitsFromSizes = ((bytes / 4096) * 0.5) * scale;
  const items = run.tables.payments.items + run.tables.users.items;
  const tableGib = (bytes * scale) / GIB;
  const tableGibWithOverhead = ((bytes + items * ITEM_OVERHEAD_BYTES) * scale) / GIB;
  // The run's own records (lock, run record, each repair batch's read and usage update) are not the repair's.
  const runs = runsTable === undefined ? undefined : fix.tables?.[runsTable];
  const data = (figures: Record<string, number>, own: Record<string, number> | undefined, command: string): number => (figures[command] ?? 0) - (own?.[command] ?? 0);
  const repairReads = (data(fix.units, runs?.units, 'GetItemCommand') + data(fix.units, runs?.units, 'QueryCommand')) * scale;
  const repairWrites = data(fix.units, runs?.units, 'UpdateItemCommand') * scale;
  return {
    payments: targetPayments,
    users,
    scale,
    averageItemBytes: average,
    scan: {
      readUnits,
      readUnitsFromSizes,
      minutesAtBudget: readUnits / READ_BUDGET_RCU_PER_SECOND / 60,
      onDemandDollars: readUnits * PRICES.readRequestUnit,
    },
    export: { tableGib, tableGibWithOverhead, dollars: tableGib * PRICES.exportPerGb, dollarsWithOverhead: tableGibWithOverhead * PRICES.exportPerGb },
    repair: {
      usersNeedingFix: run.usersNeedingFix * scale,
      updateItems: data(fix.calls, runs?.calls, 'UpdateItemCommand') * scale,
      writeUnits: repairWrites,
      getItems: data(fix.calls, runs?.calls, 'GetItemCommand') * scale,
      queries: data(fix.calls, runs?.calls, 'QueryCommand') * scale,
      readUnits: repairReads,
      dollars: repairWrites * PRICES.writeRequestUnit + repairReads * PRICES.readRequestUnit,
    },
  };
}

/** The hourly sync, as the model prices it: one hour's changes at `changedFraction` of the payments. */
export interface HourlyCostModel {
  readonly changedFraction: number;
  /** Target changed payments per hour / the payment lines the measured sync exported. */
  readonly scale: number;
  readonly changedPayments: number;
  /** User items written in the hour (the measured lists, scaled in the same proportion to the payments). */
  readonly changedUsers: number;
  readonly candidates: number;
  /** The candidates' reconcile: consistent GetItem + index Query each, and the repairs' writes (measured, scaled). */
  readonly getItems: number;
  readonly queries: number;
  readonly readUnits: number;
  readonly writeUnits: number;
  /** The two incremental exports' data: changed items' new images, plus old images where the item existed before. */
  readonly exportGib: { readonly payments: number; readonly users: number; readonly total: number };
  /** If every payment write also wrote its user (the stream's grant): the users' export grows by that many items, with old images. */
  readonly exportGibWithGrants: number;
  /** Billed size with the per-export minimum, one export per table. */
  readonly billedExportGib: number;
  readonly dollars: { readonly reads: number; readonly writes: number; readonly export: number; readonly total: number };
  /** The full hourly pass it replaces: the scan's read units or a full export's size, every hour. */
  readonly full: { readonly scanReadUnits: number; readonly scanDollars: number; readonly exportGib: number; readonly exportGibWithOverhead: number; readonly exportDollars: number; readonly exportDollarsWithOverhead: number };
  /** Hourly by changes against the full scan: read units, per hour. */
  readonly readUnitRatio: number;
}

const MB = 1024 ** 2;

/**
 * The hourly sync by changes at 10 million payments: the measured W1 sync (planted drift of
 * about 0.1% of W1's payments) scaled so that `changedFraction` of the target's payments
 * changed in the hour, with the item sizes of the validate's snapshot. What it reads grows with
 * what changed, not with the tables: candidates × (one consistent GetItem + one index Query).
 */
export function hourlyCostModel(validate: ChildResult, hourly: HourlyFigures, targetPayments: number, changedFraction = 0.001): HourlyCostModel {
  const base = costModel(validate, validate, targetPayments);
  const sync = hourly.hourly;
  const exported = hourly.exported;
  const scale = (targetPayments * changedFraction) / Math.max(1, exported.payments.lines);
  const size = base.averageItemBytes;
  // Changed items' images in the export, at the snapshot's average sizes: one new image per line, one old image per line whose item existed before.
  const bytes = (figures: HourlyFigures['exported']['payments'], average: number) => (figures.lines + figures.withOldImage) * average * scale;
  const paymentsGib = bytes(exported.payments, size.payments) / GIB;
  const usersGib = bytes(exported.users, size.users) / GIB;
  const grantsGib = (targetPayments * changedFraction * size.users * 2) / GIB;
  const minimumGib = (PRICES.incrementalExportMinimumMb * MB) / GIB;
  const billedExportGib = Math.max(minimumGib, paymentsGib) + Math.max(minimumGib, usersGib);
  // Reads and writes on the two synced tables (the run table's few calls are left out).
  const empty = { calls: {}, units: {}, itemsRead: 0, readUnits: 0, writeUnits: 0 };
  const onData = [sync.meter.tables[hourly.tables.payments] ?? empty, sync.meter.tables[hourly.tables.users] ?? empty];
  const readUnits = onData.reduce((sum, table) => sum + table.readUnits, 0) * scale;
  const writeUnits = onData.reduce((sum, table) => sum + table.writeUnits, 0) * scale;
  const reads = readUnits * PRICES.readRequestUnit;
  const writes = writeUnits * PRICES.writeRequestUnit;
  const exportDollars = billedExportGib * PRICES.incrementalExportPerGb;
  return {
    changedFraction,
    scale,
    changedPayments: exported.payments.lines * scale,
    changedUsers: exported.users.lines * scale,
    candidates: (sync.changes?.candidates ?? 0) * scale,
    getItems: (sync.meter.tables[hourly.tables.users]?.calls.GetItemCommand ?? 0) * scale,
    queries: (sync.meter.tables[hourly.tables.payments]?.calls.QueryCommand ?? 0) * scale,
    readUnits,
    writeUnits,
    exportGib: { payments: paymentsGib, users: usersGib, total: paymentsGib + usersGib },
    exportGibWithGrants: paymentsGib + usersGib + grantsGib,
    billedExportGib,
    dollars: { reads, writes, export: exportDollars, total: reads + writes + exportDollars },
    full: {
      scanReadUnits: base.scan.readUnits,
      scanDollars: base.scan.onDemandDollars,
      exportGib: base.export.tableGib,
      exportGibWithOverhead: base.export.tableGibWithOverhead,
      exportDollars: base.export.dollars,
      exportDollarsWithOverhead: base.export.dollarsWithOverhead,
    },
    readUnitRatio: readUnits / base.scan.readUnits,
  };
}
