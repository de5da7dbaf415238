/**
 * Mutations on jobs: cancel, retry (one or many, or by filter), run now, priority, payload, delete,
 * create, generate. Each invalidates via the keys.
 */
import type { CreateJobDto, JobDto } from '@dtq/app/schemas'
import { api } from '../../../lib/api'
import { type JobRef, jobPath } from '../../../lib/job-ref'
import { useInvalidatingMutation } from '../../../lib/mutation'
import { queryKeys } from '../../../lib/query-keys'

export const cancelJob = (job: JobRef) =>
  api<{ outcome: string; job: JobDto }>(jobPath(job, '/cancel'), { method: 'POST' })
export const retryJob = (job: JobRef) => api<JobDto>(jobPath(job, '/retry'), { method: 'POST' })

const useJobMutation = <A, R>(fn: (a: A) => Promise<R>) =>
  useInvalidatingMutation(fn, [queryKeys.jobs.all, queryKeys.stats])

export const useCancelJob = () => useJobMutation(cancelJob)

// Day-2 operations (ADR 0020).
export const useRunNow = () =>
  useJobMutation((job: JobRef) => api<JobDto>(jobPath(job, '/promote'), { method: 'POST' }))
export const useSetPriority = () =>
  useJobMutation(({ job, priority }: { job: JobRef; priority: JobDto['priority'] }) =>
    api<JobDto>(jobPath(job, '/priority'), { method: 'POST', body: { priority } }),
  )
export const useEditPayload = () =>
  useJobMutation(({ job, payload }: { job: JobRef; payload: unknown }) =>
    api<JobDto>(jobPath(job, '/payload'), { method: 'PUT', body: { payload, edited_by: 'console' } }),
  )
export const useDeleteJob = () =>
  useJobMutation((job: JobRef) => api<{ deleted: number }>(jobPath(job), { method: 'DELETE' }))

/**
 * A cancel, retry or delete (finished jobs of one queue, admin: ADR 0033) of every job matching a
 * filter, run at a rate by the workers (POST /jobs/bulk).
 */
export interface BulkByFilter {
  action: 'cancel' | 'retry' | 'delete'
  queue?: string
  state?: JobDto['state']
  task_type?: string
  rate_per_sec?: number
}
export const useBulkByFilter = () =>
  useJobMutation((body: BulkByFilter) =>
    api<{ job: JobDto; message: string }>('/jobs/bulk', { method: 'POST', body }),
  )
export const useRetryJob = () => useJobMutation(retryJob)

/** Applies an action to many jobs; reports how many succeeded and the first error. */
export function useBulk(action: 'cancel' | 'retry') {
  return useJobMutation(async (jobs: JobRef[]) => {
    const results = await Promise.allSettled(
      jobs.map((job) => (action === 'cancel' ? cancelJob(job) : retryJob(job))),
    )
    const failed = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[]
    return {
      ok: results.length - failed.length,
      failed: failed.length,
      firstError: failed[0]?.reason as Error | undefined,
    }
  })
}

export const useCreateJob = () =>
  useJobMutation((body: CreateJobDto) => api<JobDto>('/jobs', { method: 'POST', body }))

export const useGenerateJobs = () =>
  useJobMutation((body: { count: number; task_type?: string; partition_key_prefix?: string }) =>
    api<{ created: number }>('/dev/generate-jobs', { method: 'POST', body }),
  )
