import { z } from 'zod';
import { InvalidEventError } from '../core/errors';
import { RUN_ID_PATTERN } from '../core/report/report';

/** Beyond this a manual call should be a full run, not a list of ids. */
export const MAX_USER_IDS_PER_CALL = 1000;

const userIds = z
  .array(z.string().trim().min(1, 'user ids must be non-empty strings'))
  .min(1, 'userIds must name at least one user')
  .max(MAX_USER_IDS_PER_CALL, `at most ${MAX_USER_IDS_PER_CALL} user ids per call; for more, run the full reconciliation (payment-fix / the scheduled run)`);

export const ManualSyncEventSchema = z.strictObject({ userIds, dryRun: z.boolean().optional() });
export const ManualValidateEventSchema = z.strictObject({ userIds: userIds.optional(), deep: z.boolean().optional() });
/** Undo a run from its change log: `{ "undo": "<run id>", "dryRun"?: true }`. */
export const ManualUndoEventSchema = z.strictObject({
  undo: z.string().regex(RUN_ID_PATTERN, 'undo must be a run id (letters, digits, ".", "_", "-"; no slashes)'),
  dryRun: z.boolean().optional(),
});
/** Start a full run by hand: `{ "run": "fix" | "migrate" | "cron-sync", "dryRun"?, "maxChanges"? }`. */
export const ManualRunEventSchema = z.strictObject({
  run: z.enum(['fix', 'migrate', 'cron-sync']),
  dryRun: z.boolean().optional(),
  maxChanges: z.number().int().min(0).optional(),
});
/** Lift the hold a capped scheduled run set: `{ "releaseHold": true }`. */
export const ReleaseHoldEventSchema = z.strictObject({ releaseHold: z.literal(true) });
/** The stack's schedules other than the hourly sync say which run they start: `{ "scheduled": "weekly-fix" }`. */
export const ScheduleInputSchema = z.strictObject({ scheduled: z.enum(['weekly-fix']) });
/**
 * What a schedule delivers when its target gets no custom input: EventBridge Scheduler (the
 * stack's, for its time zones) says `aws.scheduler`, an EventBridge rule says `aws.events`.
 */
export const ScheduledEventSchema = z.looseObject({
  'detail-type': z.literal('Scheduled Event'),
  source: z.enum(['aws.scheduler', 'aws.events']),
});

export type ManualSyncEvent = z.infer<typeof ManualSyncEventSchema>;
export type ManualValidateEvent = z.infer<typeof ManualValidateEventSchema>;
export type ManualUndoEvent = z.infer<typeof ManualUndoEventSchema>;
export type ManualRunEvent = z.infer<typeof ManualRunEventSchema>;

export function isScheduledEvent(event: unknown): boolean {
  return ScheduledEventSchema.safeParse(event).success;
}

/** Parses a manual event or throws an InvalidEventError naming every bad field; nothing has been read or written yet. */
export function parseEvent<T>(schema: z.ZodType<T>, event: unknown): T {
  const parsed = schema.safeParse(event);
  if (parsed.success) return parsed.data;
  throw new InvalidEventError(
    parsed.error.issues.map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : 'event'}: ${issue.message}`),
  );
}
