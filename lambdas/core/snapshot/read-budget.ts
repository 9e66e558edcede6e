import { sleep } from '../backoff';

/**
 * A token bucket in read capacity units per second. A scan page's cost is only known after
 * it is read (`ConsumedCapacity`), so each page spends what it consumed and the next page
 * waits until the bucket is back above zero: over a run the rate holds to the budget.
 * Undefined = unlimited (the local default).
 */
export class ReadBudget {
  private tokens: number;
  private refilledAt: number;

  constructor(
    readonly unitsPerSecond: number | undefined,
    private readonly now: () => number = Date.now,
    private readonly wait: (ms: number) => Promise<void> = sleep,
  ) {
    this.tokens = unitsPerSecond ?? 0;
    this.refilledAt = now();
  }

  private refill(): void {
    if (this.unitsPerSecond === undefined) return;
    const at = this.now();
    // At most one second of budget banked, so an idle spell cannot become a burst.
    this.tokens = Math.min(this.unitsPerSecond, this.tokens + ((at - this.refilledAt) / 1000) * this.unitsPerSecond);
    this.refilledAt = at;
  }

  /** Waits until the bucket holds a positive balance again. */
  async ready(): Promise<void> {
    if (this.unitsPerSecond === undefined) return;
    this.refill();
    if (this.tokens >= 0) return;
    await this.wait((-this.tokens / this.unitsPerSecond) * 1000);
    this.refill();
  }

  spend(units: number): void {
    if (this.unitsPerSecond === undefined) return;
    this.refill();
    this.tokens -= units;
  }
}
