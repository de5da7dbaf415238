/**
 * The peers `pnpm bench` measures DTQ against, on the same private redis-server and the same
 * scenarios: BullMQ with its default retention and with `removeOnComplete: true`, bee-queue with
 * its defaults (a worker queue that sends its events; the producer a plain `isWorker: false`
 * queue that neither listens to events nor keeps job objects, as DTQ's and BullMQ's producers
 * don't), and, for POST /jobs, a bare Fastify route doing one XADD.
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import BeeQueue from 'bee-queue'
import { type Job as BullJob, Queue as BullQueue, Worker as BullWorker } from 'bullmq'
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import {
  CONCURRENCY,
  type Contender,
  contender,
  flush,
  HTTP_SECONDS,
  type Http,
  inBatches,
  type Payload,
  server,
} from './bench-kit.ts'
import { freePort } from './private-redis.ts'

export function bullmq(removeOnComplete: boolean): Contender {
  const connection = () => ({ host: '127.0.0.1', port: server.port, maxRetriesPerRequest: null })
  return contender<BullQueue>({
    name: removeOnComplete ? 'BullMQ removeOnComplete' : 'BullMQ',
    async queue() {
      await flush()
      return new BullQueue('bench', {
        connection: connection(),
        defaultJobOptions: removeOnComplete ? { removeOnComplete: true } : {},
      })
    },
    fill: (q, n, size = 1000) =>
      inBatches(n, size, (from, count) =>
        q.addBulk(Array.from({ length: count }, (_, k) => ({ name: 'noop', data: { n: from + k } }))),
      ),
    add: (q, payload) => q.add('noop', payload),
    async consume(q, handler = () => {}) {
      let done = 0
      const w = new BullWorker(
        'bench',
        async (job: BullJob) => {
          handler(job.data)
          return null
        },
        { connection: connection(), concurrency: CONCURRENCY },
      )
      w.on('completed', () => {
        done++
      })
      await w.waitUntilReady()
      return {
        completed: () => done,
        stop: async () => {
          await w.close()
          await q.close()
        },
      }
    },
    close: (q) => q.close(),
  })
}

export function beeQueue(): Contender {
  const redis = () => ({ host: '127.0.0.1', port: server.port })
  return contender<BeeQueue<Payload>>({
    name: 'bee-queue',
    async queue() {
      await flush()
      const q = new BeeQueue<Payload>('bench', {
        redis: redis(),
        isWorker: false,
        getEvents: false,
        storeJobs: false,
      })
      await q.ready()
      return q
    },
    fill: (q, n, size = 1000) =>
      inBatches(n, size, (from, count) =>
        q.saveAll(Array.from({ length: count }, (_, k) => q.createJob<Payload>({ n: from + k }))),
      ),
    add: (q, payload) => q.createJob(payload).save(),
    async consume(producer, handler = () => {}) {
      let done = 0
      const w = new BeeQueue<Payload>('bench', { redis: redis() })
      w.on('succeeded', () => {
        done++
      })
      w.process(CONCURRENCY, async (job) => {
        handler(job.data)
        return null
      })
      await w.ready()
      return {
        completed: () => done,
        stop: async () => {
          await w.close()
          await producer.close()
        },
      }
    },
    close: (q) => q.close(),
  })
}

/**
 * POST /jobs under autocannon (50 connections, the same body, HTTP_SECONDS) from a process of its
 * own (http-load.ts): the server under test, in this process, has its event loop to itself, and
 * this process's CPU over the load is the server's -- per request, the figure that does not
 * depend on how fast the load generator is.
 */
export async function load(url: string, headers: Record<string, string>): Promise<Http> {
  const child = spawn(
    process.execPath,
    [
      fileURLToPath(new URL('http-load.ts', import.meta.url)),
      url,
      String(HTTP_SECONDS),
      headers.authorization ?? '',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  let out = ''
  child.stdout.setEncoding('utf8').on('data', (s: string) => {
    out += s
  })
  const cpu0 = process.cpuUsage()
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
  const cpu = process.cpuUsage(cpu0)
  if (code !== 0) throw new Error(`the load generator exited with ${code}`)
  const r = JSON.parse(out) as { rps: number; p99: number; requests: number; non2xx: number }
  if (r.non2xx) throw new Error(`${r.non2xx} non-2xx answers from ${url}`)
  // The generator's own start-up (~0.3 s) is in the span but sends nothing: CPU per request
  // counts only what the server did (idle costs next to nothing).
  return { rps: r.rps, p99: r.p99, cpuUs: (cpu.user + cpu.system) / Math.max(1, r.requests) }
}

/** The floor for POST /jobs: a bare Fastify route doing one XADD, no auth, no validation. */
export const bareFastify: Contender = {
  name: 'Fastify + XADD',
  async http() {
    await flush()
    const redis = new Redis(server.url)
    const app = Fastify()
    app.post('/jobs', async (req, reply) => {
      const id = await redis.xadd('bare', '*', 'data', JSON.stringify(req.body))
      reply.code(201)
      return { id }
    })
    const port = await freePort()
    await app.listen({ port, host: '127.0.0.1' })
    const res = await load(`http://127.0.0.1:${port}/jobs`, {})
    await app.close()
    redis.disconnect()
    return res
  },
}
