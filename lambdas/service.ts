import { GetItemCommand, type DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { answerUsers } from './commons/manual-run';
import { loadConfig, type SyncConfig } from './core/config';
import { createSyncDeps, type SyncDeps } from './core/deps';
import { InvalidEventError } from './core/errors';
import { applyPaymentChange, type PaymentChangeOutcome } from './core/jobs/payment-change';
import type { UserResult } from './core/jobs/user-reconcile';
import { logger } from './core/observability';
import type { WireItem } from './core/rules/attribute-values';
import { createDynamoClient } from './core/store/dynamo-client';

/**
 * The package's entry point (`require('payment-sync')`): the seed's `PaymentSyncService`, for
 * the LMS's own code (the payment webhook, the profile page, admin tools). Every call goes
 * through the same core as the Lambdas: per-user reconcile and the stream's decision, each
 * writing only through the one conditional write path.
 */

export type { SyncConfig } from './core/config';
export { ConfigError, InvalidEventError, WriteConflictError } from './core/errors';
export type { PaymentChangeOutcome } from './core/jobs/payment-change';
export type { UserResult, UserStatus } from './core/jobs/user-reconcile';
export type { Issue, IssueKind } from './core/rules/plan';
export { loadConfig };

export interface PaymentSyncServiceOptions {
  /** The contract's environment variables (README, "Configuration"); default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** A configuration already loaded (`loadConfig(...)`); takes the place of `env`. */
  readonly config?: SyncConfig;
  /**
   * Credentials for DynamoDB instead of the SDK's default chain: for a platform that reserves
   * the `AWS_` variables (Amplify: `AMPLIFY_AWS_ACCESS_KEY_ID`, `AMPLIFY_AWS_SECRET_ACCESS_KEY`).
   */
  readonly credentials?: DynamoDBClientConfig['credentials'];
}

export interface SyncUserOptions {
  /** Plan and report, write nothing (the answer's status is then `would-fix`). */
  readonly dryRun?: boolean;
}

/** A payment item as the LMS wrote it: plain JavaScript values (as the DocumentClient takes them). */
export type PaymentItem = Readonly<Record<string, unknown>>;

/** The answer to `applyPayment`: the stream's decision for the payment, or that there is no such payment. */
export type PaymentOutcome = PaymentChangeOutcome | { readonly kind: 'payment-not-found'; readonly orderId: string; readonly reason: string };

/** Outcomes that point at bad data, not a normal transition: logged as warnings, as the stream does. */
const BAD_DATA = new Set<PaymentOutcome['kind']>(['orphan-payment', 'malformed-payment', 'unknown-status', 'payment-not-found']);

function nonEmpty(name: string, value: unknown): string {
  if (typeof value !== 'string' || value.trim() === '') throw new InvalidEventError([`${name} must be a non-empty string`]);
  return value.trim();
}

/**
 * Configured once (from the environment, like every Lambda, or from `options`), with one
 * DynamoDB client for its lifetime: create it at module scope and share it across requests.
 */
export class PaymentSyncService {
  readonly config: SyncConfig;
  private readonly deps: SyncDeps;
  private readonly client: DynamoDBClient;

  /** Throws a `ConfigError` naming every bad or missing variable. */
  constructor(options: PaymentSyncServiceOptions = {}) {
    this.config = options.config ?? loadConfig(options.env ?? process.env);
    this.client = createDynamoClient(this.config, options.credentials);
    this.deps = createSyncDeps(this.config, this.client);
  }

  /**
   * Reconciles one user against all of their payments and fixes the list (grants missing
   * courses, drops duplicates, revokes only under the policy): the seed's
   * `syncUserPayments(userId)` and the sync Lambda's manual answer for one user. A failure
   * to read or write is the answer's `error` status, not a throw.
   */
  async syncUserPayments(userId: string, options: SyncUserOptions = {}): Promise<UserResult> {
    const id = nonEmpty('userId', userId);
    if (options.dryRun !== undefined && typeof options.dryRun !== 'boolean') throw new InvalidEventError(['dryRun must be true or false']);
    const answer = await answerUsers(this.deps, [id], options.dryRun ?? false, 'fix');
    return answer.results[0] as UserResult;
  }

  /** The same reconcile, read-only: every issue reported, nothing written (the seed's `validateUserData`). */
  async validateUserData(userId: string): Promise<UserResult> {
    const id = nonEmpty('userId', userId);
    const answer = await answerUsers(this.deps, [id], true, 'validate');
    return answer.results[0] as UserResult;
  }

  /**
   * For the payment webhook, after it wrote or updated a payment: applies that payment to its
   * user now, as the stream Lambda does with the payment's new image (the two can both run:
   * each is idempotent and conditional, nothing is lost or doubled). Paid grants its courses;
   * a refund or chargeback revokes them only when no other paid payment covers them and
   * REVOKE_ON_REFUND is on; anything else writes nothing.
   *
   * Give the order id (the payment is then read from the table, strongly consistent) or the
   * item just written. A Midtrans reversal (paid → `deny`) needs the payment's previous state:
   * the stream and the scheduled sync handle it. Throws on a transient failure (throttling, a
   * write conflict that outlasted its retries): answer the webhook with an error so that it is
   * retried; the stream and the hourly sync repair the user in any case.
   */
  async applyPayment(payment: string | PaymentItem): Promise<PaymentOutcome> {
    const outcome = await this.decide(payment);
    if (BAD_DATA.has(outcome.kind)) logger.warn(outcome.kind, { ...outcome, source: 'service' });
    else logger.info(outcome.kind, { ...outcome, source: 'service' });
    return outcome;
  }

  /** Closes the DynamoDB client (a test or a script that ends; a server keeps its service). */
  destroy(): void {
    this.client.destroy();
  }

  private async decide(payment: string | PaymentItem): Promise<PaymentOutcome> {
    if (typeof payment !== 'string') return applyPaymentChange(this.deps, { eventName: 'INSERT', newImage: wireItem(payment) });
    const orderId = nonEmpty('orderId', payment);
    const { paymentsTable, payment: attributes } = this.config;
    const { Item } = await this.client.send(new GetItemCommand({ TableName: paymentsTable, Key: { [attributes.id]: { S: orderId } }, ConsistentRead: true }));
    if (!Item) return { kind: 'payment-not-found', orderId, reason: `no payment ${orderId} in table ${paymentsTable}` };
    return applyPaymentChange(this.deps, { eventName: 'INSERT', newImage: Item as WireItem });
  }
}

function wireItem(payment: PaymentItem): WireItem {
  if (typeof payment !== 'object' || payment === null || Array.isArray(payment)) {
    throw new InvalidEventError(['payment must be an order id or the payment item as written']);
  }
  return marshall(payment, { removeUndefinedValues: true }) as WireItem;
}
