/** Every queue with its stats (GET /queues): shared by the queue pages and the jobs page (its created-time sort). */
import type { QueueStatsDto } from '@dtq/app/schemas'
import { queryOptions, useQuery } from '@tanstack/react-query'
import { api } from './api'
import { useLive } from './live'
import { queryKeys } from './query-keys'

export const listQueuesOptions = (pollMs: number | false) =>
  queryOptions({
    queryKey: queryKeys.queues,
    queryFn: ({ signal }) => api<{ items: QueueStatsDto[] }>('/queues', { signal }),
    refetchInterval: pollMs,
  })

export const useQueues = () => useQuery(listQueuesOptions(useLive().pollMs))
