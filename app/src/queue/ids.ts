import type { Redis } from 'ioredis'

/** How many ids one INCRBY reserves: one round trip per this many jobs added by a process. */
export const ID_BLOCK = 1000

/** Ids DTQ generates are decimal integers; a caller's own id must not look like one. */
export const GENERATED_ID = /^[0-9]+$/

/**
 * Job ids from one counter shared by every process (`<prefix>:ids`), handed out in blocks
 * (hi/lo): each process reserves ID_BLOCK ids with one INCRBY and numbers its jobs from that
 * block, so ids are unique across queues and processes at one round trip per thousand jobs.
 * Short ids keep a waiting job small (the id is in its key, its stream entry and its events:
 * docs/decisions/0011). Ids are not in time order across processes; nothing relies on that
 * (listings sort by the time a job entered its state). A block left unused when a process
 * stops is a gap, never a reuse.
 */
export class IdAllocator {
  private next = 0
  private end = 0
  private refill: Promise<void> | null = null
  private readonly redis: Redis
  private readonly key: string
  private readonly block: number

  constructor(redis: Redis, key: string, block = ID_BLOCK) {
    this.redis = redis
    this.key = key
    this.block = block
  }

  /** `n` fresh ids. */
  async take(n: number): Promise<string[]> {
    while (this.end - this.next < n) {
      this.refill ??= this.reserve(Math.max(this.block, n)).finally(() => {
        this.refill = null
      })
      await this.refill
    }
    const out = new Array<string>(n)
    for (let i = 0; i < n; i++) out[i] = String(this.next + i)
    this.next += n
    return out
  }

  private async reserve(k: number): Promise<void> {
    const top = await this.redis.incrby(this.key, k)
    // What was left of the previous block is dropped: a gap, and blocks stay contiguous.
    this.next = top - k + 1
    this.end = top + 1
  }
}
