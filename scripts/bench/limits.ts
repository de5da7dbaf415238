/**
 * Flow control's cost (ADR 0022), on a private redis-server (AOF off, as the bench):
 *
 *   plain fetch A/B   the `fetch` function (a worker's steady-state call: completes the jobs it
 *                     is given, starts the next ones) of a base commit before flow control (A,
 *                     default 61c254c) against this tree's (B), both loaded into the one
 *                     server, on queues WITHOUT limits: JOBS plain jobs enqueued in each side's
 *                     queue (by its own enqueue), then both drained by fetch calls of PER_CALL
 *                     jobs, IN_FLIGHT consumers each handing back its previous call's jobs as
 *                     completions -- A and B in alternating rounds of one call per consumer, so
 *                     load from elsewhere on the shared machine falls on both alike; runs start
 *                     with A and B in turn. Jobs/s (over each side's own rounds), Redis's µs
 *                     per FCALL (SLOWLOG at threshold 0: the mean, as commandstats gives, and
 *                     the median call, which a stalled call does not move), and each run's B / A:
 *                     the gate and the move hook should cost the plain path nothing (one HGETALL
 *                     of the absent limits hash a call).
 *   limits vs plain   real Workers (concurrency 100, a no-op handler) draining WORKER_JOBS jobs
 *                     enqueued beforehand, in interleaved runs of: a plain queue; key_concurrency
 *                     1 with the jobs spread over 1000 partition keys; a queue cap of 50; a
 *                     type rate limit far above the throughput (the gate's cost when it never
 *                     blocks). Jobs/s, the ratio to plain, and how many times jobs were parked.
 *
 *   node scripts/bench/limits.ts [--base <git ref>] [--only fetch|workers] [--smoke]
 *   (~2 min; --smoke: seconds; PER_CALL=<n> jobs per fetch call, default 100: two sizes give a
 *   call's fixed cost and the cost per job -- docs/performance.md)
 */
import { type Config, Queue, Worker } from '@dtq/app'
import { Redis } from 'ioredis'
import type { LimitsSpec } from '../../app/src/queue/limits.ts'
import { FunctionLibrary } from '../../app/src/redis/scripts.ts'
import {
  abOrder,
  arg,
  baseLibrary,
  completionArgs,
  fmt,
  median,
  pushCompletion,
  pushPlainJobs,
  SMOKE,
  type Started,
  startedJobs,
} from './function-ab.ts'
import { privateRedis } from './private-redis.ts'

const BASE = arg('--base') ?? '61c254c'
const AB_RUNS = SMOKE ? 1 : 8
const JOBS = SMOKE ? 1000 : 40_000
const PER_CALL = Number(process.env.PER_CALL ?? 100)
const IN_FLIGHT = 4
const SLOWLOG_LEN = 100_000
const WORKER_RUNS = SMOKE ? 1 : 5
const WORKER_JOBS = SMOKE ? 1000 : 20_000
const KEYS = 1000

// ---- part 1: the plain fetch path, A/B ---------------------------------------------------------

/** ARGV[1..4] of every call: now, events kept, completed and failed retention (s). */
const common = () => [Date.now(), 10000, 3600, 86400]

/** A consumer's state between calls: the jobs it got last (to complete next), and whether the queue ran dry. */
interface Consumer {
  name: string
  finished: Started[]
  dry: boolean
}

/** One side of a run: its functions, its queue, its consumers and its running totals. */
interface Side {
  fns: { enqueue: string; fetch: string }
  /** Arguments per completion in this side's fetch (completionArgs). */
  completionArgs: 5 | 10
  base: string
  consumers: Consumer[]
  secs: number
  completed: number
}

interface SideResult {
  /** Jobs per second over the side's own rounds. */
  rate: number
  /** Redis µs per FCALL, the mean (what INFO commandstats gives). */
  mean: number
  /** Redis µs of the median call: a call that the machine's other load stalled does not move it. */
  mid: number
}

/** One fetch call by each consumer (IN_FLIGHT in flight), each handing back the jobs of its last call. */
async function round(redis: Redis, side: Side): Promise<void> {
  const t0 = performance.now()
  await Promise.all(
    side.consumers
      .filter((c) => !c.dry)
      .map(async (c) => {
        const args: Array<string | number> = [...common(), c.name, PER_CALL, c.finished.length]
        for (const j of c.finished) pushCompletion(args, j, side.completionArgs)
        const reply = (await redis.call('FCALL', side.fns.fetch, 1, side.base, ...args)) as [
          number[],
          string[] | string,
        ]
        side.completed += reply[0].filter((d) => d === 1).length
        c.finished = startedJobs(reply[1])
        c.dry = c.finished.length === 0
      }),
  )
  side.secs += (performance.now() - t0) / 1000
}

