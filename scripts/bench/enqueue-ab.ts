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
import { Redis } from 'ioredis'
import { FunctionLibrary } from '../../app/src/redis/scripts.ts'
import { abOrder, arg, baseLibrary, fcallUs, fmt, git, median, pushPlainJobs, SMOKE } from './function-ab.ts'
import { privateRedis } from './private-redis.ts'

const BASE = arg('--base') ?? git('merge-base', 'HEAD', 'main').trim()
const RUNS = SMOKE ? 2 : Number(arg('--runs') ?? 8)
const JOBS = SMOKE ? 2000 : 40_000
const IN_FLIGHT = 8

/** One run: JOBS plain jobs, `perCall` per call, IN_FLIGHT calls at a time. Jobs/s and µs per FCALL. */
async function run(
  redis: Redis,
  fn: string,
  tag: string,
  perCall: number,
  generated: boolean,
  short: boolean,
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
      pushPlainJobs(args, from, from + perCall, generated, short)
      await redis.call('FCALL', fn, 1, base, ...args)
    }
  }
  const t0 = performance.now()
  await Promise.all(Array.from({ length: IN_FLIGHT }, call))
  const secs = (performance.now() - t0) / 1000
  return { rate: JOBS / secs, us: await fcallUs(redis) }
}

async function main(): Promise<void> {
  const { port, stop } = await privateRedis('ab')
  const redis = new Redis({ port })
  try {
    const a = baseLibrary(BASE, ['enqueue'])
    const b = new FunctionLibrary()
    await redis.call('FUNCTION', 'LOAD', 'REPLACE', a.source)
    await redis.call('FUNCTION', 'LOAD', 'REPLACE', b.source)
    const fns = { A: `${a.name}_enqueue`, B: `${b.name}_enqueue` }
    console.log(
      `enqueue A/B: A = ${BASE.slice(0, 10)} (base), B = this tree; ${JOBS} plain jobs per run, ${RUNS} runs each, interleaved`,
    )
    // Jobs named by their caller (ids like j17), and jobs numbered by DTQ (all digits: what an
    // add without an id sends, checked against live jobs in one EXISTS per call).
    // The last shape: B sends the 5-value form of plain jobs (what the library sends for them
    // since this form exists), A the 12-value one (a base without it takes nothing else).
    for (const [perCall, generated, shortB] of [
      [1, false, false],
      [100, false, false],
      [1, true, false],
      [100, true, false],
      [100, true, true],
    ] as const) {
      const res = {
        A: { rate: [] as number[], us: [] as number[] },
        B: { rate: [] as number[], us: [] as number[] },
      }
      for (let r = 0; r < RUNS; r++) {
        for (const side of abOrder(r)) {
          const x = await run(redis, fns[side], side, perCall, generated, shortB && side === 'B')
          res[side].rate.push(x.rate)
          res[side].us.push(x.us)
        }
      }
      const ratio = median(res.B.rate) / median(res.A.rate)
      const usRatio = median(res.B.us) / median(res.A.us)
      console.log(
        `  ${String(perCall).padStart(3)} job(s)/call, ${generated ? 'generated ids' : 'own ids      '}  A ${fmt(res.A.rate)} jobs/s, ${fmt(res.A.us, 1)} µs/call` +
          `  |  B ${fmt(res.B.rate)} jobs/s, ${fmt(res.B.us, 1)} µs/call  |  B/A throughput ${ratio.toFixed(3)}, Redis µs/call ${usRatio.toFixed(3)}`,
      )
    }
  } finally {
    redis.disconnect()
    stop()
  }
}

await main()
