/** A queue's flow-control limits (ADR 0022): read live, replace, and a breaker by hand. */
import type { LimitsBodyDto, LimitsDto } from '@dtq/app/schemas'
import { queryOptions, useQuery } from '@tanstack/react-query'
import { api } from '../../../lib/api'
import { useLive } from '../../../lib/live'
import { useInvalidatingMutation } from '../../../lib/mutation'
import { queryKeys } from '../../../lib/query-keys'

const path = (queue: string) => `/queues/${encodeURIComponent(queue)}`

export const limitsOptions = (queue: string, pollMs: number | false) =>
  queryOptions({
    queryKey: queryKeys.limits(queue),
    queryFn: ({ signal }) => api<LimitsDto>(`${path(queue)}/limits`, { signal }),
    refetchInterval: pollMs,
  })

export const useLimits = (queue: string) => useQuery(limitsOptions(queue, useLive().pollMs))

export const useSetLimits = (queue: string) =>
  useInvalidatingMutation(
    (spec: LimitsBodyDto) => api<LimitsDto>(`${path(queue)}/limits`, { method: 'PUT', body: spec }),
    [queryKeys.limits(queue), queryKeys.queues, queryKeys.jobs.all],
  )

export const useBreaker = (queue: string) =>
  useInvalidatingMutation(
    ({ type, action }: { type: string; action: 'open' | 'close' | 'reset' }) =>
      api<LimitsDto>(`${path(queue)}/breakers/${encodeURIComponent(type)}`, {
        method: 'POST',
        body: { action },
      }),
    [queryKeys.limits(queue)],
  )
