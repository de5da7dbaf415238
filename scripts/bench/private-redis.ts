// The profiling scripts' shared start: a private redis-server on a free port (AOF and RDB off,
// like the bench) and a DTQ config pointing at it. The server answering is checked to be the one
// started here (its process id), so a bench never writes to -- or flushes -- someone else's.
import { spawn } from 'node:child_process'
import { createServer } from 'node:net'
import { type Config, loadConfig } from '@dtq/app'
import { Redis } from 'ioredis'

export async function privateRedis(
  prefix: string,
  env: Record<string, string> = {},
  port?: number,
): Promise<{ port: number; cfg: Config; stop: () => void }> {
  port ??= await freePort()
  const srv = spawn('redis-server', ['--port', String(port), '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  })
  // Ready when it answers PING (up to 5 s).
  const probe = new Redis({ port, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 })
  probe.on('error', () => {}) // refused until the server listens: expected, retried below
  for (let i = 0; ; i++) {
    try {
      await probe.connect()
      const pid = /process_id:(\d+)/.exec(await probe.info('server'))?.[1]
      if (Number(pid) !== srv.pid)
        throw new Error(`port ${port} is served by another redis-server (pid ${pid})`)
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

/** A port free on 127.0.0.1 now (the kernel's pick). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => resolve(port))
    })
  })
}
