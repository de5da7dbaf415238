import { ID_BLOCK } from '../queue/ids.ts'
import type { RedisClient } from './connection.ts'

/** Skipping ahead past live ids doubles each round up to this many blocks (≈10^12 ids). */
const MAX_SKIP_BLOCKS = 2 ** 30
/** Reservations in a row that found their block in use before one gives up. */
const MAX_ROUNDS = 40
/**
 * An allocator that keeps needing ids reserves more blocks at a time, doubling up to this many:
 * a producer adding 1000-job bulks makes two round trips (INCRBY, the hints) per 16,000 jobs,
 * not per 1000. A process that stops leaves the rest unused (a gap, never a reuse).
 */
const MAX_BLOCKS_AT_ONCE = 16

/** Where the allocator records which queue a block's ids are for (`<prefix>:loc:b:<block>`). */
export interface BlockHints {
  key(block: string): string
  queue: string
  ttlS: number
}

export interface IdAllocatorOptions {
  /** Writes a block hint (SET NX) for each block it reserves; the blocks are ID_BLOCK-aligned. */
  hints?: BlockHints
  /** Called each time the counter is found behind the ids in use (see behind()). */
  onBehind?: (detail: { counter: string; block?: string; ids?: string[] }) => void
}

/**
 * Job ids from one counter shared by every process and queue (`<prefix>:ids`), handed out in
 * blocks (hi/lo): an allocator (one per queue in a store) reserves ID_BLOCK ids with one INCRBY
 * and numbers that queue's jobs from the block, so ids are unique across queues and processes at
 * one round trip per thousand jobs. Short ids keep a waiting job small (the id is in its key, its
 * stream entry and its events: docs/decisions/0011). Ids are not in time order across processes;
 * nothing relies on that (listings sort by the time a job entered its state). A block left unused
 * when a process stops is a gap, never a reuse.
 *
 * With hints, each reserved block is recorded as belonging to its queue (`SET NX`, one more round
 * trip per block), so a lookup by id reads one key to find the job's queue. Blocks are aligned
 * to ID_BLOCK for that (a counter set by hand to another value is realigned by the next
 * reservation: the odd ids are a gap). A block whose hint already exists was handed out before:
 * the counter went back (deleted, restored) -- the allocator skips ahead instead of reusing it.
 * The enqueue function also reports generated ids that name live jobs of its queue (behind()).
 * Either way the counter only moves forward, by jumps that double each round, so a counter reset
 * under a million live ids heals in about ten rounds.
 */
export class IdAllocator {
  private next = 0
  private end = 0
  /** Ids to skip on the next reservation (the counter is behind, or misaligned). */
  private skip = 0
  private refill: Promise<void> | null = null
  /** Blocks the next reservation takes at least (grows while the allocator keeps refilling). */
  private blocksAtOnce = 1
  private readonly redis: RedisClient
  private readonly key: string
  private readonly block: number
  private readonly opts: IdAllocatorOptions

  constructor(redis: RedisClient, key: string, block = ID_BLOCK, opts: IdAllocatorOptions = {}) {
    if (opts.hints && block % ID_BLOCK !== 0)
      throw new Error(`hinted id blocks must be multiples of ${ID_BLOCK}`)
    this.redis = redis
    this.key = key
    this.block = block
    this.opts = opts
  }

  /** `n` fresh ids. */
  async take(n: number): Promise<string[]> {
    while (this.end - this.next < n) {
      if (!this.refill) {
        const blocks = Math.max(this.blocksAtOnce, Math.ceil(n / this.block))
        this.blocksAtOnce = Math.min(this.blocksAtOnce * 2, MAX_BLOCKS_AT_ONCE)
        this.refill = this.reserve(blocks * this.block).finally(() => {
          this.refill = null
        })
      }
      await this.refill
    }
    const out = new Array<string>(n)
    for (let i = 0; i < n; i++) out[i] = String(this.next + i)
    this.next += n
    return out
  }

  /**
   * The ids last handed out name live jobs: the counter is behind the data. Drops what is left
   * of the block; the next reservation first skips ID_BLOCK × 2^round ids (`round`: how many
   * times in a row the caller has found its ids taken).
   */
  behind(round: number, ids: string[]): void {
    this.opts.onBehind?.({ counter: this.key, ids })
    this.next = this.end
    this.skip = Math.max(this.skip, this.jump(round))
  }

  private jump(round: number): number {
    return ID_BLOCK * Math.min(2 ** round, MAX_SKIP_BLOCKS)
  }

  private async reserve(k: number): Promise<void> {
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const skip = this.skip
      this.skip = 0
      const top = await this.redis.incrby(this.key, skip + k)
      // What was left of the previous block is dropped: a gap, and blocks stay contiguous.
      const misaligned = top % this.block
      if (misaligned !== 0) {
        this.skip = this.block - misaligned
        continue
      }
      if (this.opts.hints && !(await this.claim(top - k + 1, top))) {
        this.skip = this.jump(round)
        continue
      }
      this.next = top - k + 1
      this.end = top + 1
      return
    }
    throw new Error(`no free block of job ids after ${MAX_ROUNDS} rounds (counter ${this.key})`)
  }

  /** Records the blocks of ids `from`..`to` as the queue's; false if one was handed out before. */
  private async claim(from: number, to: number): Promise<boolean> {
    const h = this.opts.hints!
    const blocks: string[] = []
    for (let b = Math.floor((from - 1) / ID_BLOCK); b <= Math.floor((to - 1) / ID_BLOCK); b++)
      blocks.push(String(b))
    const res = await Promise.all(blocks.map((b) => this.redis.set(h.key(b), h.queue, 'EX', h.ttlS, 'NX')))
    const used = blocks.filter((_, i) => res[i] !== 'OK')
    for (const block of used) this.opts.onBehind?.({ counter: this.key, block })
    return used.length === 0
  }
}
