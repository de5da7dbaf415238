/**
 * What every part of `pnpm bench` shares: the command line, the sizes, the private redis-server
 * and what is read from it (Redis's CPU, its memory), clocks, and the shapes of the figures.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { Redis } from 'ioredis'
import { privateRedis } from './private-redis.ts'

const argv = process.argv.slice(2)
export const SMOKE = argv.includes('--smoke')
/** --only a,b,c,d,e,f,g runs some scenarios (f: features configured, g: the cluster). */
const ONLY = (() => {
  const i = argv.indexOf('--only')
  return i >= 0 ? new Set((argv[i + 1] ?? '').split(',')) : null
})()
export const CLUSTER = argv.includes('--cluster')
export const want = (k: string): boolean =>
  (k === 'g' && CLUSTER) || (ONLY ? ONLY.has(k) : k !== 'g' || !SMOKE)
export const ONLY_GIVEN = ONLY !== null
export const RUNS = Number(argValue('--runs') ?? (SMOKE ? 1 : 3))
export const N_BULK = SMOKE ? 2000 : 100_000
export const N_DRAIN = Number(argValue('--drain') ?? (SMOKE ? 2000 : 100_000))
export const N_SAT = SMOKE ? 2000 : 50_000
export const N_MEM = SMOKE ? 1000 : 20_000
export const LAT_RATE = SMOKE ? 500 : 5000
export const LAT_SECONDS = SMOKE ? 1 : 5
export const HTTP_SECONDS = SMOKE ? 1 : 8
export const CONCURRENCY = 100
export const CLI = new URL('../../app/src/cli/main.ts', import.meta.url).pathname

function argValue(name: string): string | undefined {
  const i = argv.indexOf(name)
  return i >= 0 ? argv[i + 1] : undefined
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const children = new Set<ChildProcess>()
// A run that fails leaves no `dtq` process behind (it would retry a stopped redis-server forever).
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL')
})

/** `node <the dtq CLI> ...args` with exactly `env` (and PATH); stdout piped when asked, stderr shown. */
export function spawnDtq(
  args: string[],
  env: Record<string, string>,
  stdout: 'pipe' | 'ignore',
): ChildProcess {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', stdout, 'inherit'],
  })
  children.add(child)
  child.once('exit', () => children.delete(child))
  return child
}

/** Ends a process spawnDtq started (SIGTERM: a graceful stop) and waits for it. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((r) => child.once('exit', r))
  child.kill('SIGTERM')
  await exited
}

/**
 * Wall-clock time in ms with µs resolution that two processes on one machine agree on (the
 * enqueue→start latency and the CLI worker's first start are stamped in one process and read in
 * another): the process's time origin plus the monotonic clock since.
 */
export const nowMs = (): number => performance.timeOrigin + performance.now()

/** The private redis-server every contender shares (AOF and RDB off), and an admin client on it. */
export const server = { port: 0, url: '', admin: undefined as unknown as Redis, stop: () => {} }

export async function startServer(): Promise<void> {
  const { port, stop } = await privateRedis('b')
  Object.assign(server, { port, url: `redis://127.0.0.1:${port}`, admin: new Redis({ port }), stop })
}

export function stopServer(): void {
  server.admin.disconnect()
  server.stop()
}

export const flush = async (): Promise<void> => {
  await server.admin.flushall()
}

