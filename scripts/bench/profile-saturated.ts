// Profiling aid: the bench's producer + worker scenario (c) with DTQ's library, against a private
// redis-server, in rounds: jobs/s, and per job the Node process's CPU and Redis's (INFO cpu),
// each also as a share of the round's wall time -- which side bounds it, or neither (coordination).
// Usage: node scripts/bench/profile-saturated.ts [jobs=100000] [rounds=3]
import { redisCpuUs, startServer, stopServer } from './bench-kit.ts'
import { dtqLibrary } from './dtq.ts'

const n = Number(process.argv[2] ?? 100_000)
const rounds = Number(process.argv[3] ?? 3)
await startServer()
const dtq = dtqLibrary()
for (let r = 0; r < rounds; r++) {
  const node0 = process.cpuUsage()
  const redis0 = await redisCpuUs()
  const t0 = performance.now()
  const rate = await dtq.saturated!(n)
  const wallUs = (performance.now() - t0) * 1000
  const node = process.cpuUsage(node0)
  const nodeUs = node.user + node.system
  const redisUs = (await redisCpuUs()) - redis0
  const pct = (us: number) => `${((100 * us) / wallUs).toFixed(0)} % of the round`
  console.log(
    `round ${r + 1}: ${rate.toFixed(0)} jobs/s; Node ${(nodeUs / n).toFixed(1)} µs/job (${pct(nodeUs)}), Redis ${(redisUs / n).toFixed(1)} µs/job (${pct(redisUs)})`,
  )
}
stopServer()
process.exit(0)
