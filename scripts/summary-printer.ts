import type { FullRunResult } from '../lambdas/core/jobs/full-run/finalize';
import { ISSUE_KINDS } from '../lambdas/core/rules/plan';
import type { RunSummary } from '../lambdas/core/report/report';

const ISSUE_MEANING: Record<(typeof ISSUE_KINDS)[number], string> = {
  missing: 'paid, not in the list (fix: grant)',
  duplicate: 'listed twice (fix: keep the first)',
  revoked: 'refunded/charged back, still listed (removed only with REVOKE_ON_REFUND)',
  unbacked: 'listed with no paid payment (info; never removed)',
  'malformed-entry': 'list entry that is no course id (left as is)',
  'orphan-payment': 'paid, but the user does not exist (never created)',
  'malformed-payment': 'payment with no user id or no course id',
  'unknown-status': 'payment whose status no rule knows (grants nothing)',
  error: 'user the run could not read or write (see detail)',
};

/** A readable summary: counts, issues by kind with what each means, and where the report is. */
export function printSummary(summary: RunSummary & Record<string, unknown>, folder: string, say: (line: string) => void): void {
  const { counts } = summary;
  const status = typeof summary.status === 'string' ? ` · ${summary.status}` : '';
  say(`run ${summary.runId} · ${summary.mode}${summary.dryRun ? ' · dry run (nothing written)' : ''}${status}`);
  const changes = summary.changes as FullRunResult['changes'];
  if (changes) {
    say(`  read only what changed: writes from ${changes.from} to ${changes.to} (since run ${changes.sinceRunId}, less the overlap): ${changes.changeLines} changed items`);
    say(`  ${changes.candidates} candidates: ${changes.fromPayments} from payments, ${changes.fromUsers} from users' lists, ${changes.fromValidation} from ${changes.validationRunId ? `validation ${changes.validationRunId}` : 'a validation'}, ${changes.fromFailures} from the stream's failures`);
    if (changes.unreadableFailures > 0) say(`  ${changes.unreadableFailures} failure records are no longer in the stream: the weekly full fix covers their users (purge the queue after it)`);
    say(`  confirmed ${counts.usersScanned} users (fresh read each), read ${counts.paymentsScanned} of their payments`);
  } else {
    if (typeof summary.fullBecause === 'string') say(`  a full run: ${summary.fullBecause}`);
    say(`  scanned ${counts.paymentsScanned} payments, ${counts.usersScanned} users${typeof summary.snapshotAt === 'string' ? ` (snapshot of ${summary.snapshotAt})` : ''}`);
  }
  say(`  fixed ${counts.usersFixed} users: +${counts.coursesAdded} courses, -${counts.coursesRemoved} revoked, -${counts.duplicatesRemoved} duplicates`);
  // What this run did about each fixable kind, so a fix's summary does not read like a validation's.
  const done: Partial<Record<(typeof ISSUE_KINDS)[number], string>> = summary.dryRun
    ? {}
    : { missing: `${counts.coursesAdded} granted`, duplicate: `${counts.duplicatesRemoved} removed`, revoked: `${counts.coursesRemoved} revoked` };
  for (const kind of ISSUE_KINDS) {
    if (summary.issues[kind] === 0) continue;
    const outcome = done[kind] === undefined ? '' : ` · ${done[kind]} by this run`;
    say(`  ${String(summary.issues[kind]).padStart(5)} ${kind.padEnd(17)} ${ISSUE_MEANING[kind]}${outcome}`);
  }
  if (ISSUE_KINDS.every((kind) => summary.issues[kind] === 0)) say('  no issues');
  if (typeof summary.inFlight === 'number' && summary.inFlight > 0) say(`  ${summary.inFlight} payments changed within the grace window were left to the stream`);
  if (summary.capped) say(`  CAPPED: the change cap stopped this run writing; the report lists what was left${summary.trigger === 'schedule' ? '. Scheduled fixes are now held (report only) until `npm run payment-release-hold`' : ''}`);
  if (summary.held) say('  HELD: a capped scheduled run set the hold, so this scheduled fix only reported; read that run\'s report, then `npm run payment-release-hold`');
  if (summary.status === 'failed') say(`  FAILED: ${String(summary.error ?? 'see the log')}; the lock is released and a rerun starts over`);
  if (summary.revocationCapReached) say('  REVOCATION CAP reached: further revocations were only reported');
  say(`  report: ${folder}/ (summary.json, issues.jsonl, changes.jsonl)`);
}
