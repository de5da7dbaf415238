// The profiling scripts' shared start: a private redis-server on a random free-ish port (AOF
// and RDB off, like the bench) and a DTQ config pointing at it.
import { spawn } from 'node:child_process'
import { type Config, loadConfig } from '@dtq/app'
import { Redis } from 'ioredis'

export async function privateRedis(
  prefix: string,
  env: Record<string, string> = {},
  port = 40000 + Math.floor(Math.random() * 20000),
): Promise<{ port: number; cfg: Config; stop: () => void }> {
  const srv = spawn('redis-server', ['--port', String(port), '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  })
  // Ready when it answers PING (up to 5 s).
  const probe = new Redis({ port, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 })
  probe.on('error', () => {}) // refused until the server listens: expected, retried below
  for (let i = 0; ; i++) {
    try {
      await probe.connect()
      await probe.ping()
      break
    } catch (err) {
      probe.disconnect()
      if (i >= 100) throw err
      await new Promise((r) => setTimeout(r, 50))
    }
  }
  probe.disconnect()
  const cfg = loadConfig({
    REDIS_URL: `redis://127.0.0.1:${port}`,
    KEY_PREFIX: prefix,
    LOG_LEVEL: 'silent',
    WORKER_CONCURRENCY: '100',
    COMPLETED_RETENTION_S: '3600',
    EVENTS_MAX_LEN: '10000',
    ...env,
  })
  return { port, cfg, stop: () => srv.kill() }
}
