/**
 * Replay and debugging (ADR 0028): replay a finished job (or dry-run it), its timeline, two jobs
 * or two attempts compared.
 */
import type {
  AttemptsCompareDto,
  CompareDto,
  CreateJobDto,
  DryRunDto,
  JobDto,
  ReplayBodyDto,
  TimelineDto,
} from '@dtq/app/schemas'
import { queryOptions, useMutation, useQuery } from '@tanstack/react-query'
import { api, qs } from '../../../lib/api'
import { type JobRef, jobKey, parseJobKey } from '../../../lib/job-ref'
import { useInvalidatingMutation } from '../../../lib/mutation'
import { queryKeys } from '../../../lib/query-keys'

const replayPath = ({ id, queue }: JobRef, dryRun: boolean) =>
  `/jobs/${encodeURIComponent(id)}/replay${qs({ queue, dry_run: dryRun ? 'true' : undefined })}`

/** Replays a finished job as a new one: the answer is the new job. */
export const useReplay = () =>
  useInvalidatingMutation(
    ({ job, body }: { job: JobRef; body: ReplayBodyDto }) =>
      api<JobDto>(replayPath(job, false), { method: 'POST', body }),
    [queryKeys.jobs.all, queryKeys.stats],
  )

/** What a replay would create, nothing written. */
export const useDryRunReplay = () =>
  useMutation({
    mutationFn: ({ job, body }: { job: JobRef; body: ReplayBodyDto }) =>
      api<DryRunDto>(replayPath(job, true), { method: 'POST', body }),
  })

/** What POST /jobs would do with this job, nothing written. */
export const useDryRunAdd = () =>
  useMutation({
    mutationFn: (body: CreateJobDto) => api<DryRunDto>('/jobs?dry_run=true', { method: 'POST', body }),
  })

export const timelineOptions = (ref: JobRef) =>
  queryOptions({
    queryKey: queryKeys.debug.timeline(ref),
    queryFn: ({ signal }) =>
      api<TimelineDto>(`/jobs/${encodeURIComponent(ref.id)}/timeline${qs({ queue: ref.queue })}`, { signal }),
    staleTime: 10_000,
  })

export const useTimeline = (ref: JobRef, enabled: boolean) => useQuery({ ...timelineOptions(ref), enabled })

/** Two jobs named by `jobKey` (`queue/id`; a bare id is looked up). */
export function useCompare(a: string, b: string) {
  const x = parseJobKey(a.includes('/') ? a : `/${a}`)
  return useQuery({
    queryKey: queryKeys.debug.compare(a, b),
    queryFn: ({ signal }) =>
      api<CompareDto>(`/jobs/${encodeURIComponent(x.id)}/compare${qs({ queue: x.queue, with: b })}`, {
        signal,
      }),
    retry: false,
  })
}

export function useCompareAttempts(job: string, a: number, b: number) {
  const x = parseJobKey(job.includes('/') ? job : `/${job}`)
  return useQuery({
    queryKey: queryKeys.debug.attempts(jobKey(x), a, b),
    queryFn: ({ signal }) =>
      api<AttemptsCompareDto>(
        `/jobs/${encodeURIComponent(x.id)}/attempts/compare${qs({ queue: x.queue, a, b })}`,
        { signal },
      ),
    retry: false,
  })
}

/** The attempts a job has on record: its failed ones (bounded history) and its last. */
export function attemptsOnRecord(job: JobDto): number[] {
  const n = new Set(job.errors.map((e) => e.attempt))
  if (job.attempts > 0) n.add(job.attempts)
  return [...n].sort((x, y) => x - y)
}
