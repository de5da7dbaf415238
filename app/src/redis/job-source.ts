/**
 * Where replay, timeline and compare find a job (ADR 0028): a chain of sources, Redis first. Redis
 * holds live jobs and finished ones within their retention (completed: COMPLETED_RETENTION_S;
 * failed -- the DLQ -- and cancelled: FAILED_RETENTION_S). The history archive (PostgreSQL, when
 * DATABASE_URL is set: history/job-source.ts) is the second source -- it answers a job Redis no
 * longer holds, and adds its archived attempts to that job's timeline.
 */
import type { Job } from '../queue/job.ts'
import type { TimelineEntry } from './timeline.ts'

export interface JobSource {
  /** Shown with what it answers (`source` in the API's replies): redis, archive, … */
  readonly name: string
  /**
   * The job with this id (in `queue` when given), or null when this source does not hold it.
   * An id that names jobs in several queues is the same 409 AMBIGUOUS_JOB_ID as GET /jobs/{id}.
   */
  get(id: string, queue?: string): Promise<Job | null>
  /** Timeline entries this source holds beyond the job record (an archive's copy of old events). */
  timeline?(job: Job): Promise<TimelineEntry[]>
}

/** The jobs Redis holds (live and retained), found as GET /jobs/{id} finds them (Queue.getJob). */
export function redisSource(getJob: (id: string, queue?: string) => Promise<Job | null>): JobSource {
  return { name: 'redis', get: getJob }
}

/** Sources asked in order: the first that holds the job answers. */
export class JobSources {
  readonly sources: readonly JobSource[]

  constructor(sources: readonly JobSource[]) {
    this.sources = sources
  }

  async find(id: string, queue?: string): Promise<{ job: Job; source: JobSource } | null> {
    for (const source of this.sources) {
      const job = await source.get(id, queue)
      if (job) return { job, source }
    }
    return null
  }
}
