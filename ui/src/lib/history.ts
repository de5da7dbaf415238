import type { HistoryDto } from '@dtq/app/schemas'
import { queryOptions, useQuery } from '@tanstack/react-query'
import { api, qs } from './api'
import { queryKeys } from './query-keys'

export type HistoryRange = '1h' | '6h' | '24h'

/**
 * Throughput and latency per interval over a range, of one queue or all, of one task type or all
 * (GET /stats/history; a task type has no latency: ADR 0032).
 */
export const historyOptions = (range: HistoryRange, queue?: string, taskType?: string) =>
  queryOptions({
    queryKey: queryKeys.history(range, queue, taskType),
    queryFn: ({ signal }) =>
      api<HistoryDto>(`/stats/history${qs({ range, queue, task_type: taskType })}`, { signal }),
    // A point is a minute or more: refresh with time, not with every live event.
    refetchInterval: 30_000,
    staleTime: 15_000,
    placeholderData: (prev) => prev,
  })

export const useHistory = (range: HistoryRange, queue?: string, taskType?: string) =>
  useQuery(historyOptions(range, queue, taskType))

/** The task types a queue's stats name (`completed|<type>`, `failed|<type>`, … in its totals). */
export function taskTypesOf(queues: ReadonlyArray<{ totals: Record<string, number> }>): string[] {
  const out = new Set<string>()
  for (const q of queues)
    for (const k of Object.keys(q.totals)) {
      const m = /^(?:created|completed|failed)\|([^|]+)$/.exec(k)
      if (m && m[1] !== '_other') out.add(m[1]!)
    }
  return [...out].sort()
}
