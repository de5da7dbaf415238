import type { WorkerDto } from '@dtq/app/schemas'
import { queryOptions, useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { api } from '../../../lib/api'
import { useLive } from '../../../lib/live'

export const workerKeys = { all: ['workers'] as const }

/** Heartbeats are not lifecycle events: the worker list polls every 2 s (or faster on demand). */
export const listWorkersOptions = (pollMs: number | false) =>
  queryOptions({
    queryKey: workerKeys.all,
    queryFn: ({ signal }) => api<{ items: WorkerDto[] }>('/workers', { signal }),
    refetchInterval: pollMs || 2000,
  })

export const useWorkers = () => useQuery(listWorkersOptions(useLive().pollMs))

export function useWorkerCommand() {
  const qc = useQueryClient()
  return useMutation({
    mutationFn: ({ id, command }: { id: string; command: 'pause' | 'resume' | 'drain' }) =>
      api(`/workers/${encodeURIComponent(id)}/${command}`, { method: 'POST' }),
    onSettled: () => qc.invalidateQueries({ queryKey: workerKeys.all }),
  })
}
