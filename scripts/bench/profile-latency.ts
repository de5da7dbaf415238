// Profiling aid: enqueue→start latency of DTQ alone at a paced rate (as bench.ts (c) paces it:
// rate/100 adds every 10 ms), in µs, with the distribution's tail and when the slowest jobs'
// adds resolved (producer and worker share one event loop, as in the bench), against a private
// redis-server. Usage: node scripts/bench/profile-latency.ts [rate] [seconds]
import { Queue, Worker } from '@dtq/app'
import { privateRedis } from './private-redis.ts'

const RATE = Number(process.argv[2] ?? 5000)
const SECONDS = Number(process.argv[3] ?? 5)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const { cfg, stop } = await privateRedis('l')
const now = () => performance.timeOrigin + performance.now()
const q = await Queue.connect(cfg)
const lat: number[] = []
const added = new Map<number, number>()
const split: Array<[number, number]> = []
const w = new Worker(cfg, { builtins: false, janitorEveryMs: 3_600_000 })
w.handle('noop', (job) => {
  const t = (job.payload as { t: number }).t
  lat.push(now() - t)
  split.push([t, now()])
})
await w.start()
const total = RATE * SECONDS
const perTick = Math.max(1, Math.round(RATE / 100))
const t0 = performance.now()
let sent = 0
while (sent < total) {
  for (let k = 0; k < perTick && sent < total; k++, sent++) {
    const t = now()
    void q.add('noop', { t }).then(() => added.set(t, now()))
  }
  const wait = t0 + (sent / RATE) * 1000 - performance.now()
  if (wait > 0) await sleep(wait)
}
while (lat.length < total) await sleep(10)
lat.sort((a, b) => a - b)
{
  const rows = split.map(([t, s]) => [s - t, (added.get(t) ?? s) - t, s - (added.get(t) ?? s)] as const)
  rows.sort((a, b) => a[0] - b[0])
  const tail = rows.slice(Math.floor(rows.length * 0.99))
  // When the slowest 1 % were sent (bursts 20 ms apart): the start-up and each major GC show
  // here (run with --trace-gc to match them; docs/performance.md).
  const base = split.reduce((m, [t]) => Math.min(m, t), Infinity)
  const slow = split
    .filter(([t, s]) => s - t >= tail[0]![0])
    .map(([t]) => Math.round(t - base))
    .sort((a, b) => a - b)
  const bursts: number[] = []
  for (const x of slow) if (!bursts.length || x - bursts[bursts.length - 1]! > 20) bursts.push(x)
  console.log(`slowest 1 % sent at (ms after the first add, bursts): ${bursts.join(' ')}`)
  const avg = (i: number) => (tail.reduce((a, r) => a + r[i]!, 0) / tail.length).toFixed(2)
  console.log(
    `slowest 1 %: ${avg(0)} ms on average; the producer's add had resolved after ${avg(1)} ms of it`,
  )
}
const p = (x: number) => lat[Math.min(lat.length - 1, Math.floor((x / 100) * lat.length))]!.toFixed(2)
console.log(`${RATE}/s: p50 ${p(50)} p90 ${p(90)} p99 ${p(99)} p99.9 ${p(99.9)} max ${p(100)} ms`)
await w.close(1000)
await q.close()
stop()
