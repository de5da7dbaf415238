/**
 * Reclaimer: takes back jobs whose lease lapsed (their worker died or froze) -- XAUTOCLAIM over
 * every priority stream of every queue it is given, iterating the cursor to the end. Reclaimed
 * jobs are requeued (epoch + 1), cancelled if a cancel was requested, or dead-lettered as
 * poison after MAX_DELIVERIES. Entries XAUTOCLAIM reports as deleted are jobs lost outside DTQ:
 * an alarm, and the reclaim script marks the queue for the janitor's repair (in Redis). Run by the maintenance leader
 * only, every CLAIM_IDLE_MS / 2: fleet-wide reclaim work is O(in-flight) per period.
 */
import { PRIORITIES } from '../queue/job.ts'
import type { JobStore } from '../redis/store.ts'
import type { Logger } from './processor.ts'

export interface ReclaimerOptions {
  store: JobStore
  /** The consumer the scripts claim entries to (they are requeued in the same call). */
  consumer: string
  claimIdleMs: number
  maxDeliveries: number
  log: Logger
}

export class Reclaimer {
  private readonly o: ReclaimerOptions

  constructor(o: ReclaimerOptions) {
    this.o = o
  }

  async tick(queues: readonly string[]): Promise<undefined> {
    for (const q of queues) {
      for (const p of PRIORITIES) {
        let cursor = '0-0'
        do {
          const r = await this.o.store.reclaim(
            q,
            this.o.consumer,
            p,
            this.o.claimIdleMs,
            this.o.maxDeliveries,
            cursor,
          )
          cursor = r.cursor
          if (r.requeued || r.poisoned || r.cancelled)
            this.o.log.warn({ queue: q, priority: p, ...r }, 'reclaimed stalled jobs')
          if (r.lost) {
            this.o.log.error(
              { queue: q, priority: p, lost: r.lost },
              'ALARM: pending entries were deleted from the stream outside DTQ (jobs lost); repairing',
            )
          }
        } while (cursor !== '0-0')
      }
    }
  }
}
