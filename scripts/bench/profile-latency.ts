// Profiling aid: enqueue→start latency of DTQ alone at a paced rate (as bench.ts (c) paces it:
// rate/100 adds every 10 ms), in µs, with the distribution's tail, against a private
// redis-server. Usage: node scripts/bench/profile-latency.ts [rate] [seconds]
import { spawn } from 'node:child_process'
import { loadConfig, Queue, Worker } from '@dtq/app'

const RATE = Number(process.argv[2] ?? 5000)
const SECONDS = Number(process.argv[3] ?? 5)
const port = 40000 + Math.floor(Math.random() * 20000)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const srv = spawn('redis-server', ['--port', String(port), '--save', '', '--appendonly', 'no'], {
  stdio: 'ignore',
})
await sleep(300)
const cfg = loadConfig({
  REDIS_URL: `redis://127.0.0.1:${port}`,
  KEY_PREFIX: 'l',
  LOG_LEVEL: 'silent',
  WORKER_CONCURRENCY: '100',
  COMPLETED_RETENTION_S: '3600',
  EVENTS_MAX_LEN: '10000',
})
const now = () => performance.timeOrigin + performance.now()
const q = await Queue.connect(cfg)
const lat: number[] = []
const w = new Worker(cfg, { builtins: false, janitorEveryMs: 3_600_000 })
w.handle('noop', (job) => {
  lat.push(now() - (job.payload as { t: number }).t)
})
await w.start()
const total = RATE * SECONDS
const perTick = Math.max(1, Math.round(RATE / 100))
const t0 = performance.now()
let sent = 0
while (sent < total) {
  for (let k = 0; k < perTick && sent < total; k++, sent++) void q.add('noop', { t: now() })
  const wait = t0 + (sent / RATE) * 1000 - performance.now()
  if (wait > 0) await sleep(wait)
}
while (lat.length < total) await sleep(10)
lat.sort((a, b) => a - b)
const p = (x: number) => lat[Math.min(lat.length - 1, Math.floor((x / 100) * lat.length))]!.toFixed(2)
console.log(`${RATE}/s: p50 ${p(50)} p90 ${p(90)} p99 ${p(99)} p99.9 ${p(99.9)} max ${p(100)} ms`)
await w.close(1000)
await q.close()
srv.kill()
