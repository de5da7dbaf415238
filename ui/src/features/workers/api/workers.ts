import type { WorkerDetailDto, WorkerDto } from '@dtq/app/schemas'
import { queryOptions, useQuery } from '@tanstack/react-query'
import { api } from '../../../lib/api'
import { useLive } from '../../../lib/live'
import { useInvalidatingMutation } from '../../../lib/mutation'
import { queryKeys } from '../../../lib/query-keys'

/** Heartbeats are not lifecycle events: the worker list polls every 2 s (or faster on demand). */
export const listWorkersOptions = (pollMs: number | false) =>
  queryOptions({
    queryKey: queryKeys.workers,
    queryFn: ({ signal }) => api<{ items: WorkerDto[] }>('/workers', { signal }),
    refetchInterval: pollMs || 2000,
  })

export const useWorkers = () => useQuery(listWorkersOptions(useLive().pollMs))

/** One worker with its running jobs, rates and latest failures (GET /workers/{id}): polls like the list. */
export const useWorker = (id: string) => {
  const { pollMs } = useLive()
  return useQuery({
    queryKey: [...queryKeys.workers, id],
    queryFn: ({ signal }) => api<WorkerDetailDto>(`/workers/${encodeURIComponent(id)}`, { signal }),
    refetchInterval: pollMs || 2000,
    retry: false,
  })
}

export type WorkerCommand = 'pause' | 'resume' | 'drain'

export const useWorkerCommand = () =>
  useInvalidatingMutation(
    ({ id, command }: { id: string; command: WorkerCommand }) =>
      api(`/workers/${encodeURIComponent(id)}/${command}`, { method: 'POST' }),
    [queryKeys.workers],
  )

/** Sets a worker's concurrency at runtime (POST /workers/{id}/concurrency; ADR 0020). */
export const useWorkerConcurrency = () =>
  useInvalidatingMutation(
    ({ id, concurrency }: { id: string; concurrency: number }) =>
      api(`/workers/${encodeURIComponent(id)}/concurrency`, { method: 'POST', body: { concurrency } }),
    [queryKeys.workers],
  )
