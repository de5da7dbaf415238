// drain-ab.ts's child: drains N queued no-op jobs with one in-process Worker from the DTQ tree
// given (its app/src/index.ts), against the redis-server on the port given, under its own key
// prefix; prints one JSON line: jobs/s, Node CPU µs per job (this process, drain only), Redis
// CPU µs per job. The jobs are queued before the clock starts; start-up is excluded.
// Usage: node drain-child.ts <app/src/index.ts> <port> <prefix> <N>
const [appIndex, portArg, prefix, nArg] = process.argv.slice(2)
const { Queue, Worker, loadConfig } = await import(appIndex!)
const { Redis } = await import('ioredis')
const N = Number(nArg)
const port = Number(portArg)
const cfg = loadConfig({
  REDIS_URL: `redis://127.0.0.1:${port}`,
  KEY_PREFIX: prefix!,
  LOG_LEVEL: 'silent',
  WORKER_CONCURRENCY: '100',
  COMPLETED_RETENTION_S: '3600',
  EVENTS_MAX_LEN: '10000',
})
const admin = new Redis({ port })
const q = await Queue.connect(cfg)
for (let i = 0; i < N; i += 1000)
  await q.addBulk(Array.from({ length: Math.min(1000, N - i) }, () => ({ task_type: 'noop', payload: {} })))
const redisCpu = async () => {
  const s = await admin.info('cpu')
  return Number(/used_cpu_user:([\d.]+)/.exec(s)![1]) + Number(/used_cpu_sys:([\d.]+)/.exec(s)![1])
}
const w = new Worker(cfg, { builtins: false, janitorEveryMs: 3_600_000 })
w.handle('noop', () => null)
const statsKey = q.store.keys.stats('default')
global.gc?.()
const r0 = await redisCpu()
const c0 = process.cpuUsage()
const t0 = performance.now()
await w.start()
while (Number(await q.redis.hget(statsKey, 'completed')) < N) await new Promise((r) => setTimeout(r, 5))
const s = (performance.now() - t0) / 1000
const c = process.cpuUsage(c0)
const r1 = await redisCpu()
console.log(
  JSON.stringify({
    jobsPerS: N / s,
    nodeUsPerJob: (c.user + c.system) / N,
    redisUsPerJob: ((r1 - r0) / N) * 1e6,
  }),
)
await w.close(1000)
await q.close()
admin.disconnect()
process.exit(0)
