/**
 * What the created-time index costs (ADR 0035): bulk enqueue with the queue's index off and on,
 * in interleaved runs (off on on off ...) against one private redis-server with this tree's
 * library. Prints Redis µs per job (INFO commandstats of FCALL, 100 jobs a call), and the memory
 * the index holds per job: MEMORY USAGE of the index's zset over its members, and the growth of
 * used_memory per job on against off.
 *
 *   node scripts/bench/created-index.ts [--smoke]
 */
import { Redis } from 'ioredis'
import { FunctionLibrary } from '../../app/src/redis/scripts.ts'
import { abOrder, fcallUs, fmt, median, pushPlainJobs, SMOKE } from './function-ab.ts'
import { privateRedis } from './private-redis.ts'

const RUNS = SMOKE ? 2 : 6
const JOBS = SMOKE ? 5000 : 50_000
const PER_CALL = 100

interface Run {
  us: number
  memory: number
  zset: number
}

/** One run: JOBS plain jobs into a fresh queue, the index switched on first when `on`. */
async function run(redis: Redis, fn: string, on: boolean): Promise<Run> {
  await redis.flushall()
  const base = 'ci:{q}'
  if (on) await redis.hset(`${base}:meta`, 'registered', '1', 'created_index', 'on')
  await redis.config('RESETSTAT')
  const before = Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1])
  for (let from = 0; from < JOBS; from += PER_CALL) {
    const args: Array<string | number> = [Date.now(), 10000, 3600, 86400, PER_CALL]
    pushPlainJobs(args, from, from + PER_CALL)
    await redis.call('FCALL', fn, 1, base, ...args)
  }
  const us = (await fcallUs(redis)) / PER_CALL
  const after = Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1])
  const zset = on ? Number(await redis.call('MEMORY', 'USAGE', `${base}:created`, 'SAMPLES', '0')) : 0
  return { us, memory: (after - before) / JOBS, zset: zset / JOBS }
}

async function main(): Promise<void> {
  const { port, stop } = await privateRedis('created')
  const redis = new Redis({ port })
  try {
    const lib = new FunctionLibrary()
    await redis.call('FUNCTION', 'LOAD', 'REPLACE', lib.source)
    const fn = `${lib.name}_enqueue`
    const res = { off: [] as Run[], on: [] as Run[] }
    for (let r = 0; r < RUNS; r++) {
      for (const side of abOrder(r)) {
        const on = side === 'B'
        res[on ? 'on' : 'off'].push(await run(redis, fn, on))
      }
    }
    const us = (k: 'off' | 'on') => res[k].map((x) => x.us)
    const mem = (k: 'off' | 'on') => res[k].map((x) => x.memory)
    console.log(
      `created-time index: ${JOBS} plain jobs per run, ${PER_CALL} per call, ${RUNS} runs each, interleaved`,
    )
    console.log(`  Redis µs per job   off ${fmt(us('off'), 2)}  |  on ${fmt(us('on'), 2)}`)
    console.log(
      `  extra µs per job   ${(median(us('on')) - median(us('off'))).toFixed(2)} (${((median(us('on')) / median(us('off')) - 1) * 100).toFixed(1)} %)`,
    )
    console.log(`  used_memory / job  off ${fmt(mem('off'))} B  |  on ${fmt(mem('on'))} B`)
    console.log(
      `  index per job      MEMORY USAGE ${fmt(res.on.map((x) => x.zset))} B; used_memory on - off ${(median(mem('on')) - median(mem('off'))).toFixed(0)} B`,
    )
  } finally {
    redis.disconnect()
    stop()
  }
}

await main()
