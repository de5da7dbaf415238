/**
 * DTQ in `pnpm bench`, with its default retention: the library (Queue and Worker in this
 * process), optionally with its features configured (features.ts); the `dtq worker` CLI process,
 * what users run (drain only); and the API for POST /jobs.
 */
import { Queue as DtqQueue, Worker as DtqWorker, loadConfig } from '@dtq/app'
// The API app is not part of the package's public entry point; the benchmark reaches for it.
import { buildApp } from '../../app/src/http/app.ts'
import { connectRedis, createRedis, redisTarget } from '../../app/src/redis/connection.ts'
import {
  CONCURRENCY,
  type Contender,
  contender,
  flush,
  inBatches,
  type Payload,
  server,
  sleep,
  spawnDtq,
  stopChild,
  timedDrain,
  untilCompleted,
} from './bench-kit.ts'
import type { Features } from './features.ts'
import { load } from './peers.ts'
import { freePort } from './private-redis.ts'

const TOKEN = 'bench-token-0123456789abcdef'
const HANDLERS = new URL('noop-handler.ts', import.meta.url).pathname

/** The configuration of every DTQ process in the bench, as environment variables. */
const env = (): Record<string, string> => ({
  REDIS_URL: server.url,
  KEY_PREFIX: 'b',
  LOG_LEVEL: 'error',
  WORKER_CONCURRENCY: String(CONCURRENCY),
  COMPLETED_RETENTION_S: '3600',
  MAX_PAYLOAD_BYTES: '65536',
  EVENTS_MAX_LEN: '10000',
})

const config = (extra: Record<string, string> = {}) => loadConfig({ ...env(), ...extra })

const completed = async (q: DtqQueue): Promise<number> =>
  Number(await q.redis.hget(q.store.keys.stats('default'), 'completed'))

const fill = (q: DtqQueue, n: number, size = 1000) =>
  inBatches(n, size, (from, count) =>
    q.addBulk(Array.from({ length: count }, (_, k) => ({ task_type: 'noop', payload: { n: from + k } }))),
  )

/** DTQ's library: a Queue and a Worker (concurrency 100) in this process; `features` configured or none. */
export function dtqLibrary(features?: Features): Contender {
  const system = contender<DtqQueue>({
    name: features ? 'DTQ, features on' : 'DTQ',
    informational: features !== undefined,
    async queue() {
      await flush()
      const q = await DtqQueue.connect(config())
      await features?.prepare(q, env())
      return q
    },
    fill,
    add: (q, payload) => q.add('noop', payload),
    async consume(q, handler = () => {}) {
      const w = new DtqWorker(config(), { builtins: false, janitorEveryMs: 3_600_000 })
      w.handle('noop', (job) => {
        handler(job.payload as Payload)
        return null
      })
      await w.start()
      return {
        completed: () => completed(q),
        stop: async () => {
          await w.close(1000)
          await q.close()
          await features?.release()
        },
      }
    },
    close: (q) => q.close(),
  })
  return {
    ...system,
    async http() {
      await flush()
      const cfg = config({ API_TOKENS: `${TOKEN}:write`, RATE_LIMIT_PER_MIN: '0' })
      const redis = createRedis({ target: redisTarget(cfg), commandTimeoutMs: 2000 })
      await connectRedis(redis)
      const blocking = createRedis({ target: redisTarget(cfg), commandTimeoutMs: 4000, blocking: true })
      const app = await buildApp({ config: cfg, queue: new DtqQueue(redis, cfg), blocking })
      const port = await freePort()
      await app.listen({ port, host: '127.0.0.1' })
      const res = await load(`http://127.0.0.1:${port}/jobs`, { authorization: `Bearer ${TOKEN}` })
      await app.close()
      redis.disconnect()
      blocking.disconnect()
      return res
    },
  }
}

/**
 * `dtq worker --concurrency 100` as its own process, draining jobs queued beforehand, warm as a
 * worker that has been running is: it first drains a tenth as many warm-up jobs (as the library
 * runs its warm-up round in the bench's process), is paused by a control command while the
 * measured jobs are added, and resumed. Timed from the first measured job its handler started
 * (noop-handler.ts prints the moment) to the last completed in Redis, so neither the process's
 * start-up nor its first jobs' JIT compilation is counted.
 */
export const dtqCli: Contender = {
  name: 'DTQ, dtq worker (CLI)',
  async drain(n) {
    await flush()
    const q = await DtqQueue.connect(config())
    const warm = Math.max(1, Math.round(n / 10))
    await inBatches(warm, 1000, (_, count) =>
      q.addBulk(Array.from({ length: count }, () => ({ task_type: 'noop', payload: { warm: true } }))),
    )
    let first: ((at?: number) => void) | undefined
    const child = spawnDtq(
      ['worker', '--concurrency', String(CONCURRENCY), '--handlers', HANDLERS],
      env(),
      'pipe',
    )
    child.stdout!.setEncoding('utf8')
    child.stdout!.on('data', (s: string) => {
      const m = /^first ([\d.]+)$/m.exec(s)
      if (m) first?.(Number(m[1]))
    })
    const alive = () => {
      if (child.exitCode !== null) throw new Error(`dtq worker exited with ${child.exitCode}`)
    }
    try {
      const warmedUp = async () => {
        alive()
        return completed(q)
      }
      await untilCompleted({ completed: warmedUp, stop: async () => {} }, warm)
      await q.registry.command('*', 'pause')
      while (!(await q.registry.list()).some((w) => w.state === 'paused')) {
        alive()
        await sleep(5)
      }
      await fill(q, n)
    } catch (err) {
      await stopChild(child)
      await q.close()
      throw err
    }
    return timedDrain(n, async (f) => {
      first = f
      await q.registry.command('*', 'resume')
      return {
        completed: async () => {
          alive()
          return (await completed(q)) - warm
        },
        stop: async () => {
          await stopChild(child)
          await q.close()
        },
      }
    })
  },
}
