/**
 * Janitor: bounds what grows, for every queue it is given (run by the maintenance leader only,
 * every 30 s): completed jobs past retention, index entries of expired jobs, DLQ entries past
 * FAILED_RETENTION_S, idle consumers of dead workers; queues that have held nothing for
 * QUEUE_FORGET_S leave the registry; function libraries of DTQ versions unused for a day are
 * deleted. Under memory pressure (Redis near its maxmemory; checked every 2 s by its own
 * loop) it removes completed jobs before their retention, oldest first: a full Redis frees what
 * it can instead of refusing new work until an operator steps in. And it repairs queues whose stream entries were deleted
 * behind DTQ's back (dead-letters the jobs they stranded). It continues created-time index
 * backfills and sweeps those indexes of expired jobs (ADR 0035).
 */
import type { Registry } from '../redis/registry.ts'
import type { JobStore } from '../redis/store.ts'
import type { Logger } from './processor.ts'

export interface JanitorOptions {
  store: JobStore
  registry: Registry
  log: Logger
  /** Consumers idle this long that hold nothing and belong to no live worker are removed. */
  consumerIdleMs: number
  /** A queue empty this long is forgotten (0: never). */
  queueForgetMs: number
}

/** Above this share of maxmemory the janitor frees memory ahead of retention ... */
export const PRESSURE_HIGH = 0.9
/** ... until use is back under this share. */
export const PRESSURE_LOW = 0.8
/** Function libraries unused this long are deleted. */
const LIBRARY_MAX_AGE_MS = 24 * 3_600_000

export class Janitor {
  private readonly o: JanitorOptions
  constructor(o: JanitorOptions) {
    this.o = o
  }

  async tick(queues: readonly string[], served: ReadonlySet<string>): Promise<undefined> {
    const { store, log } = this.o
    const live = new Set((await this.o.registry.list()).map((w) => w.id))
    for (const q of queues) {
      const { createdIndex, repairDue, ...r } = await store.sweep(q, live, this.o.consumerIdleMs)
      if (r.completedJobs || r.indexEntries || r.dlqEntries || r.consumers)
        log.debug({ queue: q, ...r }, 'janitor swept')
      // The created-time index (ADR 0035): a backfill its API process left unfinished goes on
      // here; members of jobs expired by TTL go, a bounded walk per tick.
      if (createdIndex === 'building') await store.createdBackfill(q, 20)
      else if (createdIndex === 'on') await store.createdSweep(q)
      // A reclaim saw entries deleted behind DTQ's back (reclaim.lua records it in Redis, so
      // the trigger survives the leader that saw it): the jobs they stranded are repaired.
      if (repairDue) {
        const repaired = await store.repairLostJobs(q, repairDue)
        if (repaired)
          log.error({ queue: q, repaired }, 'jobs stranded by deleted stream entries dead-lettered')
      }
    }
    if (this.o.queueForgetMs > 0) {
      for (const q of queues) {
        if (!served.has(q) && (await store.forgetQueueIfIdle(q, this.o.queueForgetMs)))
          log.info({ queue: q }, 'queue empty and unused: forgotten')
      }
    }
    const gone = await store.pruneFunctionLibraries(LIBRARY_MAX_AGE_MS)
    if (gone.length) log.info({ libraries: gone }, 'function libraries of old versions deleted')
  }

  /**
   * Redis near its maxmemory: completed jobs go before their retention, oldest first, across
   * queues, until use is back under PRESSURE_LOW (or nothing completed is left).
   */
  async relievePressure(queues: readonly string[]): Promise<number> {
    const { store, log } = this.o
    let mem = await store.memoryUse()
    if (!mem || mem.used < mem.max * PRESSURE_HIGH) return 0
    let pruned = 0
    for (const retentionS of [600, 60, 0]) {
      for (const q of queues) pruned += await store.pruneCompleted(q, 1000, 20, retentionS)
      mem = await store.memoryUse()
      if (!mem || mem.used < mem.max * PRESSURE_LOW) break
    }
    log.warn(
      { pruned, used: mem?.used, maxmemory: mem?.max },
      'Redis near maxmemory: completed jobs removed before their retention',
    )
    return pruned
  }
}
