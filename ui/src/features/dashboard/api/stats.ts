import type { StatsDto } from '@dtq/app/schemas'
import { queryOptions, useQuery } from '@tanstack/react-query'
import { api } from '../../../lib/api'
import { useLive } from '../../../lib/live'
import { queryKeys } from '../../../lib/query-keys'

export const statsOptions = (pollMs: number | false) =>
  queryOptions({
    queryKey: queryKeys.stats,
    queryFn: ({ signal }) => api<StatsDto>('/stats', { signal }),
    // Live events refresh counts; the chart's current minute also moves with time.
    refetchInterval: pollMs || 15_000,
  })

export const useStats = () => useQuery(statsOptions(useLive().pollMs))
