import type { FlowDto } from '@dtq/app/schemas'
import { queryOptions, useQuery } from '@tanstack/react-query'
import { ApiError, api } from '../../../lib/api'
import { useLive } from '../../../lib/live'
import { queryKeys } from '../../../lib/query-keys'

export const getFlowOptions = (id: string, pollMs: number | false) =>
  queryOptions({
    queryKey: queryKeys.flows.detail(id),
    queryFn: ({ signal }) => api<FlowDto>(`/flows/${encodeURIComponent(id)}`, { signal }),
    refetchInterval: pollMs,
    // "No such flow" is an answer, shown at once: not retried.
    retry: (failures, err) => failures < 1 && !(err instanceof ApiError && [400, 404].includes(err.status)),
  })

export function useFlow(id: string) {
  return useQuery(getFlowOptions(id, useLive().pollMs))
}
