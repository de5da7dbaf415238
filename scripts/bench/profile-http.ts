// Profiling aid: serves POST /jobs (auth + validation, as in production) against a private
// redis-server for `seconds`, so the process can be profiled (node --cpu-prof) while a load
// generator runs elsewhere. Prints the port. Usage: node profile-http.ts [seconds]
import { Queue } from '@dtq/app'
import { buildApp } from '../../app/src/http/app.ts'
import { connectRedis, createRedis, redisTarget } from '../../app/src/redis/connection.ts'
import { privateRedis } from './private-redis.ts'

const seconds = Number(process.argv[2] ?? 12)
const {
  port,
  cfg: config,
  stop,
} = await privateRedis('h', { API_TOKENS: 'bench-token-0123456789abcdef:write', RATE_LIMIT_PER_MIN: '0' })
const redis = createRedis({ target: redisTarget(config), commandTimeoutMs: 2000 })
await connectRedis(redis)
const blocking = createRedis({ target: redisTarget(config), commandTimeoutMs: 4000, blocking: true })
const app = await buildApp({ config, queue: new Queue(redis, config), blocking })
await app.listen({ port: port + 1, host: '127.0.0.1' })
console.log(`listening ${port + 1}`)
await new Promise((r) => setTimeout(r, seconds * 1000))
await app.close()
redis.disconnect()
blocking.disconnect()
stop()
