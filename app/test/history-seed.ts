/**
 * A small known history for the analytics tests (app/test/analytics.test.ts, ui/e2e/analytics.spec.ts):
 * eight jobs and their attempts written through the archiver's own write (History.write), so
 * every number an analytics route answers can be worked out by hand. T0 is a UTC midnight; the
 * range the tests ask about is [T0, T0 + 48 h); two jobs sit just outside it (T0 - 1 ms and
 * T0 + 48 h: the range is half open).
 */
import type { History } from '../src/history/db.ts'
import type { AttemptRow, JobRow } from '../src/history/rows.ts'

export const T0 = Date.UTC(2026, 10, 20)
export const MIN = 60_000
export const HOUR = 3_600_000

interface Spec {
  id: string
  queue: string
  type: string
  state: 'completed' | 'failed' | 'cancelled'
  /** When it ended, ms after T0. */
  at: number
  wait?: number
  run?: number
  worker?: string
  error?: [string, string]
  /** Failed attempts before the last: [worker, ms after T0, class, message]. */
  before?: Array<[string, number, string, string]>
}

export const SEED: Spec[] = [
  {
    id: 'e1',
    queue: 'default',
    type: 'email',
    state: 'completed',
    at: 10 * MIN,
    wait: 100,
    run: 1000,
    worker: 'w1',
  },
  {
    id: 'e2',
    queue: 'default',
    type: 'email',
    state: 'completed',
    at: 20 * MIN,
    wait: 200,
    run: 2000,
    worker: 'w1',
  },
  {
    id: 'e3',
    queue: 'default',
    type: 'email',
    state: 'failed',
    at: 30 * MIN,
    wait: 300,
    run: 3000,
    worker: 'w2',
    error: ['ETIMEDOUT', 'timeout 1'],
    before: [['w1', 5 * MIN, 'ETIMEDOUT', 'timeout 0']],
  },
  // On the edge between T0's first and second hour: the second one's.
  {
    id: 'e4',
    queue: 'default',
    type: 'email',
    state: 'completed',
    at: HOUR,
    wait: 400,
    run: 4000,
    worker: 'w2',
  },
  {
    id: 'r1',
    queue: 'billing',
    type: 'report',
    state: 'completed',
    at: 90 * MIN,
    wait: 1000,
    run: 10_000,
    worker: 'w1',
  },
  {
    id: 'r2',
    queue: 'billing',
    type: 'report',
    state: 'failed',
    at: 25 * HOUR,
    wait: 50,
    run: 500,
    worker: 'w1',
    error: ['TypeError', 'x is undefined'],
  },
  // Cancelled while waiting: never started, no wait or run, no attempt.
  { id: 'r3', queue: 'billing', type: 'report', state: 'cancelled', at: 26 * HOUR },
  // Outside [T0, T0 + 48 h).
  { id: 'x1', queue: 'default', type: 'email', state: 'completed', at: -1, wait: 1, run: 1, worker: 'w3' },
  {
    id: 'x2',
    queue: 'default',
    type: 'email',
    state: 'completed',
    at: 48 * HOUR,
    wait: 1,
    run: 1,
    worker: 'w3',
  },
]

/** The rows of SEED (times shifted by `t0`). */
export function seedRows(t0 = T0): { jobs: JobRow[]; attempts: AttemptRow[] } {
  const jobs: JobRow[] = []
  const attempts: AttemptRow[] = []
  for (const s of SEED) {
    const finished = t0 + s.at
    const started = s.run === undefined ? null : finished - s.run
    const queued = started === null ? finished - 5000 : started - (s.wait ?? 0)
    const n = (s.before?.length ?? 0) + (started === null ? 0 : 1)
    jobs.push({
      queue: s.queue,
      job_id: s.id,
      task_type: s.type,
      state: s.state,
      priority: 'normal',
      payload: { id: s.id },
      result: s.state === 'completed' ? { ok: true } : null,
      error_class: s.error?.[0] ?? null,
      error: s.error?.[1] ?? null,
      attempts: n,
      max_retries: 3,
      worker: s.worker ?? null,
      partition_key: null,
      created_at: queued - 1000,
      queued_at: queued,
      started_at: started,
      finished_at: finished,
      flow_id: null,
      schedule: null,
      trace: null,
      idempotency_key: null,
      job: { id: s.id } as never,
    })
    for (const [i, [worker, at, cls, msg]] of (s.before ?? []).entries())
      attempts.push({
        queue: s.queue,
        job_id: s.id,
        attempt: i + 1,
        task_type: s.type,
        worker,
        started_at: t0 + at - 100,
        ended_at: t0 + at,
        outcome: 'failed',
        error_class: cls,
        error: msg,
      })
    if (started !== null)
      attempts.push({
        queue: s.queue,
        job_id: s.id,
        attempt: n,
        task_type: s.type,
        worker: s.worker ?? null,
        started_at: started,
        ended_at: finished,
        outcome: s.state,
        error_class: s.error?.[0] ?? null,
        error: s.error?.[1] ?? null,
      })
  }
  return { jobs, attempts }
}

/** Writes SEED into a migrated history. */
export async function seedHistory(history: History, t0 = T0): Promise<void> {
  const { jobs, attempts } = seedRows(t0)
  await history.write(jobs, attempts)
}
