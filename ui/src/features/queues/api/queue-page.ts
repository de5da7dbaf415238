/**
 * A queue's page (`/queues/:name`): its jobs of one state, its dead letters by group, the live
 * workers -- the same API routes and cache keys as the jobs, DLQ and workers pages, so the live
 * feed refreshes them alike. Every read is bounded (a page of 20 jobs, the DLQ stats walk).
 */
import type { DlqStatsDto, JobPageDto, WorkerDto } from '@dtq/app/schemas'
import { queryOptions, useQuery } from '@tanstack/react-query'
import { api, qs } from '../../../lib/api'
import { useLive } from '../../../lib/live'
import { queryKeys } from '../../../lib/query-keys'

export const QUEUE_JOBS_PAGE = 20

export const useQueueJobs = (queue: string, status: string) => {
  const f = { queue, status, limit: QUEUE_JOBS_PAGE }
  return useQuery(
    queryOptions({
      queryKey: queryKeys.jobs.list(f),
      queryFn: ({ signal }) => api<JobPageDto>(`/jobs${qs(f)}`, { signal }),
      refetchInterval: useLive().pollMs,
      placeholderData: (prev) => prev,
    }),
  )
}

export const useQueueDeadLetters = (queue: string) => {
  const pollMs = useLive().pollMs
  return useQuery(
    queryOptions({
      queryKey: queryKeys.dlq.stats({ queue }),
      queryFn: ({ signal }) => api<DlqStatsDto>(`/dlq/stats${qs({ queue })}`, { signal }),
      // A walk of the queue's DLQ: at most every 5 s.
      refetchInterval: pollMs ? Math.max(5000, pollMs) : false,
      staleTime: 5000,
    }),
  )
}

export const useLiveWorkers = () => {
  const pollMs = useLive().pollMs
  return useQuery(
    queryOptions({
      queryKey: queryKeys.workers,
      queryFn: ({ signal }) => api<{ items: WorkerDto[] }>('/workers', { signal }),
      refetchInterval: pollMs || 2000,
    }),
  )
}