/** Each FCALL's Redis µs since the last SLOWLOG RESET (the threshold is 0: every command is logged), by function. */
async function callTimes(redis: Redis): Promise<Map<string, number[]>> {
  const log = (await redis.call('SLOWLOG', 'GET', SLOWLOG_LEN)) as Array<[number, number, number, string[]]>
  const out = new Map<string, number[]>()
  for (const [, , us, args] of log) {
    if (String(args[0]).toUpperCase() !== 'FCALL') continue
    const fn = String(args[1])
    out.set(fn, [...(out.get(fn) ?? []), us])
  }
  return out
}

/**
 * One run: JOBS plain jobs in each side's queue, then both drained in alternating rounds (one
 * call per consumer, a few ms), so load from elsewhere on the shared machine falls on both
 * sides alike. Per side: jobs/s over its own rounds, Redis µs per FCALL (mean and median call).
 */
async function fetchRun(
  redis: Redis,
  fns: Record<'A' | 'B', Side['fns']>,
  first: 'A' | 'B',
): Promise<Record<'A' | 'B', SideResult>> {
  await redis.flushall()
  const sides = {} as Record<'A' | 'B', Side>
  for (const tag of ['A', 'B'] as const) {
    const base = `ab:{f${tag}}`
    for (let from = 0; from < JOBS; from += 500) {
      const n = Math.min(500, JOBS - from)
      const args: Array<string | number> = [...common(), n]
      pushPlainJobs(args, from, from + n)
      await redis.call('FCALL', fns[tag].enqueue, 1, base, ...args)
    }
    const consumers = Array.from({ length: IN_FLIGHT }, (_, k) => ({
      name: `w${k}`,
      finished: [],
      dry: false,
    }))
    sides[tag] = {
      fns: fns[tag],
      completionArgs: completionArgs(tag === 'A' ? BASE : undefined),
      base,
      consumers,
      secs: 0,
      completed: 0,
    }
  }
  await redis.call('SLOWLOG', 'RESET')
  const order = first === 'A' ? (['A', 'B'] as const) : (['B', 'A'] as const)
  while (order.some((t) => sides[t].consumers.some((c) => !c.dry)))
    for (const t of order) await round(redis, sides[t])
  const times = await callTimes(redis)
  const out = {} as Record<'A' | 'B', SideResult>
  for (const t of order) {
    const s = sides[t]
    const us = times.get(s.fns.fetch) ?? []
    if (s.completed !== JOBS) throw new Error(`fetch ${t}: ${s.completed} of ${JOBS} jobs completed`)
    out[t] = { rate: JOBS / s.secs, mean: us.reduce((a, b) => a + b, 0) / us.length, mid: median(us) }
  }
  return out
}

async function plainFetchAB(port: number): Promise<void> {
  const redis = new Redis({ port })
  try {
    await redis.config('SET', 'slowlog-log-slower-than', '0', 'slowlog-max-len', String(SLOWLOG_LEN))
    const a = baseLibrary(BASE, ['enqueue', 'fetch'])
    const b = new FunctionLibrary()
    await redis.call('FUNCTION', 'LOAD', 'REPLACE', a.source)
    await redis.call('FUNCTION', 'LOAD', 'REPLACE', b.source)
    const fns = {
      A: { enqueue: `${a.name}_enqueue`, fetch: `${a.name}_fetch` },
      B: { enqueue: `${b.name}_enqueue`, fetch: `${b.name}_fetch` },
    }
    const keys = ['rate', 'mean', 'mid'] as const
    const res = { A: { rate: [], mean: [], mid: [] }, B: { rate: [], mean: [], mid: [] } } as Record<
      'A' | 'B',
      Record<(typeof keys)[number], number[]>
    >
    // Each run's own B / A: its two sides ran side by side, so these pair out the machine's load.
    const paired = { rate: [], mean: [], mid: [] } as Record<(typeof keys)[number], number[]>
    for (let r = 0; r < AB_RUNS; r++) {
      const x = await fetchRun(redis, fns, abOrder(r)[0])
      for (const k of keys) {
        res.A[k].push(x.A[k])
        res.B[k].push(x.B[k])
        paired[k].push(x.B[k] / x.A[k])
      }
    }
    console.log(
      `plain fetch A/B: A = ${BASE}${arg('--base') ? '' : ' (before flow control)'}, B = this tree; queues without limits; ` +
        `${JOBS} jobs per run and side, ${PER_CALL} per call, ${IN_FLIGHT} consumers; ${AB_RUNS} runs, each draining A and B ` +
        'in alternating rounds of one call per consumer; Redis µs per FCALL from SLOWLOG (every call logged)',
    )
    for (const side of ['A', 'B'] as const)
      console.log(
        `  ${side}    ${fmt(res[side].rate)} jobs/s   µs/call mean ${fmt(res[side].mean, 1)}, median call ${fmt(res[side].mid, 1)}`,
      )
    console.log(
      `  B/A  jobs/s ${fmt(paired.rate, 3)}   µs/call mean ${fmt(paired.mean, 3)}, median call ${fmt(paired.mid, 3)}` +
        "   (each run's own ratio)",
    )
  } finally {
    // Back to Redis's default: logging every command would slow the Workers' part.
    await redis.config('SET', 'slowlog-log-slower-than', '10000')
    redis.disconnect()
  }
}

