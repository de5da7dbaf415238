/**
 * How the console names a job: its id and its queue. A job id is unique within its queue only
 * (ADR 0016), so every link, API call and cache key carries the queue when it is known; without
 * it, the API looks the id up in every queue and answers 409 AMBIGUOUS_JOB_ID when several have it.
 */
import { ApiError, qs } from './api'

export interface JobRef {
  id: string
  /** Absent for an old link or a search by id alone. */
  queue?: string
}

/**
 * `<root>/<id><action>?queue=<queue>`: a job's console page (`/jobs/7?queue=mail`) and its API
 * routes (`jobPath(job, '/cancel')`, `jobPath(job, '/retry', '/dlq')`).
 */
export const jobPath = ({ id, queue }: JobRef, action = '', root = '/jobs') =>
  `${root}/${encodeURIComponent(id)}${action}${qs({ queue })}`

/** One string per job (`queue/id`: neither holds a `/`), for row keys and selections. */
export const jobKey = ({ id, queue }: JobRef) => `${queue ?? ''}/${id}`

/** The job a `jobKey` names. */
export function parseJobKey(key: string): JobRef {
  const slash = key.indexOf('/')
  const queue = key.slice(0, slash)
  return { id: key.slice(slash + 1), queue: queue || undefined }
}

/** The candidate queues of an AMBIGUOUS_JOB_ID answer (an id found in several queues), else undefined. */
export function ambiguousQueues(err: unknown): string[] | undefined {
  if (!(err instanceof ApiError && err.code === 'AMBIGUOUS_JOB_ID')) return undefined
  const queues = (err.details as { queues?: unknown } | undefined)?.queues
  return Array.isArray(queues) ? queues.map(String) : undefined
}
