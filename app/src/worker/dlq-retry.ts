/**
 * The handler of the system task `dtq.dlq_retry` (POST /dlq/retry): retries dead letters at a
 * rate on a worker, so the redrive is durable, paced and visible like any job.
 */
import type { Queue } from '../queue/queue.ts'
import type { DlqRetryPayload } from '../queue/system-tasks.ts'
import type { Handler } from './handlers.ts'

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
