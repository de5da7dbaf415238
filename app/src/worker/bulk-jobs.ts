/**
 * The handler of the system task `dtq.bulk_jobs` (POST /jobs/bulk): cancels, retries or deletes the jobs
 * matching a filter at a rate on a worker, so the operation is durable, paced and visible like
 * any job -- its log says how far it got after each page, and cancelling it stops it.
 */
import type { Queue } from '../queue/queue.ts'
import type { BulkJobsPayload } from '../queue/system-tasks.ts'
import type { Handler } from './handlers.ts'

export function bulkJobsHandler(admin: Queue): Handler {
  return async (job, ctx) => {
    const p = (job.payload ?? {}) as BulkJobsPayload
    const verb = { retry: 'retried', cancel: 'cancelled', delete: 'deleted' }[p.action] ?? p.action
    const r = await admin.bulkJobs(p.action, p.filter ?? {}, {
      ratePerSec: p.rate_per_sec,
      max: p.max,
      signal: ctx.signal,
      onPage: async ({ examined, done }) => {
        await ctx.progress(done)
        await ctx.log(`${verb} ${done} of ${examined} examined`)
      },
    })
    return { action: p.action, ...r, stopped: ctx.signal.aborted }
  }
}
