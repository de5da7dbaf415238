/**
 * pnpm bench: DTQ and BullMQ side by side, one after the other in the same run, against the
 * same private redis-server (AOF off for both, as in docs/performance.md), medians of 3 runs
 * with min–max, and the ratio against each target.
 *
 *   pnpm bench            full sizes (~5 min)
 *   pnpm bench --smoke    tiny sizes, one run (part of npm test, so the benchmark cannot rot)
 */
import { spawn } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Queue as DtqQueue, Worker as DtqWorker, loadConfig } from '@dtq/app'
import autocannon from 'autocannon'
import { Queue as BullQueue, Worker as BullWorker } from 'bullmq'
import Fastify from 'fastify'
import { Redis } from 'ioredis'
// The API app is not part of the package's public entry point; the benchmark reaches for it.
import { buildApp } from '../../app/src/http/app.ts'
import { connectRedis, createRedis, redisTarget } from '../../app/src/redis/connection.ts'

const SMOKE = process.argv.includes('--smoke')
/** --only a,b,c,d,e runs some scenarios. */
const ONLY = (() => {
  const i = process.argv.indexOf('--only')
  return i > 0 ? new Set((process.argv[i + 1] ?? '').split(',')) : null
})()
const want = (k: string) => !ONLY || ONLY.has(k)
const RUNS = SMOKE ? 1 : 3
const N_BULK = SMOKE ? 2000 : 100_000
const N_DRAIN = SMOKE ? 2000 : 100_000
const N_SAT = SMOKE ? 2000 : 50_000
const N_MEM = SMOKE ? 1000 : 20_000
const LAT_SECONDS = SMOKE ? 1 : 5
const HTTP_SECONDS = SMOKE ? 1 : 8
const TOKEN = 'bench-token-0123456789abcdef'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

function freePort(): Promise<number> {
  return new Promise((done) => {
    const s = createServer()
    s.listen(0, '127.0.0.1', () => {
      const a = s.address() as { port: number }
      s.close(() => done(a.port))
    })
  })
}

async function startRedis(): Promise<{ url: string; port: number; stop: () => void }> {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'dtq-bench-'))
  const p = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'no',
      '--logfile',
      '',
    ],
    {
      stdio: 'ignore',
    },
  )
  const r = new Redis({ port, lazyConnect: true, retryStrategy: () => 50 })
  r.on('error', () => {}) // refused until the server listens: expected while it starts
  for (let i = 0; i < 100; i++) {
    try {
      await r.connect()
      break
    } catch {
      await sleep(50)
    }
  }
  r.disconnect()
  return { url: `redis://127.0.0.1:${port}`, port, stop: () => p.kill('SIGTERM') }
}

let REDIS: { url: string; port: number; stop: () => void }
let admin: Redis

async function flush() {
  await admin.flushall()
}

async function usedMemory(): Promise<number> {
  const info = await admin.info('memory')
  return Number(/^used_memory:(\d+)/m.exec(info)?.[1])
}

function dtqConfig(extra: Record<string, string> = {}) {
  return loadConfig({
    REDIS_URL: REDIS.url,
    KEY_PREFIX: 'b',
    LOG_LEVEL: 'silent',
    WORKER_CONCURRENCY: '100',
    COMPLETED_RETENTION_S: '3600',
    MAX_PAYLOAD_BYTES: '65536',
    EVENTS_MAX_LEN: '10000',
    ...extra,
  })
}

async function dtqQueue() {
  const q = await DtqQueue.connect(dtqConfig())
  return q
}

function dtqWorker(handler: (job: { payload: unknown }) => unknown = () => null) {
  const w = new DtqWorker(dtqConfig(), { builtins: false, janitorEveryMs: 3_600_000 })
  w.handle('noop', (job) => handler(job))
  return w
}

async function dtqCompleted(q: DtqQueue): Promise<number> {
  return Number(await q.redis.hget(q.store.keys.stats('default'), 'completed'))
}

const bullConn = () => ({ host: '127.0.0.1', port: REDIS.port, maxRetriesPerRequest: null })

// ---- scenarios: each returns a number (higher or lower is better, as labelled) --------------

async function dtqBulk(): Promise<number> {
  await flush()
  const q = await dtqQueue()
  const t0 = performance.now()
  for (let i = 0; i < N_BULK; i += 1000) {
    await q.addBulk(
      Array.from({ length: Math.min(1000, N_BULK - i) }, (_, k) => ({
        task_type: 'noop',
        payload: { n: i + k },
      })),
    )
  }
  const s = (performance.now() - t0) / 1000
  await q.close()
  return N_BULK / s
}

