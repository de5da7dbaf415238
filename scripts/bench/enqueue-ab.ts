/**
 * The plain enqueue path, A/B: the enqueue function of a base commit (A, default the branch's
 * merge base with main) against this tree's (B), both loaded into one private redis-server,
 * called with the same plain jobs (no dedup, no deadline) in interleaved runs (A B B A ...).
 * Prints per shape -- one job per call, 100 per call -- the jobs/s and Redis's µs per FCALL
 * (INFO commandstats, reset before each run), medians with min-max, and the ratio B / A.
 * Guards that a feature added to the enqueue function (dedup, deadlines: ADR 0021) costs the
 * plain path nothing.
 *
 *   node scripts/bench/enqueue-ab.ts [--base <git ref>] [--smoke]
 */
import { execFileSync } from 'node:child_process'
import { Redis } from 'ioredis'
import { luaFieldConstants } from '../../app/src/queue/job.ts'
import { HISTORY_KEPT } from '../../app/src/queue/schedule.ts'
import { MAX_DELAY_MS } from '../../app/src/queue/validate.ts'
import { luaKeyConstants } from '../../app/src/redis/keys.ts'
import { FunctionLibrary } from '../../app/src/redis/scripts.ts'
import { privateRedis } from './private-redis.ts'

const SMOKE = process.argv.includes('--smoke')
const arg = (name: string) => {
  const i = process.argv.indexOf(name)
  return i > 0 ? process.argv[i + 1] : undefined
}
const ROOT = execFileSync('git', ['rev-parse', '--show-toplevel'], { encoding: 'utf8' }).trim()
const git = (...a: string[]) => execFileSync('git', ['-C', ROOT, ...a], { encoding: 'utf8' })
const BASE = arg('--base') ?? git('merge-base', 'HEAD', 'main').trim()
const RUNS = SMOKE ? 2 : 8
const JOBS = SMOKE ? 2000 : 40_000
const IN_FLIGHT = 8

/** The base commit's enqueue function alone, as a library of its own (its prelude and body). */
function baseLibrary(ref: string): { name: string; source: string } {
  const dir = 'app/src/redis/scripts'
  const parts = git('ls-tree', '--name-only', ref, `${dir}/lib/`)
    .split('\n')
    .filter((f) => f.endsWith('.lua'))
    .sort()
    .map((f) => git('show', `${ref}:${f}`))
  const body = git('show', `${ref}:${dir}/enqueue.lua`)
  const name = 'dtq_ab_base'
  // This tree's constants: a superset of the base's (new fields and keys only add locals).
  const prelude = [
    luaFieldConstants(),
    luaKeyConstants(),
    `local MAX_DELAY_MS = ${MAX_DELAY_MS}`,
    `local SCHEDULE_HISTORY = ${HISTORY_KEPT}`,
    ...parts,
  ].join('\n')
  const source = [
    `#!lua name=${name}`,
    prelude,
    `local function run_enqueue()\n${body}\nend`,
    `redis.register_function{ function_name = '${name}_enqueue', flags = {},\n` +
      '  callback = function(keys, args) setup(keys, args) local r = run_enqueue() flush() return r end }',
  ].join('\n')
  return { name, source }
}

/** One run: JOBS plain jobs, `perCall` per call, IN_FLIGHT calls at a time. Jobs/s and µs per FCALL. */
async function run(
  redis: Redis,
  fn: string,
  tag: string,
  perCall: number,
): Promise<{ rate: number; us: number }> {
  await redis.flushall()
  await redis.config('RESETSTAT')
  const base = `ab:{q${tag}}`
  let next = 0
  const call = async () => {
    while (next < JOBS) {
      const from = next
      next += perCall
      const args: Array<string | number> = [Date.now(), 10000, 3600, 86400, perCall]
      for (let i = from; i < from + perCall; i++)
        args.push(`j${i}`, 'noop', '{"n":1}', 'normal', 3, 0, 0, '', '', 60, '', '')
      await redis.call('FCALL', fn, 1, base, ...args)
    }
  }
  const t0 = performance.now()
  await Promise.all(Array.from({ length: IN_FLIGHT }, call))
  const secs = (performance.now() - t0) / 1000
  const stats = await redis.info('commandstats')
  const us = Number(/cmdstat_fcall:calls=\d+,usec=\d+,usec_per_call=([\d.]+)/.exec(stats)?.[1] ?? Number.NaN)
  return { rate: JOBS / secs, us }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const fmt = (xs: number[], d = 0) =>
  `${median(xs).toFixed(d)} (${Math.min(...xs).toFixed(d)}-${Math.max(...xs).toFixed(d)})`

async function main(): Promise<void> {
  const { port, stop } = await privateRedis('ab')
  const redis = new Redis({ port })
  try {
    const a = baseLibrary(BASE)
    const b = new FunctionLibrary()
    await redis.call('FUNCTION', 'LOAD', 'REPLACE', a.source)
    await redis.call('FUNCTION', 'LOAD', 'REPLACE', b.source)
    const fns = { A: `${a.name}_enqueue`, B: `${b.name}_enqueue` }
    console.log(
      `enqueue A/B: A = ${BASE.slice(0, 10)} (base), B = this tree; ${JOBS} plain jobs per run, ${RUNS} runs each, interleaved`,
    )
    for (const perCall of [1, 100]) {
      const res = {
        A: { rate: [] as number[], us: [] as number[] },
        B: { rate: [] as number[], us: [] as number[] },
      }
      for (let r = 0; r < RUNS; r++) {
        // A B, then B A: neither side always goes first.
        for (const side of r % 2 === 0 ? (['A', 'B'] as const) : (['B', 'A'] as const)) {
          const x = await run(redis, fns[side], side, perCall)
          res[side].rate.push(x.rate)
          res[side].us.push(x.us)
        }
      }
      const ratio = median(res.B.rate) / median(res.A.rate)
      const usRatio = median(res.B.us) / median(res.A.us)
      console.log(
        `  ${String(perCall).padStart(3)} job(s)/call  A ${fmt(res.A.rate)} jobs/s, ${fmt(res.A.us, 1)} µs/call` +
          `  |  B ${fmt(res.B.rate)} jobs/s, ${fmt(res.B.us, 1)} µs/call  |  B/A throughput ${ratio.toFixed(3)}, Redis µs/call ${usRatio.toFixed(3)}`,
      )
    }
  } finally {
    redis.disconnect()
    stop()
  }
}

await main()
