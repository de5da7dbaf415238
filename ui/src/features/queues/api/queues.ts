import type { QueueStatsDto } from '@dtq/app/schemas'
import { queryOptions, useQuery } from '@tanstack/react-query'
import { api } from '../../../lib/api'
import { useLive } from '../../../lib/live'
import { queryKeys } from '../../../lib/query-keys'

export const listQueuesOptions = (pollMs: number | false) =>
  queryOptions({
    queryKey: queryKeys.queues,
    queryFn: ({ signal }) => api<{ items: QueueStatsDto[] }>('/queues', { signal }),
    refetchInterval: pollMs,
  })

export const useQueues = () => useQuery(listQueuesOptions(useLive().pollMs))
