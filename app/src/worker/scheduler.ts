/**
 * Scheduler: moves due delayed jobs (initial delays, retry backoff) to their ready streams.
 * One tick promotes every due job of every queue it is given and says how long to sleep: until
 * the next job is due, at most `pollMs` (a job added with a delay meanwhile is found by the
 * next poll). Promotion is safe with any number of schedulers at once (the promote script's
 * ZREM decides who moves a job); only the maintenance leader runs one, so the idle cost is
 * O(queues) for the fleet, not O(workers × queues).
 */
import type { Clock, JobStore } from '../redis/store.ts'

export interface SchedulerOptions {
  store: JobStore
  clock: Clock
  pollMs: number
  /** NEGATIVE CONTROL ONLY (DTQ_UNSAFE=no-delayed-gating): promotes without the ZREM gate. */
  promote?: (
    store: JobStore,
    queue: string,
    limit: number,
  ) => Promise<{ moved: number; nextDue: number | null }>
}

const BATCH = 500

export class Scheduler {
  private readonly o: SchedulerOptions

  constructor(o: SchedulerOptions) {
    this.o = o
  }

  /** Promotes what is due in `queues`; returns the ms to sleep before the next tick. */
  async tick(queues: readonly string[]): Promise<number> {
    let next = Number.POSITIVE_INFINITY
    for (const q of queues) {
      for (;;) {
        const r = this.o.promote
          ? await this.o.promote(this.o.store, q, BATCH)
          : await this.o.store.promote(q, BATCH)
        if (r.nextDue !== null) next = Math.min(next, r.nextDue)
        if (r.moved < BATCH) break
      }
    }
    return Math.max(5, Math.min(this.o.pollMs, next - this.o.clock.now()))
  }
}
