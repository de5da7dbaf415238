import type { HistoryDto } from '@dtq/app/schemas'
import { queryOptions, useQuery } from '@tanstack/react-query'
import { api, qs } from './api'
import { queryKeys } from './query-keys'

export type HistoryRange = '1h' | '6h' | '24h'

/** Throughput and latency per interval over a range, of one queue or all (GET /stats/history). */
export const historyOptions = (range: HistoryRange, queue?: string) =>
  queryOptions({
    queryKey: queryKeys.history(range, queue),
    queryFn: ({ signal }) => api<HistoryDto>(`/stats/history${qs({ range, queue })}`, { signal }),
    // A point is a minute or more: refresh with time, not with every live event.
    refetchInterval: 30_000,
    staleTime: 15_000,
    placeholderData: (prev) => prev,
  })

export const useHistory = (range: HistoryRange, queue?: string) => useQuery(historyOptions(range, queue))
