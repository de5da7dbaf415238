/** Pausing, resuming, emptying and deleting a queue, its created-time index (the dashboard's, the queues and queue pages share them). */
import { api } from './api'
import { useInvalidatingMutation } from './mutation'
import { queryKeys } from './query-keys'

export const usePauseQueue = () =>
  useInvalidatingMutation(
    ({ queue, pause }: { queue: string; pause: boolean }) =>
      api(`/queues/${encodeURIComponent(queue)}/${pause ? 'pause' : 'resume'}`, { method: 'POST' }),
    [queryKeys.queues, queryKeys.stats],
  )

/** Removes a queue's jobs waiting to run, one bounded call (POST /queues/{q}/empty; ADR 0020). */
export const useEmptyQueue = () =>
  useInvalidatingMutation(
    (queue: string) =>
      api<{ removed: number; cancelled: number; more: boolean }>(
        `/queues/${encodeURIComponent(queue)}/empty`,
        {
          method: 'POST',
          body: {},
        },
      ),
    [queryKeys.queues, queryKeys.stats, queryKeys.jobs.all],
  )

/** Switches a queue's created-time index on (built, then kept) or off (PUT /queues/{q}/created-index; ADR 0035). */
export const useCreatedIndex = () =>
  useInvalidatingMutation(
    ({ queue, on }: { queue: string; on: boolean }) =>
      api<{ queue: string; created_index: string }>(`/queues/${encodeURIComponent(queue)}/created-index`, {
        method: 'PUT',
        body: { on },
      }),
    [queryKeys.queues, queryKeys.jobs.all],
  )

/** Deletes a queue and all its keys (DELETE /queues/{q}; `force` with jobs running). */
export const useDeleteQueue = () =>
  useInvalidatingMutation(
    ({ queue, force }: { queue: string; force: boolean }) =>
      api<{ keys: number }>(`/queues/${encodeURIComponent(queue)}${force ? '?force=true' : ''}`, {
        method: 'DELETE',
      }),
    [queryKeys.queues, queryKeys.stats, queryKeys.jobs.all],
  )
