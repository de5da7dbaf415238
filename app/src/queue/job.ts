/** The job record as the library and the API see it (snake_case, as stored and served). */
export const PRIORITIES = ['high', 'normal', 'low'] as const
export type Priority = (typeof PRIORITIES)[number]

export const STATES = [
  'queued',
  'scheduled',
  'active',
  'retrying',
  'completed',
  'failed',
  'cancelled',
] as const
export type JobState = (typeof STATES)[number]

export interface AttemptError {
  attempt: number
  message: string
  stack?: string
  worker: string
  /** When the failed attempt started (absent on older records). */
  started_at?: number
  /** When it failed. */
  at: number
}

export interface Backoff {
  initial_ms?: number
  multiplier?: number
  max_ms?: number
}

export interface Job {
  id: string
  queue: string
  task_type: string
  payload: unknown
  state: JobState
  priority: Priority
  attempts: number
  failures: number
  stalls: number
  max_retries: number
  timeout_ms: number
  epoch: number
  created_at: number
  updated_at: number
  /** When the job last became ready (entered a stream). */
  queued_at: number | null
  run_at: number | null
  started_at: number | null
  finished_at: number | null
  worker: string | null
  result: unknown
  error: string | null
  errors: AttemptError[]
  progress: number | null
  idempotency_key: string | null
  partition_key: string | null
  trace: string | null
  backoff: Backoff | null
  cancel_requested: boolean
}

const num = (v: string | undefined): number | null => (v === undefined || v === '' ? null : Number(v))

function parseJson(v: string | undefined): unknown {
  if (v === undefined || v === '') return null
  try {
    return JSON.parse(v)
  } catch {
    return v
  }
}

/**
 * Decodes a job hash (HGETALL reply) into a Job. The id is not stored in the hash (it is in
 * the key); queued_at is not stored while it equals created_at; updated_at is the latest of
 * the stored times (a start or a completion does not write it: fewer values per job).
 */
export function decodeJob(queue: string, h: Record<string, string>, id = h.id ?? ''): Job {
  const created = num(h.created_at) ?? 0
  return {
    id,
    queue,
    task_type: h.task_type ?? '',
    payload: parseJson(h.payload),
    state: (h.state ?? 'queued') as JobState,
    priority: (h.priority ?? 'normal') as Priority,
    attempts: num(h.attempts) ?? 0,
    failures: num(h.failures) ?? 0,
    stalls: num(h.stalls) ?? 0,
    max_retries: num(h.max_retries) ?? 0,
    timeout_ms: num(h.timeout_ms) ?? 0,
    epoch: num(h.epoch) ?? 0,
    created_at: created,
    // Not written by every transition (start and completion leave it out): the latest time.
    updated_at: Math.max(
      created,
      num(h.updated_at) ?? 0,
      num(h.queued_at) ?? 0,
      num(h.started_at) ?? 0,
      num(h.finished_at) ?? 0,
    ),
    // A job that was never scheduled became ready when it was created.
    queued_at: num(h.queued_at) ?? (h.run_at === undefined && h.created_at !== undefined ? created : null),
    run_at: num(h.run_at),
    started_at: num(h.started_at),
    finished_at: num(h.finished_at),
    worker: h.worker || null,
    result: parseJson(h.result),
    error: h.error || null,
    errors: (parseJson(h.errors) as AttemptError[] | null) ?? [],
    progress: num(h.progress),
    idempotency_key: h.idempotency_key || null,
    partition_key: h.partition_key || null,
    trace: h.trace || null,
    backoff: (parseJson(h.backoff) as Backoff | null) ?? null,
    cancel_requested: h.cancel_requested === '1',
  }
}

/** Flat [k, v, k, v] array (what a script returns for HGETALL) → record. */
export function pairsToRecord(flat: string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i]!] = flat[i + 1]!
  return out
}
