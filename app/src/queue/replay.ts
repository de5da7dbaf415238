/**
 * Replay and debugging, the pure rules (ADR 0028): which jobs can be replayed and what a replay
 * carries over from its original; how two jobs, or two attempts of one job, are put side by side
 * and compared (a structural JSON diff, computed on the server so the API, the CLI and the console
 * show the same differences).
 */

import type { AttemptError, Backoff, Job, Priority } from './job.ts'
import { logicalQueue } from './partitions.ts'

/** A job can be replayed once it has ended: completed (while retained), failed (the DLQ), cancelled. */
export const REPLAYABLE_STATES = ['completed', 'failed', 'cancelled'] as const

/** The job a replay adds, as Queue.add takes it (a JobSpec: queue/ does not import queue.ts). */
export interface ReplayJobSpec {
  task_type: string
  payload?: unknown
  queue?: string
  priority?: Priority
  delay_ms?: number
  run_at?: number | string
  max_retries?: number
  timeout_ms?: number
  partition_key?: string
  backoff?: Backoff
  idempotency_key?: string
  id?: string
  replay_of?: string
}

/**
 * What a replay may change of its original (everything else is carried over or left out): its
 * payload and options, its own idempotency key (a repeated replay request with it answers the
 * same replay) and its own id (`job_id`; else a generated one).
 */
export type ReplayChanges = Omit<ReplayJobSpec, 'task_type' | 'id' | 'replay_of'> & { job_id?: string }

/** The fields a replay may change (anything else is refused: the task type is the original's). */
export const REPLAY_CHANGE_FIELDS: ReadonlySet<string> = new Set([
  'payload',
  'queue',
  'priority',
  'delay_ms',
  'run_at',
  'max_retries',
  'timeout_ms',
  'partition_key',
  'backoff',
  'idempotency_key',
  'job_id',
])

/**
 * `<queue>/<id>`: a job named with its queue, as `replay_of` and `replays` store it. A partition's
 * job is named by its logical queue: an id is unique across a queue's partitions (a caller's id
 * routes to one), and `?queue=<logical>` finds it wherever it is (the API's id routes take no
 * partition name).
 */
export const jobRef = (job: Pick<Job, 'queue' | 'id'>) => `${logicalQueue(job.queue)}/${job.id}`

/** `<queue>/<id>` or a bare id → its parts (queue undefined for a bare id). */
export function parseJobRef(ref: string): { id: string; queue?: string } {
  const slash = ref.indexOf('/')
  return slash < 0 ? { id: ref } : { queue: ref.slice(0, slash), id: ref.slice(slash + 1) }
}

/**
 * The new job a replay adds: the original's task type, payload and options with the changes.
 * Left out on purpose: the original's idempotency key and dedup (either would answer the replay
 * with the original or its dedup holder: the replay would not run), its id, trace, start deadline,
 * run time, schedule and flow membership (a replay is a job of its own, run now unless the
 * changes say when). A partition's job replays into its logical queue (routed again).
 */
export function replaySpec(original: Job, changes: ReplayChanges = {}): ReplayJobSpec {
  const { payload, job_id, ...opts } = changes
  const carried: Omit<ReplayJobSpec, 'task_type'> = {
    queue: logicalQueue(original.queue),
    priority: original.priority,
    max_retries: original.max_retries,
    ...(original.timeout_ms > 0 ? { timeout_ms: original.timeout_ms } : {}),
    ...(original.partition_key !== null ? { partition_key: original.partition_key } : {}),
    ...(original.backoff ? { backoff: withoutUndefined(original.backoff) } : {}),
  }
  const spec: ReplayJobSpec = {
    task_type: original.task_type,
    payload: 'payload' in changes ? payload : original.payload,
    ...carried,
    ...withoutUndefined(opts),
    replay_of: jobRef(original),
  }
  if (job_id !== undefined) spec.id = job_id
  return spec
}

function withoutUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T
}

// ---- comparing ---------------------------------------------------------------------------------

/** One difference between two JSON values, at a JSON Pointer path (`''`: the whole value). */
export interface Difference {
  path: string
  /** added: only in b; removed: only in a; changed: in both, different. */
  kind: 'added' | 'removed' | 'changed'
  a?: unknown
  b?: unknown
}

/** At most this many differences are listed (the rest are counted: `truncated`). */
export const MAX_DIFFERENCES = 200

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v)
const pointer = (path: string, key: string | number) =>
  `${path}/${String(key).replaceAll('~', '~0').replaceAll('/', '~1')}`

/**
 * The differences between two JSON values, depth first, objects by key (in sorted order) and
 * arrays by position; values of different kinds (an object and an array, a string and a
 * number) differ as wholes. At most MAX_DIFFERENCES are listed; `total` counts them all.
 */
