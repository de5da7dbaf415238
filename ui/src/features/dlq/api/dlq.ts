/** Dead letters: list (filters), exact counts by group, retry one / many at a rate, delete, purge. */
import type { DlqJobDto, DlqStatsDto } from '@dtq/app/schemas'
import { queryOptions, useQuery } from '@tanstack/react-query'
import { api, qs } from '../../../lib/api'
import { type JobRef, jobPath } from '../../../lib/job-ref'
import { useLive } from '../../../lib/live'
import { useInvalidatingMutation } from '../../../lib/mutation'
import { queryKeys } from '../../../lib/query-keys'

export interface DlqFilters {
  queue?: string
  task_type?: string
  priority?: string
  error_class?: string
  error?: string
  older_than_days?: string
  cursor?: string
}

/** Dead letters per page: the list is paged with a cursor (ADR 0033); the counts are the stats'. */
export const DLQ_PAGE = 50

export const listDlqOptions = (f: DlqFilters, pollMs: number | false) =>
  queryOptions({
    queryKey: queryKeys.dlq.list(f),
    // One page of dead letters, newest first (the groups' counts come from /dlq/stats, exact).
    queryFn: ({ signal }) =>
      api<{ items: DlqJobDto[]; next_cursor: string | null }>(`/dlq${qs({ ...f, limit: DLQ_PAGE })}`, {
        signal,
      }),
    refetchInterval: pollMs,
    placeholderData: (prev) => prev,
  })

export const useDlq = (f: DlqFilters) => useQuery(listDlqOptions(f, useLive().pollMs))

/** Counts by queue × type × priority × error class over the whole DLQ, computed by the server. */
export const dlqStatsOptions = (
  f: Pick<DlqFilters, 'queue' | 'task_type' | 'priority'>,
  pollMs: number | false,
) =>
  queryOptions({
    queryKey: queryKeys.dlq.stats(f),
    queryFn: ({ signal }) => api<DlqStatsDto>(`/dlq/stats${qs(f)}`, { signal }),
    // A walk of the whole DLQ: not on every live event, at most every 5 s.
    refetchInterval: pollMs ? Math.max(5000, pollMs) : false,
    staleTime: 5000,
    placeholderData: (prev) => prev,
  })

export const useDlqStats = (f: Pick<DlqFilters, 'queue' | 'task_type' | 'priority'>) =>
  useQuery(dlqStatsOptions(f, useLive().pollMs))

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
  useDlqMutation(
    (body: { task_type?: string; priority?: string; error?: string; queue?: string; rate_per_sec: number }) =>
      api<{ job: { id: string }; message: string }>('/dlq/retry', { method: 'POST', body }),
  )

export const usePurge = () =>
  useDlqMutation(({ days, priority }: { days: number; priority?: string }) =>
    api<{ deleted: number }>(`/dlq${qs({ older_than_days: days, priority })}`, { method: 'DELETE' }),
  )

/** Deletes every dead letter of a queue matching type and error text, paced (POST /jobs/bulk, ADR 0033). */
export const useDeleteMatching = () =>
  useDlqMutation(
    (body: { queue: string; task_type?: string; error_contains?: string; rate_per_sec: number }) =>
      api<{ job: { id: string; queue: string }; message: string }>('/jobs/bulk', {
        method: 'POST',
        body: { action: 'delete', state: 'failed', ...body },
      }),
  )
