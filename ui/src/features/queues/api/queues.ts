import type { QueueStatsDto } from '@dtq/app/schemas'
import { queryOptions, useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { api } from '../../../lib/api'
import { useLive } from '../../../lib/live'

export const queueKeys = { all: ['queues'] as const }

export const listQueuesOptions = (pollMs: number | false) =>
  queryOptions({
    queryKey: queueKeys.all,
    queryFn: ({ signal }) => api<{ items: QueueStatsDto[] }>('/queues', { signal }),
    refetchInterval: pollMs,
  })

export const useQueues = () => useQuery(listQueuesOptions(useLive().pollMs))

export function useToggleQueue() {
  const qc = useQueryClient()
  return useMutation({
    mutationFn: ({ queue, pause }: { queue: string; pause: boolean }) =>
      api(`/queues/${encodeURIComponent(queue)}/${pause ? 'pause' : 'resume'}`, { method: 'POST' }),
    onSettled: () => {
      void qc.invalidateQueries({ queryKey: queueKeys.all })
      void qc.invalidateQueries({ queryKey: ['stats'] })
    },
  })
}
