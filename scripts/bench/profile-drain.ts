// Profiling aid: drains N queued no-op jobs with one in-process worker against a private
// redis-server and prints Redis CPU, Node CPU and the top commands (INFO commandstats).
// Usage: node scripts/bench/profile-drain.ts [N] [redis-port]
// PROFILE=<file.cpuprofile>: a CPU profile of the main thread during the drain only.
import { readFileSync, writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { Queue, Worker } from '@dtq/app'
import { Redis } from 'ioredis'
import { privateRedis } from './private-redis.ts'

const N = Number(process.argv[2] ?? 50000)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const { port, cfg, stop } = await privateRedis('p', {}, Number(process.argv[3]) || undefined)
const admin = new Redis({ port })
const q = await Queue.connect(cfg)
for (let i = 0; i < N; i += 1000)
  await q.addBulk(Array.from({ length: Math.min(1000, N - i) }, () => ({ task_type: 'noop', payload: {} })))
const cpu = async () => {
  const s = await admin.info('cpu')
  return Number(/used_cpu_user:([\d.]+)/.exec(s)![1]) + Number(/used_cpu_sys:([\d.]+)/.exec(s)![1])
}
await admin.config('RESETSTAT')
const w = new Worker(cfg, { builtins: false, janitorEveryMs: 3_600_000 })
w.handle('noop', () => null)
const session = process.env.PROFILE ? new Session() : null
if (session) {
  session.connect()
  await session.post('Profiler.enable')
  await session.post('Profiler.start')
}
// Whole machine: jiffies idle and total from /proc/stat (Linux), to tell CPU-bound from waiting.
const machine = () => {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number)
  return { idle: f[3]! + f[4]!, total: f.reduce((a, b) => a + b, 0) }
}
const m0 = machine()
const r0 = await cpu()
const c0 = process.cpuUsage()
const t0 = performance.now()
await w.start()
while (Number(await q.redis.hget(q.store.keys.stats('default'), 'completed')) < N) await sleep(10)
const s = (performance.now() - t0) / 1000
const r1 = await cpu()
const c = process.cpuUsage(c0)
const m1 = machine()
if (session) {
  const { profile } = await session.post('Profiler.stop')
  writeFileSync(process.env.PROFILE!, JSON.stringify(profile))
  session.disconnect()
}
console.log(
  `drain ${N}: ${(N / s).toFixed(0)} jobs/s; redis cpu ${(((r1 - r0) / s) * 100).toFixed(0)}% (${(((r1 - r0) / N) * 1e6).toFixed(1)} µs/job); node cpu ${(((c.user + c.system) / 1e6 / s) * 100).toFixed(0)}%; machine idle ${((100 * (m1.idle - m0.idle)) / (m1.total - m0.total)).toFixed(0)}% of ${navigator.hardwareConcurrency} cores`,
)
const stats = await admin.info('commandstats')
const rows = stats
  .split('\n')
  .filter((l) => l.startsWith('cmdstat_'))
  .map((l) => {
    const m = /cmdstat_([^:]+):calls=(\d+),usec=(\d+)/.exec(l)!
    return { cmd: m[1] ?? '', calls: Number(m[2]), usec: Number(m[3]) }
  })
  .sort((a, b) => b.usec - a.usec)
for (const r of rows.slice(0, 14))
  console.log(
    `${r.cmd.padEnd(14)} calls/job ${(r.calls / N).toFixed(2).padStart(6)}  µs/job ${(r.usec / N).toFixed(2).padStart(6)}  µs/call ${(r.usec / r.calls).toFixed(2)}`,
  )
await w.close(1000)
await q.close()
stop()
admin.disconnect()