async function bullBulk(): Promise<number> {
  await flush()
  const q = new BullQueue('bench', { connection: bullConn() })
  const t0 = performance.now()
  for (let i = 0; i < N_BULK; i += 1000) {
    await q.addBulk(
      Array.from({ length: Math.min(1000, N_BULK - i) }, (_, k) => ({ name: 'noop', data: { n: i + k } })),
    )
  }
  const s = (performance.now() - t0) / 1000
  await q.close()
  return N_BULK / s
}

async function dtqDrain(): Promise<number> {
  await flush()
  const q = await dtqQueue()
  for (let i = 0; i < N_DRAIN; i += 1000) {
    await q.addBulk(
      Array.from({ length: Math.min(1000, N_DRAIN - i) }, () => ({ task_type: 'noop', payload: {} })),
    )
  }
  const w = dtqWorker()
  const t0 = performance.now()
  await w.start()
  while ((await dtqCompleted(q)) < N_DRAIN) await sleep(10)
  const s = (performance.now() - t0) / 1000
  await w.close(1000)
  await q.close()
  return N_DRAIN / s
}

async function bullDrain(): Promise<number> {
  await flush()
  const q = new BullQueue('bench', { connection: bullConn() })
  for (let i = 0; i < N_DRAIN; i += 1000) {
    await q.addBulk(Array.from({ length: Math.min(1000, N_DRAIN - i) }, () => ({ name: 'noop', data: {} })))
  }
  let done = 0
  const t0 = performance.now()
  const w = new BullWorker('bench', async () => null, { connection: bullConn(), concurrency: 100 })
  w.on('completed', () => {
    done++
  })
  while (done < N_DRAIN) await sleep(10)
  const s = (performance.now() - t0) / 1000
  await w.close()
  await q.close()
  return N_DRAIN / s
}

async function dtqSaturated(): Promise<number> {
  await flush()
  const q = await dtqQueue()
  const w = dtqWorker()
  await w.start()
  const t0 = performance.now()
  for (let i = 0; i < N_SAT; i += 500) {
    await q.addBulk(
      Array.from({ length: Math.min(500, N_SAT - i) }, () => ({ task_type: 'noop', payload: {} })),
    )
  }
  while ((await dtqCompleted(q)) < N_SAT) await sleep(10)
  const s = (performance.now() - t0) / 1000
  await w.close(1000)
  await q.close()
  return N_SAT / s
}

async function bullSaturated(): Promise<number> {
  await flush()
  const q = new BullQueue('bench', { connection: bullConn() })
  let done = 0
  const w = new BullWorker('bench', async () => null, { connection: bullConn(), concurrency: 100 })
  w.on('completed', () => {
    done++
  })
  await w.waitUntilReady()
  const t0 = performance.now()
  for (let i = 0; i < N_SAT; i += 500) {
    await q.addBulk(Array.from({ length: Math.min(500, N_SAT - i) }, () => ({ name: 'noop', data: {} })))
  }
  while (done < N_SAT) await sleep(10)
  const s = (performance.now() - t0) / 1000
  await w.close()
  await q.close()
  return N_SAT / s
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? 0
}

/** Adds single jobs at `rate`/s for LAT_SECONDS, returns enqueue→start latencies (ms). */
async function paced(rate: number, add: (t: number) => Promise<unknown>): Promise<void> {
  const total = rate * LAT_SECONDS
  const perTick = Math.max(1, Math.round(rate / 100))
  const t0 = performance.now()
  let sent = 0
  const inflight: Promise<unknown>[] = []
  while (sent < total) {
    for (let k = 0; k < perTick && sent < total; k++, sent++) inflight.push(add(Date.now()))
    const due = t0 + (sent / rate) * 1000
    const wait = due - performance.now()
    if (wait > 0) await sleep(wait)
  }
  await Promise.all(inflight)
}

async function dtqLatency(rate: number): Promise<{ p50: number; p99: number }> {
  await flush()
  const q = await dtqQueue()
  const lat: number[] = []
  const w = dtqWorker((job) => {
    lat.push(Date.now() - (job.payload as { t: number }).t)
  })
  await w.start()
  await paced(rate, (t) => q.add('noop', { t }))
  while (lat.length < rate * LAT_SECONDS) await sleep(10)
  await w.close(1000)
  await q.close()
  return { p50: percentile(lat, 50), p99: percentile(lat, 99) }
}

async function bullLatency(rate: number): Promise<{ p50: number; p99: number }> {
  await flush()
  const q = new BullQueue('bench', { connection: bullConn() })
  const lat: number[] = []
  const w = new BullWorker(
    'bench',
    async (job) => {
      lat.push(Date.now() - (job.data as { t: number }).t)
    },
    { connection: bullConn(), concurrency: 100 },
  )
  await w.waitUntilReady()
  await paced(rate, (t) => q.add('noop', { t }))
  while (lat.length < rate * LAT_SECONDS) await sleep(10)
  await w.close()
  await q.close()
  return { p50: percentile(lat, 50), p99: percentile(lat, 99) }
}

