/**
 * A finished job's hash as history rows (ADR 0027): its row in `jobs` and one row in `attempts`
 * per attempt that ended -- every failed one from its error history, and its last one. Pure: no
 * I/O. Times are ms since the epoch here; the SQL turns them into timestamptz.
 */
import { decodeJob, type Job } from '../queue/job.ts'

export const FINISHED_STATES: ReadonlySet<string> = new Set(['completed', 'failed', 'cancelled'])

export interface JobRow {
  queue: string
  job_id: string
  task_type: string
  state: string
  priority: string
  payload: unknown
  result: unknown
  error_class: string | null
  error: string | null
  attempts: number
  max_retries: number
  worker: string | null
  partition_key: string | null
  created_at: number
  queued_at: number | null
  started_at: number | null
  finished_at: number
  flow_id: string | null
  schedule: string | null
  trace: string | null
  idempotency_key: string | null
  /** The rest of the record (everything but payload and result), as the API serves it. */
  job: Omit<Job, 'payload' | 'result'>
}

export interface AttemptRow {
  queue: string
  job_id: string
  attempt: number
  task_type: string
  worker: string | null
  started_at: number | null
  ended_at: number
  outcome: string
  error_class: string | null
  error: string | null
}

/** The rows of a job hash, or null when it holds no finished job (it ran again since). */
export function historyRows(
  queue: string,
  id: string,
  h: Record<string, string>,
): { job: JobRow; attempts: AttemptRow[] } | null {
  const j = decodeJob(queue, h, id)
  if (!FINISHED_STATES.has(j.state) || j.finished_at === null) return null
  // Payload and result have columns of their own: not stored twice.
  const { payload: _p, result: _r, ...rest } = j
  const job: JobRow = {
    queue,
    job_id: id,
    task_type: j.task_type,
    state: j.state,
    priority: j.priority,
    payload: j.payload,
    result: j.result,
    error_class: j.error_class,
    error: j.error,
    attempts: j.attempts,
    max_retries: j.max_retries,
    worker: j.worker,
    partition_key: j.partition_key,
    created_at: j.created_at,
    queued_at: j.queued_at,
    started_at: j.started_at,
    finished_at: j.finished_at,
    flow_id: j.flow_id,
    schedule: j.schedule,
    trace: j.trace,
    idempotency_key: j.idempotency_key,
    job: rest,
  }
  const attempts = new Map<number, AttemptRow>()
  for (const e of j.errors) {
    attempts.set(e.attempt, {
      queue,
      job_id: id,
      attempt: e.attempt,
      task_type: j.task_type,
      worker: e.worker || null,
      started_at: e.started_at ?? null,
      ended_at: e.at,
      outcome: 'failed',
      error_class: e.class ?? null,
      error: e.message,
    })
  }
  // The last attempt, unless the error history has it (a dead-lettered job's last failure).
  if (j.attempts > 0 && !attempts.has(j.attempts)) {
    const failed = j.state === 'failed'
    attempts.set(j.attempts, {
      queue,
      job_id: id,
      attempt: j.attempts,
      task_type: j.task_type,
      worker: j.worker,
      started_at: j.started_at,
      ended_at: j.finished_at,
      outcome: j.state,
      error_class: failed ? j.error_class : null,
      error: failed ? j.error : null,
    })
  }
  return { job, attempts: [...attempts.values()] }
}