// ---- part 2: throughput with limits against plain, through Workers ------------------------------

interface Shape {
  name: string
  limits?: LimitsSpec
  /** Jobs spread over KEYS partition keys. */
  keyed?: boolean
}

const SHAPES: Shape[] = [
  { name: 'plain (no limits)' },
  { name: `key_concurrency 1, ${KEYS} keys`, limits: { key_concurrency: 1 }, keyed: true },
  { name: 'concurrency 50 (queue cap)', limits: { concurrency: 50 } },
  {
    name: 'type rate 1M/s (never blocks)',
    limits: { types: { noop: { rate: { limit: 1_000_000, window_ms: 1000 } } } },
  },
]

/** Jobs/s draining WORKER_JOBS jobs enqueued beforehand, and how often jobs were parked. */
/** Redis's µs in all commands since the last CONFIG RESETSTAT (INFO commandstats). */
async function redisUsec(redis: Pick<Redis, 'info'>): Promise<number> {
  let us = 0
  for (const m of (await redis.info('commandstats')).matchAll(/,usec=(\d+),/g)) us += Number(m[1])
  return us
}

async function workerRun(
  cfg: Config,
  shape: Shape,
  i: number,
): Promise<{ rate: number; parked: number; usPerJob: number }> {
  const c = { ...cfg, keyPrefix: `bl${i}` }
  const q = await Queue.connect(c)
  await q.redis.flushall()
  if (shape.limits) await q.setLimits('default', shape.limits)
  for (let k = 0; k < WORKER_JOBS; k += 500)
    await q.addBulk(
      Array.from({ length: Math.min(500, WORKER_JOBS - k) }, (_, j) => ({
        task_type: 'noop',
        payload: { k: k + j },
        ...(shape.keyed ? { partition_key: `k${(k + j) % KEYS}` } : {}),
      })),
    )
  const stats = q.store.keys.stats('default')
  const w = new Worker(c, { builtins: false, janitorEveryMs: 3_600_000 })
  w.handle('noop', () => null)
  await q.redis.config('RESETSTAT')
  const t0 = performance.now()
  await w.start()
  for (;;) {
    if (Number(await q.redis.hget(stats, 'completed')) >= WORKER_JOBS) break
    await new Promise((r) => setTimeout(r, 5))
  }
  const rate = WORKER_JOBS / ((performance.now() - t0) / 1000)
  const parked = (await q.redis.hmget(stats, 'fc_held', 'fc_deferred')).reduce(
    (a, v) => a + Number(v ?? 0),
    0,
  )
  const usPerJob = (await redisUsec(q.redis)) / WORKER_JOBS
  await w.close()
  await q.close()
  return { rate, parked, usPerJob }
}

async function limitsVsPlain(cfg: Config): Promise<void> {
  const rates = SHAPES.map(() => [] as number[])
  const toPlain = SHAPES.map(() => [] as number[])
  const parked = SHAPES.map(() => [] as number[])
  const usPerJob = SHAPES.map(() => [] as number[])
  let i = 0
  for (let r = 0; r < WORKER_RUNS; r++) {
    // Each round in a rotated order: no shape always runs first or after the same one.
    const round: number[] = []
    for (let s = 0; s < SHAPES.length; s++) {
      const k = (s + r) % SHAPES.length
      const x = await workerRun(cfg, SHAPES[k]!, i++)
      round[k] = x.rate
      rates[k]!.push(x.rate)
      parked[k]!.push(x.parked / WORKER_JOBS)
      usPerJob[k]!.push(x.usPerJob)
    }
    // The round's own ratios: its shapes ran back to back, under much the same load.
    for (let k = 0; k < SHAPES.length; k++) toPlain[k]!.push(round[k]! / round[0]!)
  }
  console.log(
    `limits vs plain: one Worker (concurrency 100, no-op handler) draining ${WORKER_JOBS} jobs enqueued beforehand; ` +
      `${WORKER_RUNS} rounds of every shape, interleaved; / plain is each round's own ratio; Redis µs per job: all ` +
      'commands (INFO commandstats); parked: times a job was held or deferred',
  )
  SHAPES.forEach((shape, k) => {
    console.log(
      `  ${shape.name.padEnd(30)} ${fmt(rates[k]!).padEnd(22)} jobs/s   / plain ${fmt(toPlain[k]!, 2).padEnd(17)}` +
        `   Redis ${fmt(usPerJob[k]!, 1).padEnd(19)} µs/job   parked ${median(parked[k]!).toFixed(2)}/job`,
    )
  })
}

const { port, cfg, stop } = await privateRedis('bl')
const only = arg('--only')
try {
  if (only !== 'workers') await plainFetchAB(port)
  if (only !== 'fetch') await limitsVsPlain(cfg)
} finally {
  stop()
}