async function dtqMemory(): Promise<{ waiting: number; completed: number }> {
  await flush()
  const q = await dtqQueue()
  await q.add('noop', {}) // create the queue's structures first
  const m0 = await usedMemory()
  for (let i = 0; i < N_MEM; i += 1000)
    await q.addBulk(Array.from({ length: 1000 }, () => ({ task_type: 'noop', payload: { n: 1 } })))
  const m1 = await usedMemory()
  const w = dtqWorker()
  await w.start()
  while ((await dtqCompleted(q)) < N_MEM + 1) await sleep(10)
  await w.close(1000)
  const m2 = await usedMemory()
  await q.close()
  return { waiting: (m1 - m0) / N_MEM, completed: (m2 - m0) / N_MEM }
}

async function bullMemory(): Promise<{ waiting: number; completed: number }> {
  await flush()
  const q = new BullQueue('bench', { connection: bullConn() })
  await q.add('noop', {})
  const m0 = await usedMemory()
  for (let i = 0; i < N_MEM; i += 1000)
    await q.addBulk(Array.from({ length: 1000 }, () => ({ name: 'noop', data: { n: 1 } })))
  const m1 = await usedMemory()
  let done = 0
  const w = new BullWorker('bench', async () => null, { connection: bullConn(), concurrency: 100 })
  w.on('completed', () => {
    done++
  })
  while (done < N_MEM + 1) await sleep(10)
  await w.close()
  const m2 = await usedMemory()
  await q.close()
  return { waiting: (m1 - m0) / N_MEM, completed: (m2 - m0) / N_MEM }
}

async function load(url: string, headers: Record<string, string>): Promise<{ rps: number; p99: number }> {
  const r = await autocannon({
    url,
    method: 'POST',
    connections: 50,
    duration: HTTP_SECONDS,
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ task_type: 'noop', payload: { n: 1 } }),
  })
  if (r.non2xx) throw new Error(`${r.non2xx} non-2xx answers from ${url}`)
  return { rps: r.requests.average, p99: r.latency.p99 }
}

async function dtqHttp(): Promise<{ rps: number; p99: number }> {
  await flush()
  const config = dtqConfig({ API_TOKENS: `${TOKEN}:write`, RATE_LIMIT_PER_MIN: '0' })
  const redis = createRedis({ target: redisTarget(config), commandTimeoutMs: 2000 })
  await connectRedis(redis)
  const blocking = createRedis({ target: redisTarget(config), commandTimeoutMs: 4000, blocking: true })
  const app = await buildApp({ config, queue: new DtqQueue(redis, config), blocking })
  const port = await freePort()
  await app.listen({ port, host: '127.0.0.1' })
  const res = await load(`http://127.0.0.1:${port}/jobs`, { authorization: `Bearer ${TOKEN}` })
  await app.close()
  redis.disconnect()
  blocking.disconnect()
  return res
}

async function bareHttp(): Promise<{ rps: number; p99: number }> {
  await flush()
  const redis = new Redis(REDIS.url)
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
}

// ---- runner ---------------------------------------------------------------------------------

interface Stat {
  median: number
  min: number
  max: number
}

function stat(xs: number[]): Stat {
  const s = [...xs].sort((a, b) => a - b)
  return { median: s[Math.floor(s.length / 2)]!, min: s[0]!, max: s[s.length - 1]! }
}

const fmt = (s: Stat, digits = 0) =>
  RUNS > 1
    ? `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`
    : s.median.toFixed(digits)

interface Row {
  name: string
  unit: string
  dtq: Stat
  peer: Stat
  peerName: string
  /** DTQ / peer for higher-is-better, peer / DTQ for lower-is-better. */
  better: 'higher' | 'lower'
  target: number
  digits?: number
}

