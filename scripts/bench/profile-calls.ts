// Profiling aid: Redis CPU per job of each worker call (deliver, complete, fetch) in isolation,
// from INFO commandstats, against a private redis-server.
// Usage: node scripts/bench/profile-calls.ts [jobs-per-call]
import { Queue } from '@dtq/app'
import { Redis } from 'ioredis'
import { privateRedis } from './private-redis.ts'

const B = Number(process.argv[2] ?? 34)
const ROUNDS = Number(process.env.ROUNDS ?? 60)
const REPEAT = 5
const { port, cfg, stop } = await privateRedis('p')
const admin = new Redis({ port })
const q = await Queue.connect(cfg)
const N = B * ROUNDS * REPEAT * 2 + 1000
for (let i = 0; i < N; i += 1000)
  await q.addBulk(Array.from({ length: Math.min(1000, N - i) }, () => ({ task_type: 'noop', payload: {} })))
async function fcallUsec(): Promise<number> {
  const s = await admin.info('commandstats')
  return Number(/cmdstat_fcall:calls=\d+,usec=(\d+)/.exec(s)?.[1] ?? 0)
}
/** Redis's own CPU time (user + sys of its main thread), µs: unlike commandstats' wall time, it
 * leaves out the time Redis was descheduled on a busy machine. */
async function redisCpuUsec(): Promise<number> {
  const s = await admin.info('cpu')
  const v = (k: string) => Number(new RegExp(`^${k}:([\\d.]+)`, 'm').exec(s)?.[1] ?? 0)
  return (v('used_cpu_user_main_thread') + v('used_cpu_sys_main_thread')) * 1e6
}
async function measure(name: string, fn: () => Promise<unknown>): Promise<void> {
  const xs: number[] = []
  const cs: number[] = []
  for (let k = 0; k < REPEAT; k++) {
    await admin.config('RESETSTAT')
    const c0 = await redisCpuUsec()
    for (let r = 0; r < ROUNDS; r++) await fn()
    cs.push(((await redisCpuUsec()) - c0) / (ROUNDS * B))
    xs.push((await fcallUsec()) / (ROUNDS * B))
  }
  xs.sort((a, b) => a - b)
  cs.sort((a, b) => a - b)
  console.log(
    `${name.padEnd(28)} min ${xs[0]!.toFixed(1)}  median ${xs[2]!.toFixed(1)} µs/job in the function; Redis CPU median ${cs[2]!.toFixed(1)} µs/job`,
  )
}
const held: Array<{ id: string; epoch: number; result: string }> = []
await measure(`deliver ${B}`, async () => {
  const d = await q.store.deliver('default', 'c1', B)
  for (const j of d.jobs) held.push({ id: j.id, epoch: j.epoch, result: 'null' })
})
await measure(`complete ${B}`, async () => {
  await q.store.complete('default', held.splice(0, B))
})
const held2: typeof held = []
{
  const d = await q.store.deliver('default', 'c1', B)
  for (const j of d.jobs) held2.push({ id: j.id, epoch: j.epoch, result: 'null' })
}
await measure(`fetch ${B}+${B}`, async () => {
  const d = await q.store.fetch('default', 'c1', B, held2.splice(0, B))
  for (const j of d.jobs) held2.push({ id: j.id, epoch: j.epoch, result: 'null' })
})
await admin.config('RESETSTAT')
await q.addBulk(Array.from({ length: 1000 }, () => ({ task_type: 'noop', payload: {} })))
console.log(`enqueue (bulk of 1000)       ${((await fcallUsec()) / 1000).toFixed(1)} µs/job`)
await q.close()
stop()
admin.disconnect()
