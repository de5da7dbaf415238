import type { JobPageDto } from '@dtq/app/schemas'
import { queryOptions, useQuery } from '@tanstack/react-query'
import { api, qs } from '../../../lib/api'
import { useLive } from '../../../lib/live'
import { queryKeys } from '../../../lib/query-keys'

export interface JobFilters {
  status?: string
  task_type?: string
  queue?: string
  cursor?: string
  /** Jump to a time (ms since the epoch): the list starts there (ADR 0033). */
  from?: string
  /** `asc`: oldest first (default newest first). */
  order?: string
  /** `created`: by created time, through the queue's created-time index (default: updated; ADR 0035). */
  sort?: string
  /** A payload filter `path=value` (within a queue or a type; bounded: the answer's `scan`). */
  where?: string
}

export const listJobsOptions = (f: JobFilters, pollMs: number | false) =>
  queryOptions({
    queryKey: queryKeys.jobs.list(f),
    queryFn: ({ signal }) => api<JobPageDto>(`/jobs${qs({ ...f, limit: 50 })}`, { signal }),
    refetchInterval: pollMs,
    placeholderData: (prev) => prev,
  })

export function useJobs(f: JobFilters) {
  return useQuery(listJobsOptions(f, useLive().pollMs))
}
