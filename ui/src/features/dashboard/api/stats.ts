import type { StatsDto } from '@dtq/app/schemas'
import { queryOptions, useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { api } from '../../../lib/api'
import { useLive } from '../../../lib/live'

export const statsKeys = { all: ['stats'] as const }

export const statsOptions = (pollMs: number | false) =>
  queryOptions({
    queryKey: statsKeys.all,
    queryFn: ({ signal }) => api<StatsDto>('/stats', { signal }),
    // Live events refresh counts; the chart's current minute also moves with time.
    refetchInterval: pollMs || 15_000,
  })

export const useStats = () => useQuery(statsOptions(useLive().pollMs))

export function usePauseQueue() {
  const qc = useQueryClient()
  return useMutation({
    mutationFn: ({ queue, pause }: { queue: string; pause: boolean }) =>
      api(`/queues/${encodeURIComponent(queue)}/${pause ? 'pause' : 'resume'}`, { method: 'POST' }),
    onSettled: () => qc.invalidateQueries({ queryKey: statsKeys.all }),
  })
}
