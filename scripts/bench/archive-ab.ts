/**
 * The archive watermark's cost on Redis (ADR 0031), script by script, robust to a loaded machine:
 * one private redis-server, three queues drained side by side in alternating rounds (as
 * limits.ts does), Redis µs per FCALL from SLOWLOG (threshold 0: every call; the median call is
 * not moved by a call the machine's load stalled):
 *
 *   off    this tree's `fetch` (complete 100 + deliver 100 per call), archiving off;
 *   on     the same, archiving on (the watermark: an XADD + a ZADD per call, nothing per job);
 *   base   a base commit's (default 08106db: the per-job mark) `fetch`, archiving on.
 *
 * Then, for `on` and `base`, what the archiver makes Redis do per job (each command's median
 * call times its number of calls): its XREADGROUP of the
 * entries, an HGETALL per job (the same on both), and `archive_ack` per read of 10 entries, as
 * the archiver sends it (base: a triple per job; this tree: the completed ones only counted).
 *
 *   node scripts/bench/archive-ab.ts [--base <git ref>] [--runs N] [--smoke]
 */
import { Redis } from 'ioredis'
import { F, luaFieldConstants } from '../../app/src/queue/job.ts'
import { HISTORY_KEPT } from '../../app/src/queue/schedule.ts'
import { MAX_DELAY_MS } from '../../app/src/queue/validate.ts'
import { luaKeyConstants } from '../../app/src/redis/keys.ts'
import { FunctionLibrary } from '../../app/src/redis/scripts.ts'
import {
  arg,
  completionArgs,
  fmt,
  git,
  median,
  pushCompletion,
  pushPlainJobs,
  SMOKE,
  type Started,
  startedJobs,
} from './function-ab.ts'
import { privateRedis } from './private-redis.ts'

const BASE = arg('--base') ?? '08106db'
const RUNS = Number(arg('--runs') ?? (SMOKE ? 1 : 6))
const JOBS = SMOKE ? 1000 : 20_000
const PER_CALL = 100
const IN_FLIGHT = 4
const SLOWLOG_LEN = 200_000

type Tag = 'off' | 'on' | 'base'
const TAGS: Tag[] = ['off', 'on', 'base']

/** The base commit's functions `scripts`, with the archive hold on (as `dtq` builds it). */
function baseLibrary(ref: string, scripts: readonly string[]): { name: string; source: string } {
  const dir = 'app/src/redis/scripts'
  const parts = git('ls-tree', '--name-only', ref, `${dir}/lib/`)
    .split('\n')
    .filter((f) => f.endsWith('.lua'))
    .sort()
    .map((f) => git('show', `${ref}:${f}`))
  const name = 'dtq_ab_base'
  const source = [
    `#!lua name=${name}`,
    luaFieldConstants(),
    luaKeyConstants(),
    `local MAX_DELAY_MS = ${MAX_DELAY_MS}`,
    `local SCHEDULE_HISTORY = ${HISTORY_KEPT}`,
    'local ARCHIVE_HOLD = true',
    ...parts,
  ]
  for (const n of scripts) {
    source.push(`local function run_${n}()\n${git('show', `${ref}:${dir}/${n}.lua`)}\nend`)
    source.push(
      `redis.register_function{ function_name = '${name}_${n}', flags = {},\n` +
        `  callback = function(keys, args) setup(keys, args) local r = run_${n}() flush() return r end }`,
    )
  }
  return { name, source: source.join('\n') }
}

const common = () => [Date.now(), 10000, 3600, 86400]

interface Side {
  lib: string
  /** Arguments per completion in this side's fetch (completionArgs). */
  completionArgs: 5 | 10
  base: string
  consumers: Array<{ name: string; finished: Started[]; dry: boolean }>
  completed: number
}

