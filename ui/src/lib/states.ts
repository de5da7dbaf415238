/** A job's states in lifecycle order (app/src/queue/job.ts `STATES`): filters, tiles, badges. */
export const JOB_STATES = [
  'waiting',
  'held',
  'queued',
  'scheduled',
  'active',
  'retrying',
  'completed',
  'failed',
  'cancelled',
] as const
