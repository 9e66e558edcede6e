/**
 * How the stream Lambda reads the payments stream, shared by the CDK mapping and the local
 * one so that tests exercise the deployed behaviour. Filters come from `filter-criteria.ts`.
 */
export const STREAM_EVENT_SOURCE_SETTINGS = {
  batchSize: 100,
  /** A grant should land within seconds of the payment; do not hold records back. */
  maximumBatchingWindowInSeconds: 0,
  /** Transient failures (throttling, conflicts) clear within a few retries; past them the hourly sync heals. */
  maximumRetryAttempts: 10,
  /** Older than an hour, the scheduled sync has already had its chance; the destination keeps the position. */
  maximumRecordAgeInSeconds: 3600,
  /** Isolates a record that makes the function throw instead of retrying its whole batch. */
  bisectBatchOnFunctionError: true,
  reportBatchItemFailures: true,
} as const;