async function round(redis: Redis, s: Side): Promise<void> {
  await Promise.all(
    s.consumers
      .filter((c) => !c.dry)
      .map(async (c) => {
        const args: Array<string | number> = [...common(), c.name, PER_CALL, c.finished.length]
        for (const j of c.finished) pushCompletion(args, j, s.completionArgs)
        const reply = (await redis.call('FCALL', `${s.lib}_fetch`, 1, s.base, ...args)) as [
          number[],
          string[] | string,
        ]
        s.completed += reply[0].filter((d) => d === 1).length
        c.finished = startedJobs(reply[1])
        c.dry = c.finished.length === 0
      }),
  )
}

/** SLOWLOG's entries since the last reset: [command args, µs]. */
async function slowlog(redis: Redis): Promise<Array<[string[], number]>> {
  const log = (await redis.call('SLOWLOG', 'GET', SLOWLOG_LEN)) as Array<[number, number, number, string[]]>
  return log.map(([, , us, args]) => [args.map(String), us])
}

interface RunResult {
  fetchMid: Record<Tag, number>
  fetchMean: Record<Tag, number>
  /** µs per job: archive_ack (on, base), HGETALL, XREADGROUP. */
  ack: Record<'on' | 'base', number>
  hgetall: number
  xread: number
}

async function run(redis: Redis, libs: Record<Tag, string>, r: number): Promise<RunResult> {
  await redis.flushall()
  const sides = {} as Record<Tag, Side>
  for (const t of TAGS) {
    const base = `ab:{${t}}`
    if (t !== 'off') await redis.call('FCALL', `${libs[t]}_archive_on`, 1, base, ...common(), 0)
    for (let from = 0; from < JOBS; from += 500) {
      const n = Math.min(500, JOBS - from)
      const args: Array<string | number> = [...common(), n]
      pushPlainJobs(args, from, from + n)
      await redis.call('FCALL', `${libs[t]}_enqueue`, 1, base, ...args)
    }
    sides[t] = {
      lib: libs[t],
      completionArgs: completionArgs(t === 'base' ? BASE : undefined),
      base,
      completed: 0,
      consumers: Array.from({ length: IN_FLIGHT }, (_, k) => ({ name: `w${k}`, finished: [], dry: false })),
    }
  }
  await redis.call('SLOWLOG', 'RESET')
  // Rotate the order each run: no side always goes first.
  const order = TAGS.map((_, i) => TAGS[(i + r) % TAGS.length]!)
  while (order.some((t) => sides[t].consumers.some((c) => !c.dry)))
    for (const t of order) await round(redis, sides[t])
  const log = await slowlog(redis)
  const out = { fetchMid: {}, fetchMean: {}, ack: {} } as RunResult
  for (const t of TAGS) {
    if (sides[t].completed !== JOBS) throw new Error(`${t}: ${sides[t].completed} of ${JOBS} completed`)
    const us = log
      .filter(
        ([a]) => a[0]!.toUpperCase() === 'FCALL' && a[1] === `${libs[t]}_fetch` && a[3] === sides[t].base,
      )
      .map(([, u]) => u)
    out.fetchMid[t] = median(us)
    out.fetchMean[t] = us.reduce((a, b) => a + b, 0) / us.length
  }
  // The archiver's part, side by side: read, hashes, acknowledgement.
  let hgetall = 0
  let xread = 0
  for (const t of ['on', 'base'] as const) {
    const s = sides[t]
    const stream = `${s.base}:archive`
    await redis.call('SLOWLOG', 'RESET')
    let jobs = 0
    for (;;) {
      const reply = (await redis.xreadgroup(
        'GROUP',
        'archiver',
        'a1',
        'COUNT',
        10,
        'STREAMS',
        stream,
        '>',
      )) as Array<[string, Array<[string, string[]]>]> | null
      const entries = reply?.[0]?.[1] ?? []
      if (entries.length === 0) break
      const ids = entries.flatMap(([, f]) => f[1]!.split(' '))
      const p = redis.pipeline()
      for (const id of ids) p.hgetall(`${s.base}:job:${id}`)
      const hashes = ((await p.exec()) ?? []).map(([, h]) => h as Record<string, string>)
      const args: Array<string | number> = [...common(), entries.length, ...entries.map(([e]) => e)]
      if (t === 'base') {
        args.push(ids.length)
        for (const [i, id] of ids.entries()) args.push(id, hashes[i]![F.finished_at] ?? '', 'completed')
      } else args.push(0, ids.length)
      await redis.call('FCALL', `${libs[t]}_archive_ack`, 1, s.base, ...args)
      jobs += ids.length
    }
    if (jobs !== JOBS) throw new Error(`${t}: acknowledged ${jobs} of ${JOBS}`)
    const l = await slowlog(redis)
    // The median call times the number of calls (a call the machine's load stalled moves nothing).
    const typical = (cmd: string) => {
      const us = l.filter(([a]) => a[0]!.toUpperCase() === cmd).map(([, u]) => u)
      return (median(us) * us.length) / JOBS
    }
    out.ack[t] = typical('FCALL')
    hgetall += typical('HGETALL') / 2
    xread += typical('XREADGROUP') / 2
  }
  out.hgetall = hgetall
  out.xread = xread
  return out
}

