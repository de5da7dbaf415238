import type { JobDto } from '@dtq/app/schemas'
import { queryOptions, useQuery } from '@tanstack/react-query'
import { ApiError, api } from '../../../lib/api'
import { type JobRef, jobPath } from '../../../lib/job-ref'
import { useLive } from '../../../lib/live'
import { queryKeys } from '../../../lib/query-keys'

/** `source: "archive"`: Redis forgot the job (past its retention); this is its history record (ADR 0028). */
export type JobDetail = JobDto & { logs: string[]; source?: 'archive' }

export const getJobOptions = (ref: JobRef, pollMs: number | false) =>
  queryOptions({
    queryKey: queryKeys.jobs.detail(ref),
    queryFn: ({ signal }) => api<JobDetail>(jobPath(ref), { signal }),
    refetchInterval: pollMs,
    // "No such job" and "the id is in several queues" are answers, shown at once: not retried.
    retry: (failures, err) => failures < 1 && !(err instanceof ApiError && [404, 409].includes(err.status)),
  })

export function useJob(ref: JobRef) {
  return useQuery(getJobOptions(ref, useLive().pollMs))
}