export function jsonDiff(a: unknown, b: unknown): { differences: Difference[]; total: number } {
  const out: Difference[] = []
  let total = 0
  const push = (d: Difference) => {
    total++
    if (out.length < MAX_DIFFERENCES) out.push(d)
  }
  const walk = (x: unknown, y: unknown, path: string) => {
    if (x === undefined && y === undefined) return
    if (x === undefined) return push({ path, kind: 'added', b: y })
    if (y === undefined) return push({ path, kind: 'removed', a: x })
    if (Array.isArray(x) && Array.isArray(y)) {
      for (let i = 0; i < Math.max(x.length, y.length); i++) walk(x[i], y[i], pointer(path, i))
      return
    }
    if (isObject(x) && isObject(y)) {
      const keys = [...new Set([...Object.keys(x), ...Object.keys(y)])].sort()
      for (const k of keys) walk(x[k], y[k], pointer(path, k))
      return
    }
    if (!Object.is(x, y)) push({ path, kind: 'changed', a: x, b: y })
  }
  walk(a, b, '')
  return { differences: out, total }
}

/** What is compared of a job: what it was asked to do, how, and what came of it. */
export interface JobComparable {
  task_type: string
  state: string
  payload: unknown
  result: unknown
  error: string | null
  error_class: string | null
  options: {
    queue: string
    priority: Priority
    max_retries: number
    timeout_ms: number
    partition_key: string | null
    backoff: Backoff | null
    idempotency_key: string | null
  }
  timings: {
    attempts: number
    failures: number
    stalls: number
    /** From creation to its last start (null: never started). */
    wait_ms: number | null
    /** Its last run, from start to end (null: not ended, or never started). */
    run_ms: number | null
    /** From creation to its end. */
    total_ms: number | null
  }
}

export function comparableJob(j: Job): JobComparable {
  return {
    task_type: j.task_type,
    state: j.state,
    payload: j.payload,
    result: j.result,
    error: j.error,
    error_class: j.error_class,
    options: {
      queue: logicalQueue(j.queue),
      priority: j.priority,
      max_retries: j.max_retries,
      timeout_ms: j.timeout_ms,
      partition_key: j.partition_key,
      backoff: j.backoff,
      idempotency_key: j.idempotency_key,
    },
    timings: {
      attempts: j.attempts,
      failures: j.failures,
      stalls: j.stalls,
      wait_ms: j.started_at === null ? null : j.started_at - j.created_at,
      run_ms: j.started_at !== null && j.finished_at !== null ? j.finished_at - j.started_at : null,
      total_ms: j.finished_at === null ? null : j.finished_at - j.created_at,
    },
  }
}

/** One attempt of a job as compared: its outcome, worker, error and duration. */
export interface AttemptComparable {
  attempt: number
  outcome: 'failed' | 'completed' | 'cancelled' | 'running' | 'unknown'
  worker: string | null
  started_at: number | null
  ended_at: number | null
  duration_ms: number | null
  error: string | null
  error_class: string | null
  stack: string | null
  result: unknown
}

/**
 * Attempt `n` (1-based) of a job: a failed attempt from its error history (`es`, bounded: the
 * oldest may be gone), the last attempt from the job itself (its worker, start, end, result).
 * Null when the job has no record of it.
 */
export function attemptOf(j: Job, n: number): AttemptComparable | null {
  const e: AttemptError | undefined = j.errors.find((x) => x.attempt === n)
  if (e) {
    return {
      attempt: n,
      outcome: 'failed',
      worker: e.worker,
      started_at: e.started_at ?? null,
      ended_at: e.at,
      duration_ms: e.started_at === undefined ? null : e.at - e.started_at,
      error: e.message,
      error_class: e.class ?? null,
      stack: e.stack ?? null,
      result: null,
    }
  }
  if (n !== j.attempts || n < 1) return null
  const ended = j.state === 'completed' || j.state === 'cancelled' || j.state === 'failed'
  const outcome: AttemptComparable['outcome'] =
    j.state === 'active' ? 'running' : ended ? (j.state as 'completed' | 'cancelled' | 'failed') : 'unknown'
  return {
    attempt: n,
    outcome,
    worker: j.worker,
    started_at: j.started_at,
    ended_at: ended ? j.finished_at : null,
    duration_ms:
      ended && j.started_at !== null && j.finished_at !== null ? j.finished_at - j.started_at : null,
    error: j.state === 'completed' ? null : j.error,
    error_class: j.state === 'completed' ? null : j.error_class,
    stack: null,
    result: j.state === 'completed' ? j.result : null,
  }
}

/** Which attempts of a job are on record (the error history is bounded, the last one is the job's). */
export function attemptsOnRecord(j: Job): number[] {
  const n = new Set(j.errors.map((e) => e.attempt))
  if (j.attempts > 0) n.add(j.attempts)
  return [...n].sort((x, y) => x - y)
}
