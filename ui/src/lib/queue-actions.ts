/** Pausing and resuming a queue (the dashboard's and the queues page's table share it). */
import { api } from './api'
import { useInvalidatingMutation } from './mutation'
import { queryKeys } from './query-keys'

export const usePauseQueue = () =>
  useInvalidatingMutation(
    ({ queue, pause }: { queue: string; pause: boolean }) =>
      api(`/queues/${encodeURIComponent(queue)}/${pause ? 'pause' : 'resume'}`, { method: 'POST' }),
    [queryKeys.queues, queryKeys.stats],
  )
