import type { JobDto } from '@dtq/app/schemas'
import { queryOptions, useQuery } from '@tanstack/react-query'
import { api } from '../../../lib/api'
import { useLive } from '../../../lib/live'
import { queryKeys } from '../../../lib/query-keys'

export type JobDetail = JobDto & { logs: string[] }

export const getJobOptions = (id: string, pollMs: number | false) =>
  queryOptions({
    queryKey: queryKeys.jobs.detail(id),
    queryFn: ({ signal }) => api<JobDetail>(`/jobs/${encodeURIComponent(id)}`, { signal }),
    refetchInterval: pollMs,
  })

export function useJob(id: string) {
  return useQuery(getJobOptions(id, useLive().pollMs))
}
