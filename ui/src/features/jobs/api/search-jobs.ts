import type { JobDto } from '@dtq/app/schemas'
import { useQuery } from '@tanstack/react-query'
import { ApiError, api, qs } from '../../../lib/api'
import { ambiguousQueues, jobPath } from '../../../lib/job-ref'
import { queryKeys } from '../../../lib/query-keys'

const ID = /^[A-Za-z0-9_.-]{1,128}$/

/**
 * The jobs with this exact id -- one per queue that has it (ids are unique within a queue only,
 * ADR 0016) -- in `queue` when given.
 */
async function jobsById(id: string, queue: string | undefined, signal: AbortSignal): Promise<JobDto[]> {
  try {
    return [await api<JobDto>(jobPath({ id, queue }), { signal })]
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return []
    const queues = ambiguousQueues(err)
    if (!queues) throw err
    // Each candidate by its queue; one removed since the first answer is left out.
    const found = await Promise.all(queues.map((q) => jobsById(id, q, signal)))
    return found.flat()
  }
}

/**
 * Finds jobs by exact id, or else by idempotency key, in one queue or all of them (a page without
 * a cursor, like the list).
 */
export function useJobSearch(term: string, queue?: string) {
  return useQuery({
    queryKey: queryKeys.jobs.search(term, queue),
    enabled: term.length > 0,
    queryFn: async ({ signal }): Promise<{ items: JobDto[] }> => {
      if (ID.test(term)) {
        const items = await jobsById(term, queue, signal)
        if (items.length) return { items }
      }
      return api<{ items: JobDto[] }>(`/jobs${qs({ idempotency_key: term, queue })}`, { signal })
    },
  })
}