async function main() {
  REDIS = await startRedis()
  admin = new Redis(REDIS.url)
  const rows: Row[] = []
  /**
   * Runs a scenario for DTQ and its peer, interleaved (DTQ, peer, DTQ, peer, …: these machines
   * drift in speed over minutes, and three runs of one then three of the other would bias the
   * ratio), and adds one row per figure the scenario measures.
   */
  const compare = async <T extends Record<string, number>>(
    label: string,
    dtq: () => Promise<T>,
    peer: () => Promise<T>,
    figures: Array<Omit<Row, 'dtq' | 'peer' | 'peerName'> & { key: keyof T }>,
    peerName = 'BullMQ',
  ) => {
    process.stderr.write(`… ${label}\n`)
    const d: T[] = []
    const p: T[] = []
    for (let i = 0; i < RUNS; i++) {
      d.push(await dtq())
      p.push(await peer())
    }
    for (const { key, ...row } of figures)
      rows.push({ ...row, dtq: stat(d.map((x) => x[key]!)), peer: stat(p.map((x) => x[key]!)), peerName })
  }
  const rate = (run: () => Promise<number>) => async () => ({ rate: await run() })
  try {
    if (want('a'))
      await compare('(a) bulk enqueue', rate(dtqBulk), rate(bullBulk), [
        { key: 'rate', name: '(a) bulk enqueue', unit: 'jobs/s', better: 'higher', target: 2 },
      ])
    if (want('b'))
      await compare('(b) drain, concurrency 100', rate(dtqDrain), rate(bullDrain), [
        { key: 'rate', name: '(b) drain, concurrency 100', unit: 'jobs/s', better: 'higher', target: 2 },
      ])
    if (want('c'))
      await compare('(c) producer + worker, saturated', rate(dtqSaturated), rate(bullSaturated), [
        {
          key: 'rate',
          name: '(c) producer + worker, saturated',
          unit: 'jobs/s',
          better: 'higher',
          target: 2,
        },
      ])
    for (const r of want('c') ? [2000, 5000] : []) {
      const at = SMOKE ? r / 10 : r
      await compare(
        `(c) latency at ${r}/s`,
        () => dtqLatency(at),
        () => bullLatency(at),
        [
          {
            key: 'p50',
            name: `(c) enqueue→start p50 at ${r}/s`,
            unit: 'ms',
            better: 'lower',
            target: 1,
            digits: 1,
          },
          {
            key: 'p99',
            name: `(c) enqueue→start p99 at ${r}/s`,
            unit: 'ms',
            better: 'lower',
            target: r === 5000 ? 5 : 1,
            digits: 1,
          },
        ],
      )
    }
    if (want('d'))
      await compare('(d) memory', dtqMemory, bullMemory, [
        { key: 'waiting', name: '(d) Redis memory per waiting job', unit: 'B', better: 'lower', target: 1 },
        {
          key: 'completed',
          name: '(d) Redis memory per retained completed job',
          unit: 'B',
          better: 'lower',
          target: 0,
        },
      ])
    if (want('e'))
      await compare(
        '(e) HTTP POST /jobs, 50 connections',
        dtqHttp,
        bareHttp,
        [
          {
            key: 'rps',
            name: '(e) HTTP POST /jobs (auth + validation)',
            unit: 'req/s',
            better: 'higher',
            target: 0.7,
          },
          { key: 'p99', name: '(e) HTTP POST /jobs p99', unit: 'ms', better: 'lower', target: 0 },
        ],
        'Fastify + XADD',
      )
  } finally {
    admin.disconnect()
    REDIS.stop()
  }

  const lines = [
    `DTQ vs peers — ${SMOKE ? 'SMOKE (tiny sizes, 1 run: not a measurement)' : `medians of ${RUNS} runs (min–max)`}; node ${process.version}; same private redis-server, AOF off`,
    '',
    `| scenario | unit | DTQ | peer | ratio | target | verdict |`,
    `|---|---|---|---|---|---|---|`,
  ]
  let gaps = 0
  for (const r of rows) {
    const ratio = r.better === 'higher' ? r.dtq.median / r.peer.median : r.peer.median / r.dtq.median
    const verdict = r.target === 0 ? 'info' : ratio >= r.target ? 'met' : 'GAP'
    if (verdict === 'GAP') gaps++
    const targetText =
      r.target === 0 ? '—' : `≥ ${r.target}×${r.better === 'lower' ? ' (lower is better)' : ''}`
    lines.push(
      `| ${r.name} | ${r.unit} | ${fmt(r.dtq, r.digits)} | ${r.peerName}: ${fmt(r.peer, r.digits)} | ${ratio.toFixed(2)}× | ${targetText} | ${verdict} |`,
    )
  }
  lines.push('', `${gaps} target(s) not met${SMOKE ? ' (smoke sizes: ratios mean nothing)' : ''}`)
  process.stdout.write(`${lines.join('\n')}\n`)
}

/**
 * The whole product's benches after the peer comparison (a full run only: not with --only or
 * --smoke): flows against plain jobs (ADR 0019), flow control against the plain path (ADR 0022).
 */
async function companions(): Promise<void> {
  if (SMOKE || process.argv.includes('--only')) return
  for (const script of ['flows.ts', 'limits.ts']) {
    process.stdout.write(`\n== ${script} ==\n`)
    const child = spawn(process.execPath, [new URL(script, import.meta.url).pathname], { stdio: 'inherit' })
    const code = await new Promise<number | null>((done) => child.on('exit', done))
    if (code !== 0) throw new Error(`${script} exited with ${code}`)
  }
}

main()
  .then(companions)
  .then(
    () => process.exit(0),
    (err) => {
      process.stderr.write(`bench failed: ${(err as Error).stack}\n`)
      process.exit(1)
    },
  )
