/** Dead letters: list (filters), retry one / many at a rate, delete, purge. */
import type { DlqJobDto } from '@dtq/app/schemas'
import { queryOptions, useQuery } from '@tanstack/react-query'
import { api, qs } from '../../../lib/api'
import { type JobRef, jobPath } from '../../../lib/job-ref'
import { useLive } from '../../../lib/live'
import { useInvalidatingMutation } from '../../../lib/mutation'
import { queryKeys } from '../../../lib/query-keys'

export interface DlqFilters {
  queue?: string
  task_type?: string
  error?: string
  older_than_days?: string
}

export const listDlqOptions = (f: DlqFilters, pollMs: number | false) =>
  queryOptions({
    queryKey: queryKeys.dlq.list(f),
    // Up to 1000 newest dead letters: enough to group by error and type on screen.
    queryFn: ({ signal }) =>
      api<{ items: DlqJobDto[]; next_cursor: string | null }>(`/dlq${qs({ ...f, limit: 1000 })}`, { signal }),
    refetchInterval: pollMs,
    placeholderData: (prev) => prev,
  })

export const useDlq = (f: DlqFilters) => useQuery(listDlqOptions(f, useLive().pollMs))

const useDlqMutation = <A, R>(fn: (a: A) => Promise<R>) =>
  useInvalidatingMutation(fn, [queryKeys.dlq.all, queryKeys.stats])

export const useRetryDead = () =>
  useDlqMutation(async (jobs: JobRef[]) => {
    for (const job of jobs) await api(jobPath(job, '/retry', '/dlq'), { method: 'POST' })
    return jobs.length
  })

export const useDeleteDead = () =>
  useDlqMutation(async (jobs: JobRef[]) => {
    for (const job of jobs) await api(jobPath(job, '', '/dlq'), { method: 'DELETE' })
    return jobs.length
  })

export const useRetryMatching = () =>
  useDlqMutation((body: { task_type?: string; error?: string; queue?: string; rate_per_sec: number }) =>
    api<{ job: { id: string }; message: string }>('/dlq/retry', { method: 'POST', body }),
  )

export const usePurge = () =>
  useDlqMutation((days: number) =>
    api<{ deleted: number }>(`/dlq${qs({ older_than_days: days })}`, { method: 'DELETE' }),
  )
