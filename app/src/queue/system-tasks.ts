/**
 * DTQ's own system tasks: jobs the control plane creates and every worker runs. Their task
 * types start with RESERVED_TASK_PREFIX (validate.ts), which clients may not use. Pure: the
 * names and payloads shared by the API (which creates them) and the worker (which runs them).
 */
/** Retries dead letters at a rate (POST /dlq/retry): worker/dlq-retry.ts. */
export const DLQ_RETRY_TASK = 'dtq.dlq_retry'

/** Which dead letters a redrive retries (Queue.retryDlqMany). */
export interface DlqFilter {
  queue?: string
  task_type?: string
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
