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
