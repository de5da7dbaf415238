/** Mutations on jobs: cancel, retry (one or many), create, generate. Each invalidates via the keys. */
import type { CreateJobDto, JobDto } from '@dtq/app/schemas'
import { useMutation, useQueryClient } from '@tanstack/react-query'
import { api } from '../../../lib/api'
import { jobKeys } from './keys'

export const cancelJob = (id: string) =>
  api<{ outcome: string; job: JobDto }>(`/jobs/${encodeURIComponent(id)}/cancel`, { method: 'POST' })
export const retryJob = (id: string) =>
  api<JobDto>(`/jobs/${encodeURIComponent(id)}/retry`, { method: 'POST' })

function useJobMutation<A, R>(fn: (a: A) => Promise<R>) {
  const qc = useQueryClient()
  return useMutation({
    mutationFn: fn,
    onSettled: () => {
      void qc.invalidateQueries({ queryKey: jobKeys.all })
      void qc.invalidateQueries({ queryKey: ['job'] })
      void qc.invalidateQueries({ queryKey: ['stats'] })
    },
  })
}

export const useCancelJob = () => useJobMutation(cancelJob)
export const useRetryJob = () => useJobMutation(retryJob)

/** Applies an action to many jobs; reports how many succeeded and the first error. */
export function useBulk(action: 'cancel' | 'retry') {
  return useJobMutation(async (ids: string[]) => {
    const results = await Promise.allSettled(
      ids.map((id) => (action === 'cancel' ? cancelJob(id) : retryJob(id))),
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