const { port, stop } = await privateRedis('aab')
const redis = new Redis({ port })
try {
  await redis.config('SET', 'slowlog-log-slower-than', '0', 'slowlog-max-len', String(SLOWLOG_LEN))
  const a = baseLibrary(BASE, ['enqueue', 'fetch', 'archive_on', 'archive_ack'])
  const b = new FunctionLibrary()
  await redis.call('FUNCTION', 'LOAD', 'REPLACE', a.source)
  await redis.call('FUNCTION', 'LOAD', 'REPLACE', b.source)
  const libs: Record<Tag, string> = { off: b.name, on: b.name, base: a.name }
  const res: RunResult[] = []
  for (let r = 0; r < RUNS; r++) res.push(await run(redis, libs, r))
  const per = (f: (x: RunResult) => number, d = 1) => fmt(res.map(f), d)
  console.log(
    `archive-ab: ${JOBS} jobs per side and run, fetch of ${PER_CALL} (complete + deliver), ${IN_FLIGHT} consumers, sides drained in alternating rounds; ${RUNS} runs; Redis µs from SLOWLOG (every call), medians (min-max); base = ${BASE}`,
  )
  console.log(
    `  fetch, median call µs      off ${per((x) => x.fetchMid.off)}, on ${per((x) => x.fetchMid.on)}, base on ${per((x) => x.fetchMid.base)}`,
  )
  console.log(
    `  fetch, mean call µs        off ${per((x) => x.fetchMean.off)}, on ${per((x) => x.fetchMean.on)}, base on ${per((x) => x.fetchMean.base)}`,
  )
  console.log(
    `  fetch on / off (median call, each run)   this tree ${per((x) => x.fetchMid.on / x.fetchMid.off, 3)}, base ${per((x) => x.fetchMid.base / x.fetchMid.off, 3)}`,
  )
  console.log(
    `  archive_ack µs per job     this tree ${per((x) => x.ack.on, 2)}, base ${per((x) => x.ack.base, 2)}`,
  )
  console.log(
    `  the archiver's reads, µs per job: HGETALL ${per((x) => x.hgetall, 2)}, XREADGROUP ${per((x) => x.xread, 2)}`,
  )
  const total = (x: RunResult, t: 'on' | 'base') =>
    (x.fetchMean[t] - x.fetchMean.off) / PER_CALL + x.ack[t] + x.hgetall + x.xread
  console.log(
    `  archiving's Redis µs per job (fetch's extra + read + ack), vs off's fetch ${per((x) => x.fetchMean.off / PER_CALL, 2)} µs per job: this tree ${per((x) => total(x, 'on'), 2)} (${per((x) => (100 * total(x, 'on') * PER_CALL) / x.fetchMean.off, 1)} %), base ${per((x) => total(x, 'base'), 2)} (${per((x) => (100 * total(x, 'base') * PER_CALL) / x.fetchMean.off, 1)} %)`,
  )
} finally {
  redis.disconnect()
  stop()
}
