/** Test bundle: a unique key prefix per test, settings, a Queue, a controllable clock, cleanup. */
import { randomBytes } from 'node:crypto'
import calculateSlot from 'cluster-key-slot'
import { inject } from 'vitest'
import { type Config, loadConfig } from '../src/config.ts'
import { Queue } from '../src/queue/queue.ts'
import {
  connectRedis,
  createRedis,
  type RedisClient,
  type RedisTarget,
  redisTarget,
  scanKeys,
  standalone,
} from '../src/redis/connection.ts'
import type { Clock } from '../src/redis/store.ts'
import { Worker, type WorkerOptions } from '../src/worker/worker.ts'

export class FakeClock implements Clock {
  t: number
  constructor(t = Date.UTC(2026, 10, 22, 12, 0, 0)) {
    this.t = t
  }
  now(): number {
    return this.t
  }
  advance(ms: number): void {
    this.t += ms
  }
}

/** The private standalone redis-server of the test run (always started). */
export function testRedisUrl(): string {
  return inject('redisUrl')
}

/**
 * The Redis the suite runs against: the standalone server, or -- with DTQ_TEST_REDIS=cluster or
 * sentinel (`pnpm test:cluster`, and the CI's cluster and Sentinel sets) -- a local Redis Cluster
 * or a Sentinel-watched primary started by the global setup.
 */
export function testTarget(): RedisTarget {
  return inject('redisTarget')
}

/** The settings that point at a target (REDIS_URL, or the Cluster's or Sentinel's). */
export function targetEnv(t: RedisTarget): Record<string, string> {
  if (t.kind === 'cluster') return { REDIS_CLUSTER_NODES: t.nodes.join(',') }
  if (t.kind === 'sentinel')
    return { REDIS_URL: t.url, REDIS_SENTINELS: t.sentinels.join(','), REDIS_SENTINEL_MASTER: t.master }
  return { REDIS_URL: t.url }
}

export async function waitFor<T>(
  check: () => T | Promise<T>,
  opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + (opts.timeoutMs ?? 15_000)
  let last: unknown
  for (;;) {
    try {
      const v = await check()
      if (v) return v as NonNullable<T>
    } catch (err) {
      last = err
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out waiting for ${opts.what ?? 'condition'}${last ? `: ${(last as Error).message}` : ''}`,
      )
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 20))
  }
}

export interface Bundle {
  prefix: string
  config: Config
  redis: RedisClient
  queue: Queue
  clock: Clock
  worker(overrides?: Partial<Config>, opts?: WorkerOptions): Worker
  /** Every key under the test's prefix but the audit log's. */
  keys(): Promise<string[]>
  cleanup(): Promise<void>
}

/**
 * Every key of a test with its value: proves a call wrote nothing. DUMP, but a hash's or a set's
 * contents sorted (a hashtable's DUMP order can change with no write: incremental rehashing steps
 * on reads), and each key's TTL bucketed to the second.
 */
export async function snapshot(b: Pick<Bundle, 'keys' | 'redis'>): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const k of await b.keys()) {
    const type = await b.redis.type(k)
    let v: string
    if (type === 'hash') v = JSON.stringify(Object.entries(await b.redis.hgetall(k)).sort())
    else if (type === 'set') v = JSON.stringify((await b.redis.smembers(k)).sort())
    else v = (await b.redis.dumpBuffer(k))?.toString('base64') ?? ''
    const ttl = await b.redis.ttl(k)
    out[k] = `${type} ${ttl < 0 ? ttl : 'ttl'} ${v}`
  }
  return out
}

/** Settings for tests: short windows so crash detection and retries happen in a second or so. */
export function testConfig(prefix: string, overrides: Partial<Config> = {}, url?: string): Config {
  return loadConfig(
    {
      ...targetEnv(url ? standalone(url) : testTarget()),
      KEY_PREFIX: prefix,
      LEASE_MS: '100',
      CLAIM_IDLE_MS: '1000',
      INITIAL_BACKOFF_MS: '50',
      MAX_BACKOFF_MS: '200',
      SHUTDOWN_TIMEOUT_MS: '2000',
      WORKER_CONCURRENCY: '4',
      LOG_LEVEL: 'silent',
    },
    overrides,
  )
}

export async function setup(
  opts: { clock?: Clock; config?: Partial<Config>; url?: string } = {},
): Promise<Bundle> {
  const prefix = `t${randomBytes(5).toString('hex')}`
  const config = testConfig(prefix, opts.config, opts.url)
  const redis = createRedis({ target: redisTarget(config), commandTimeoutMs: config.redisCommandTimeoutMs })
  await connectRedis(redis)
  const clock = opts.clock ?? { now: () => Date.now() }
  const queue = new Queue(redis, config, { clock })
  const workers: Worker[] = []
  return {
    prefix,
    config,
    redis,
    queue,
    clock,
    worker(overrides = {}, wopts = {}) {
      const w = new Worker(
        { ...config, ...overrides },
        { heartbeatMs: 200, janitorEveryMs: 60_000, schedulerPollMs: 50, ...wopts },
      )
      workers.push(w)
      return w
    },
    async keys() {
      const out: string[] = []
      // The audit log records refused actions too, by design (ADR 0026): not the action's writes.
      const audit = `${prefix}:audit`
      await scanKeys(redis, `${prefix}:*`, (batch) => {
        out.push(...batch.filter((k) => k !== audit))
      })
      return out.sort()
    },
    async cleanup() {
      await Promise.all(workers.map((w) => w.close(500).catch(() => {})))
      // One key per command: on a Cluster the keys live in many slots.
      await scanKeys(redis, `${prefix}:*`, async (batch) => {
        await Promise.all(batch.map((k) => redis.unlink(k)))
      })
      redis.disconnect()
    },
  }
}

/** Three queue names whose slots are in different thirds of the slot space (a primary each on a 3-primary Cluster). */
export function spreadQueues(stem: string): [string, string, string] {
  const picked: string[] = []
  for (let i = 0; picked.length < 3; i++) {
    const name = `${stem}${i}`
    const third = Math.floor(calculateSlot(`{${name}}`) / 5462)
    if (!picked.some((p) => Math.floor(calculateSlot(`{${p}}`) / 5462) === third)) picked.push(name)
  }
  return picked as [string, string, string]
}

/** The most intervals overlapping at any instant (an end at the same ms as a start comes first): run ledgers. */
export function maxOverlap(runs: ReadonlyArray<{ start: number; end: number }>): number {
  const edges = runs.flatMap((r) => [
    [r.start, 1],
    [r.end, -1],
  ])
  edges.sort((x, y) => x[0]! - y[0]! || x[1]! - y[1]!)
  let now = 0
  let max = 0
  for (const [, d] of edges) {
    now += d!
    max = Math.max(max, now)
  }
  return max
}

/** A plain job record as the enqueue function takes it, with these extra fields (tests of its checks). */
export function plainRecord(id: string, extra: Record<string, string>) {
  return {
    id,
    task_type: 't',
    payload: '{}',
    priority: 'normal' as const,
    max_retries: 0,
    timeout_ms: 0,
    run_at: 0,
    idem_hash: '',
    idempotency_key: '',
    idem_ttl_s: 60,
    partition_key: '',
    extra,
  }
}

export { monitorRedis } from './monitor.ts'
