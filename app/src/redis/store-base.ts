/**
 * What every part of the store shares: the connection, the key builder, the settings, the clock,
 * and how a function of the library is called. JobReads (reads.ts) and JobStore (store.ts, the
 * state changes) build on it; nothing else in DTQ talks to Redis about jobs.
 */

import { routingHash } from '../queue/partitions.ts'
import type { RedisClient } from './connection.ts'
import { Keys } from './keys.ts'
import { functions, type ScriptName } from './scripts.ts'

export interface Clock {
  now(): number
}
export const systemClock: Clock = { now: () => Date.now() }

export interface StoreOptions {
  prefix: string
  eventsMaxLen: number
  completedRetentionS: number
  failedRetentionS: number
  /** Attempt errors kept on a job. */
  errorsKept?: number
  /** Log lines kept per job. */
  logsKept?: number
  /** The most queues the registry holds (MAX_QUEUES): a new queue beyond it is refused. */
  maxQueues?: number
  /** Replicas that must have an enqueue before it is acknowledged (ENQUEUE_WAIT_REPLICAS; 0: none). */
  enqueueWaitReplicas?: number
  /** How long an enqueue waits for them (ENQUEUE_WAIT_TIMEOUT_MS). */
  enqueueWaitTimeoutMs?: number
  clock?: Clock
  /** Where the store reports what an operator should know (default: process.emitWarning). */
  warn?: (detail: object, message: string) => void
}

/** MAX_QUEUES when none is given (config.ts has the same default). */
export const DEFAULT_MAX_QUEUES = 1000

/** How often a process records that its function library is in use (see pruneFunctionLibraries). */
const LIBRARY_SEEN_EVERY_MS = 3_600_000

/**
 * How often a process refreshes the partition lists it read. Lists only grow, so a stale one
 * routes to and reads partitions that exist -- fewer of them -- for about this long.
 */
export const PARTITIONS_FRESH_MS = 1000

/** A block hint lives 30 days (one key per thousand generated ids). */
export const LOC_BLOCK_TTL_S = 30 * 86_400

export class StoreBase {
  readonly redis: RedisClient
  readonly keys: Keys
  readonly opts: Required<Omit<StoreOptions, 'clock' | 'warn'>>
  readonly clock: Clock
  protected readonly lib = functions()
  private librarySeenAt = 0

  constructor(redis: RedisClient, opts: StoreOptions) {
    this.redis = redis
    this.keys = new Keys(opts.prefix)
    this.clock = opts.clock ?? systemClock
    this.opts = {
      prefix: opts.prefix,
      eventsMaxLen: opts.eventsMaxLen,
      completedRetentionS: opts.completedRetentionS,
      failedRetentionS: opts.failedRetentionS,
      errorsKept: opts.errorsKept ?? 25,
      logsKept: opts.logsKept ?? 100,
      maxQueues: opts.maxQueues ?? DEFAULT_MAX_QUEUES,
      enqueueWaitReplicas: opts.enqueueWaitReplicas ?? 0,
      enqueueWaitTimeoutMs: opts.enqueueWaitTimeoutMs ?? 1000,
    }
  }

  protected run<T>(
    name: ScriptName,
    queue: string,
    args: ReadonlyArray<string | number>,
    now = this.clock.now(),
  ): Promise<T> {
    if (now - this.librarySeenAt > LIBRARY_SEEN_EVERY_MS) {
      // This version's library is in use: recorded so the janitor never deletes it (hourly).
      this.librarySeenAt = now
      void this.redis.hset(this.keys.functionLibraries(), this.lib.name, now).catch(() => {
        this.librarySeenAt = 0
      })
    }
    return this.lib.call<T>(this.redis, name, this.keys.base(queue), [...this.common(now), ...args])
  }

  /** ARGV[1..4] of every script (see scripts/lib/1-context.lua). */
  protected common(now: number): number[] {
    return [now, this.opts.eventsMaxLen, this.opts.completedRetentionS, this.opts.failedRetentionS]
  }

  async queues(): Promise<string[]> {
    return (await this.redis.smembers(this.keys.queues())).sort()
  }

  private partitionCache: {
    at: number
    names: Map<string, string[]>
    /** The counts each partitioned queue had before it grew (keys.partitionsBefore). */
    before: Map<string, number[]>
    reading?: Promise<Map<string, string[]>>
  } = { at: Number.NEGATIVE_INFINITY, names: new Map(), before: new Map() }

  /**
   * The partitions of partitioned queues, by queue. Read once, then refreshed in the background
   * at most every PARTITIONS_FRESH_MS: a caller never waits for the refresh (an enqueue makes no
   * extra round trip), since a list only grows and a stale one names partitions that exist.
   * `fresh`: read now and wait for it (setting partitions, pausing a queue).
   */
  async partitionNames(fresh = false): Promise<Map<string, string[]>> {
    const c = this.partitionCache
    const loaded = c.at !== Number.NEGATIVE_INFINITY
    if (!fresh && loaded && Date.now() - c.at < PARTITIONS_FRESH_MS) return c.names
    c.reading ??= Promise.all([
      this.redis.hgetall(this.keys.partitions()),
      this.redis.hgetall(this.keys.partitionsBefore()),
    ])
      .then(([h, b]) => {
        const names = new Map(Object.entries(h).map(([q, list]) => [q, list.split(' ')] as const))
        const before = new Map(
          Object.entries(b).map(([q, list]) => [q, list.split(' ').map(Number)] as const),
        )
        this.partitionCache = { at: Date.now(), names, before }
        return names
      })
      .finally(() => {
        c.reading = undefined
      })
    if (fresh || !loaded) return c.reading
    c.reading.catch(() => {}) // a failed refresh is tried again by the next caller
    return c.names
  }

  /**
   * The partitions an earlier copy of a job routed by `key` may be in: where the key routed
   * under each count `queue` had before it grew, `current` (where it routes now) left out. Empty
   * for a queue that never grew -- the common case costs nothing. Read with partitionNames().
   */
  partitionsOnceRouted(queue: string, key: string, current: string): string[] {
    const counts = this.partitionCache.before.get(queue)
    const names = this.partitionCache.names.get(queue)
    if (!counts || !names) return []
    const out: string[] = []
    for (const n of counts) {
      const p = names[routingHash(key) % n]
      if (p && p !== current && !out.includes(p)) out.push(p)
    }
    return out
  }

  /** How many partitions a queue has (1: not partitioned). */
  async partitionCount(queue: string): Promise<number> {
    return (await this.partitionNames()).get(queue)?.length ?? 1
  }

  /**
   * The physical queues a read of `queue` covers: its partitions (just itself when it has
   * none), or, without a queue, every queue in the registry (partitions included).
   */
  async physicalQueues(queue?: string): Promise<string[]> {
    if (queue === undefined) return this.queues()
    return (await this.partitionNames()).get(queue) ?? [queue]
  }
}
