import type { JobDto } from '@dtq/app/schemas'
import { useQuery } from '@tanstack/react-query'
import { ApiError, api, qs } from '../../../lib/api'
import { queryKeys } from '../../../lib/query-keys'

const ID = /^[A-Za-z0-9_.-]{1,128}$/

/** Finds jobs by exact id, or else by idempotency key (a page without a cursor, like the list). */
export function useJobSearch(term: string) {
  return useQuery({
    queryKey: queryKeys.jobs.search(term),
    enabled: term.length > 0,
    queryFn: async ({ signal }): Promise<{ items: JobDto[] }> => {
      if (ID.test(term)) {
        try {
          return { items: [await api<JobDto>(`/jobs/${encodeURIComponent(term)}`, { signal })] }
        } catch (err) {
          if (!(err instanceof ApiError && err.status === 404)) throw err
        }
      }
      return api<{ items: JobDto[] }>(`/jobs${qs({ idempotency_key: term })}`, { signal })
    },
  })
}
