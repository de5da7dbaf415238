/**
 * DTQ's own system tasks: jobs the control plane creates and every worker runs. Their task
 * types start with RESERVED_TASK_PREFIX (validate.ts), which clients may not use. Pure: the
 * names and payloads shared by the API (which creates them) and the worker (which runs them).
 */
import type { JobState, Priority } from './job.ts'

/** Retries dead letters at a rate (POST /dlq/retry): worker/dlq-retry.ts. */
export const DLQ_RETRY_TASK = 'dtq.dlq_retry'

/** Which dead letters a redrive retries (Queue.retryDlqMany). */
export interface DlqFilter {
  queue?: string
  task_type?: string
  priority?: Priority
  error_contains?: string
  older_than_ms?: number
}

export interface DlqRetryPayload {
  filter?: DlqFilter
  rate_per_sec?: number
  max?: number
  /**
   * Per queue, the DLQ's last entry id when the redrive was asked for (Queue.dlqBounds). In the
   * payload, so a run resumed after a crash walks the same entries and skips what the first run
   * requeued (those that failed again are above the bounds).
   */
  bounds?: Record<string, string>
}

/** Cancels or retries many jobs by filter at a rate (POST /jobs/bulk): worker/bulk-jobs.ts. */
export const BULK_JOBS_TASK = 'dtq.bulk_jobs'

export type BulkAction = 'cancel' | 'retry' | 'delete'

/** Which jobs a bulk operation touches (Queue.bulkJobs). */
export interface JobFilter {
  queue?: string
  /** One state; absent: every state the action applies to. */
  state?: JobState
  task_type?: string
  /** Only jobs whose last change is at least this old. */
  older_than_ms?: number
  /** Only jobs whose last error contains this text (case-insensitive). */
  error_contains?: string
}

/** The states each action applies to: what a bulk operation walks. */
export const BULK_STATES: Record<BulkAction, readonly JobState[]> = {
  cancel: ['waiting', 'queued', 'scheduled', 'retrying', 'active'],
  retry: ['failed', 'cancelled'],
  // A bulk delete removes finished jobs only (ADR 0033): never one waiting to run or held by a worker.
  delete: ['completed', 'failed', 'cancelled'],
}

export interface BulkJobsPayload {
  action: BulkAction
  filter?: JobFilter
  rate_per_sec?: number
  max?: number
}
