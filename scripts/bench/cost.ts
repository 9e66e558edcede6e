import type { ChildResult, TableFigures } from './child';

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
};

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
export function costModel(validate: ChildResult, fix: ChildResult, targetPayments: number): CostModel {
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
  const repairReads = ((fix.units.GetItemCommand ?? 0) + (fix.units.QueryCommand ?? 0)) * scale;
  const repairWrites = (fix.units.UpdateItemCommand ?? 0) * scale;
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
      updateItems: (fix.calls.UpdateItemCommand ?? 0) * scale,
      writeUnits: repairWrites,
      getItems: (fix.calls.GetItemCommand ?? 0) * scale,
      queries: (fix.calls.QueryCommand ?? 0) * scale,
      readUnits: repairReads,
      dollars: repairWrites * PRICES.writeRequestUnit + repairReads * PRICES.readRequestUnit,
    },
  };
}
