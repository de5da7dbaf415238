/**
 * What a worker shows of itself beyond its counters (GET /workers/{id}, the console's worker
 * page): the jobs it runs now, its outcomes per minute and its latest failures. Kept in memory by
 * the processor and written with each heartbeat into the worker's registry entry, every part
 * bounded (the entry is rewritten every 2 s).
 */

import type { WorkerFailure, WorkerMinute } from '../redis/registry.ts'

export type { RunningJob, WorkerFailure, WorkerMinute } from '../redis/registry.ts'

/** Running jobs listed (the rest are counted by `active`). */
export const RUNNING_LISTED = 100
/** Latest failures kept. */
export const FAILURES_KEPT = 20
/** Minutes of outcome counts kept. */
export const MINUTES_KEPT = 15

export class WorkerActivity {
  private readonly failures: WorkerFailure[] = []
  private readonly minutes: WorkerMinute[] = []
  private readonly now: () => number

  constructor(now: () => number = Date.now) {
    this.now = now
  }

  /** Counts an outcome in its minute and, for a failure, keeps it among the latest ones. */
  record(outcome: 'completed' | 'retrying' | 'failed', failure?: Omit<WorkerFailure, 'at' | 'outcome'>) {
    const at = this.now()
    const minute = Math.floor(at / 60_000) * 60_000
    let m = this.minutes.at(-1)
    if (!m || m.minute !== minute) {
      m = { minute, completed: 0, failed: 0 }
      this.minutes.push(m)
      if (this.minutes.length > MINUTES_KEPT) this.minutes.shift()
    }
    if (outcome === 'completed') m.completed++
    else m.failed++
    if (outcome !== 'completed' && failure) {
      this.failures.unshift({ ...failure, error: failure.error.slice(0, 500), outcome, at })
      if (this.failures.length > FAILURES_KEPT) this.failures.pop()
    }
  }

  /** The latest failures, newest first. */
  recentFailures(): WorkerFailure[] {
    return [...this.failures]
  }

  /** The kept minutes up to `now`, oldest first. */
  rates(): WorkerMinute[] {
    const from = Math.floor(this.now() / 60_000) * 60_000 - (MINUTES_KEPT - 1) * 60_000
    return this.minutes.filter((m) => m.minute >= from)
  }
}
