/**
 * The handler of the system task `dtq.dlq_retry` (POST /dlq/retry): retries dead letters at a
 * rate on a worker, so the redrive is durable, paced and visible like any job.
 */
import type { Queue } from '../queue/queue.ts'
import type { Handler } from './handlers.ts'

export interface DlqRetryPayload {
  filter?: Parameters<Queue['retryDlqMany']>[0]
  rate_per_sec?: number
  max?: number
  /**
   * Per queue, the DLQ's last entry id when the redrive was asked for (Queue.dlqBounds). In the
   * payload, so a run resumed after a crash walks the same entries and skips what the first run
   * requeued (those that failed again are above the bounds).
   */
  bounds?: Record<string, string>
}

export function dlqRetryHandler(admin: Queue): Handler {
  return async (job, ctx) => {
    const p = (job.payload ?? {}) as DlqRetryPayload
    const requeued = await admin.retryDlqMany(p.filter ?? {}, {
      ratePerSec: p.rate_per_sec,
      max: p.max,
      bounds: p.bounds,
      signal: ctx.signal,
    })
    return { requeued }
  }
}
