import type { FailuresDto } from '@dtq/app/schemas'
import { queryOptions, useQuery } from '@tanstack/react-query'
import { api, qs } from '../../../lib/api'
import { queryKeys } from '../../../lib/query-keys'

export const FAILURE_WINDOWS = [5, 15, 60] as const

/** What is failing now: the window's dead letters grouped, failure rates (GET /stats/failures, ADR 0032). */
export const failuresOptions = (minutes: number) =>
  queryOptions({
    queryKey: queryKeys.failures(minutes),
    queryFn: ({ signal }) => api<FailuresDto>(`/stats/failures${qs({ minutes, limit: 10 })}`, { signal }),
    // A bounded DLQ walk per queue: polled, not refetched on every live event.
    refetchInterval: 10_000,
    staleTime: 5_000,
    placeholderData: (prev) => prev,
  })

export const useFailures = (minutes: number) => useQuery(failuresOptions(minutes))
