// Measures the fence read of complete as it is (one HMGET of state, epoch, cancel flag per job)
// against the alternative docs/performance.md once named as the next Redis lever: a per-queue
// hash of active jobs (id -> epoch) written by deliver in one HSET per call, read by complete in
// one HMGET per call and cleared by one HDEL. Redis µs per call of B jobs from INFO
// commandstats (EVAL), interleaved rounds, medians; the hash of active jobs holding `others`
// entries of other running jobs (other workers' and this one's other calls').
// Usage: node scripts/bench/fence-model.ts [jobs-per-call=50] [rounds=8]
import { Redis } from 'ioredis'
import { privateRedis } from './private-redis.ts'

const B = Number(process.argv[2] ?? 50)
const ROUNDS = Number(process.argv[3] ?? 8)
const CALLS = 2000
const { port, stop } = await privateRedis('f')
const r = new Redis({ port })

// B running jobs with the fields a running job has (epoch i * 7).
const setup = `
redis.call('FLUSHALL')
for i = 1, ${B} do
  redis.call('HSET', 'j:' .. i, 'ty', 'noop', 'pl', '{"n":12345}', 'ca', '1796151002534', 'st', 'active',
    'en', '1796151002534-' .. i, 'wk', 'w-abcdef-1', 'sa', '1796151002600', 'ep', tostring(i * 7), 'at', '1')
end
for i = 1, tonumber(ARGV[1]) do redis.call('HSET', 'act', tostring(100000 + i), '7') end
return 1`
// The loop both sides run (ids and epochs as strings, compared): what is left is the fence's cost.
const loop = `local n = 0
for i = 1, ${B} do if ids[i] == tostring(i * 7) then n = n + 1 end end`
const variants: Record<string, string> = {
  'per-job HMGET (today)': `
local n = 0
for i = 1, ${B} do
  local h = redis.call('HMGET', 'j:' .. i, 'st', 'ep', 'cr')
  if h[1] == 'active' and h[2] == tostring(i * 7) and not h[3] then n = n + 1 end
end
return n`,
  'active hash: HSET + HMGET + HDEL per call': `
local ids, f = {}, {}
for i = 1, ${B} do
  ids[i] = tostring(i)
  f[2 * i - 1], f[2 * i] = ids[i], tostring(i * 7)
end
redis.call('HSET', 'act', unpack(f))
local h = redis.call('HMGET', 'act', unpack(ids))
local n = 0
for i = 1, ${B} do if h[i] == tostring(i * 7) then n = n + 1 end end
redis.call('HDEL', 'act', unpack(ids))
return n`,
  'the loop alone (baseline)': `
local ids = {}
for i = 1, ${B} do ids[i] = tostring(i) end
${loop}
return n`,
}

const evalUs = async (): Promise<number> =>
  Number(/cmdstat_eval:calls=\d+,usec=(\d+)/.exec(await r.info('commandstats'))?.[1] ?? 0)
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!

console.log(
  `Redis µs per job of the fence, ${B} jobs per call (medians of ${ROUNDS} rounds of ${CALLS} calls)`,
)
for (const others of [0, 100, 1000, 10000]) {
  await r.eval(setup, 0, String(others))
  const runs = new Map<string, number[]>()
  for (let round = 0; round < ROUNDS; round++) {
    const order = Object.entries(variants)
    if (round % 2) order.reverse()
    for (const [name, script] of order) {
      const u0 = await evalUs()
      for (let k = 0; k < CALLS; k++) await r.eval(script, 0)
      runs.set(name, [...(runs.get(name) ?? []), ((await evalUs()) - u0) / CALLS / B])
    }
  }
  const base = median(runs.get('the loop alone (baseline)')!)
  const today = median(runs.get('per-job HMGET (today)')!) - base
  const hash = median(runs.get('active hash: HSET + HMGET + HDEL per call')!) - base
  console.log(
    `  ${String(others).padStart(5)} other active jobs: per-job HMGET ${today.toFixed(2)} µs, active hash ${hash.toFixed(2)} µs (${(hash / today).toFixed(2)}×)`,
  )
}
r.disconnect()
stop()
process.exit(0)