/** Redis's own CPU so far (INFO cpu: used_cpu_user + used_cpu_sys, all its threads), µs. */
export async function redisCpuUs(redis: Pick<Redis, 'info'> = server.admin): Promise<number> {
  const info = await redis.info('cpu')
  const v = (k: string) => Number(new RegExp(`^${k}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0)
  return (v('used_cpu_user') + v('used_cpu_sys')) * 1e6
}

export async function usedMemory(): Promise<number> {
  return Number(/^used_memory:(\d+)/m.exec(await server.admin.info('memory'))?.[1])
}

export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? 0
}

/** A drain's figures: jobs/s from the first job started to the last completed, Redis CPU µs per job. */
export interface Drain {
  rate: number
  cpuUs: number
}

export interface Latency {
  /** Enqueue→start, µs. */
  p50: number
  p99: number
}

export interface Memory {
  /** Redis bytes per waiting job, and per completed job as retained by default. */
  waiting: number
  completed: number
}

/** What a drain is timed around: the consumer started, a count of jobs completed, and its stop. */
export interface Consuming {
  completed: () => number | Promise<number>
  stop: () => Promise<void>
}

export async function untilCompleted(c: Consuming, n: number): Promise<void> {
  while ((await c.completed()) < n) await sleep(5)
}

/**
 * Times a drain of `n` jobs already queued: from the first job started (`first`, called by the
 * handler, or given a time stamped in another process) to the last completed, so no
 * contender's start-up (connections, scripts, a process) is counted. Redis's CPU is read around
 * the whole drain, start-up included (a few commands).
 */
export async function timedDrain(
  n: number,
  start: (first: (at?: number) => void) => Promise<Consuming>,
): Promise<Drain> {
  let t0 = 0
  const cpu0 = await redisCpuUs()
  const c = await start((at = nowMs()) => {
    if (!t0) t0 = at
  })
  await untilCompleted(c, n)
  const t1 = nowMs()
  const cpu1 = await redisCpuUs()
  await c.stop()
  return { rate: n / ((t1 - t0) / 1000), cpuUs: (cpu1 - cpu0) / n }
}

/** Times producer and consumer together: `n` jobs added by `produce` while the consumer runs. */
export async function timedSaturated(
  n: number,
  start: () => Promise<Consuming>,
  produce: () => Promise<unknown>,
): Promise<number> {
  const c = await start()
  const t0 = nowMs()
  await produce()
  await untilCompleted(c, n)
  const s = (nowMs() - t0) / 1000
  await c.stop()
  return n / s
}

/**
 * Adds single jobs at LAT_RATE/s for LAT_SECONDS (a tick every 10 ms), each stamped with nowMs()
 * in its payload; the handler records nowMs() - stamp. Returns the latencies' p50 and p99 in µs.
 */
export async function pacedLatency(
  add: (t: number) => Promise<unknown>,
  start: (seen: (t: number) => void) => Promise<Consuming>,
): Promise<Latency> {
  const lat: number[] = []
  const c = await start((t) => lat.push((nowMs() - t) * 1000))
  const total = LAT_RATE * LAT_SECONDS
  const perTick = Math.max(1, Math.round(LAT_RATE / 100))
  const t0 = performance.now()
  let sent = 0
  // The adds in flight are counted, their results not kept: holding every add's promise (and so
  // its result) to the end, as a producer never does, made each contender's results live for
  // seconds -- promoted, then freed by the major GCs that made the p99 (docs/performance.md).
  let pending = 0
  let failed: { err: unknown } | undefined
  let drained = () => {}
  const settled = () => {
    if (--pending === 0) drained()
  }
  while (sent < total) {
    for (let k = 0; k < perTick && sent < total; k++, sent++) {
      pending++
      add(nowMs()).then(settled, (err: unknown) => {
        failed ??= { err }
        settled()
      })
    }
    const wait = t0 + (sent / LAT_RATE) * 1000 - performance.now()
    if (wait > 0) await sleep(wait)
  }
  if (pending > 0)
    await new Promise<void>((r) => {
      drained = r
    })
  if (failed) throw failed.err
  while (lat.length < total) await sleep(5)
  await c.stop()
  return { p50: percentile(lat, 50), p99: percentile(lat, 99) }
}

/** Redis bytes per job: after `fill` (waiting), and after `drain` ran them (retained completed). */
export async function memoryPerJob(
  n: number,
  first: () => Promise<unknown>,
  fill: () => Promise<unknown>,
  drain: () => Promise<unknown>,
): Promise<Memory> {
  await first() // the queue's structures exist before the baseline
  const m0 = await usedMemory()
  await fill()
  const m1 = await usedMemory()
  await drain()
  const m2 = await usedMemory()
  return { waiting: (m1 - m0) / n, completed: (m2 - m0) / n }
}

/** Calls `each(from, count)` over 0..n in batches of `size`, one after the other. */
export async function inBatches(
  n: number,
  size: number,
  each: (from: number, count: number) => Promise<unknown>,
): Promise<void> {
  for (let i = 0; i < n; i += size) await each(i, Math.min(size, n - i))
}

/** One system under test: each scenario it takes part in (a missing one is left out of that scenario). */
export interface Contender {
  name: string
  /** A variant printed beside DTQ (its features configured): its rows carry no target. */
  informational?: boolean
  bulk?: (n: number) => Promise<number>
  drain?: (n: number) => Promise<Drain>
  saturated?: (n: number) => Promise<number>
  latency?: () => Promise<Latency>
  memory?: (n: number) => Promise<Memory>
  http?: () => Promise<Http>
}

export interface Http {
  rps: number
  /** ms */
  p99: number
  /** The server's CPU (its process: user + system) per request answered, µs. */
  cpuUs: number
}

/** A payload: `t` is an enqueue stamp (nowMs()) for the latency scenario. */
export type Payload = { n?: number; t?: number }

/** The few operations of a queue system from which `contender` builds every scenario. */
export interface System<Q> {
  name: string
  informational?: boolean
  /** A fresh queue on a flushed server. */
  queue: () => Promise<Q>
  /** Adds n jobs in bulk calls of `size`. */
  fill: (q: Q, n: number, size?: number) => Promise<unknown>
  add: (q: Q, payload: Payload) => Promise<unknown>
  /** Starts a consumer of q at concurrency 100 (`handler` sees each job's payload as it starts); its stop closes q too. */
  consume: (q: Q, handler?: (payload: Payload) => void) => Promise<Consuming>
  close: (q: Q) => Promise<unknown>
}

export function contender<Q>(s: System<Q>): Contender {
  return {
    name: s.name,
    informational: s.informational,
    async bulk(n) {
      const q = await s.queue()
      const t0 = performance.now()
      await s.fill(q, n)
      const secs = (performance.now() - t0) / 1000
      await s.close(q)
      return n / secs
    },
    async drain(n) {
      const q = await s.queue()
      await s.fill(q, n)
      return timedDrain(n, (first) => s.consume(q, () => first()))
    },
    async saturated(n) {
      const q = await s.queue()
      return timedSaturated(
        n,
        () => s.consume(q),
        () => s.fill(q, n, 500),
      )
    },
    async latency() {
      const q = await s.queue()
      return pacedLatency(
        (t) => s.add(q, { t }),
        (seen) => s.consume(q, (p) => seen(p.t!)),
      )
    },
    async memory(n) {
      const q = await s.queue()
      return memoryPerJob(
        n,
        () => s.add(q, { n: 1 }),
        () => s.fill(q, n),
        async () => {
          const c = await s.consume(q)
          await untilCompleted(c, n + 1)
          await c.stop()
        },
      )
    },
  }
}
