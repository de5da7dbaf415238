/**
 * Shutdown is bounded whatever Redis's state (invariant 35): `dtq worker`, `dtq dev` and
 * `dtq api`, each given work against a private redis-server, then the server killed or frozen
 * (SIGSTOP: connections open, nothing answered), then SIGTERM: every process exits within
 * SHUTDOWN_TIMEOUT_MS plus the force budget plus slack, measured and printed.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { loadConfig } from '../src/config.ts'
import { Queue } from '../src/queue/queue.ts'
import { freePort, type LocalRedis, startLocalRedis } from '../src/redis/local-server.ts'
import { waitFor } from './helpers.ts'
import { createTestDatabase, type TestDatabase } from './postgres.ts'
import { FIXTURE_HANDLERS, launch, tempDir, type WorkerProcess } from './processes.ts'

type Kind = 'worker' | 'dev' | 'api' | 'archiver'
/** killed: SIGKILL; frozen: SIGSTOP (connections open, nothing answered); frozen-at-start: SIGSTOP'd before the process starts. */
type Fault = 'killed' | 'frozen' | 'frozen-at-start'

const SHUTDOWN_MS = 2000
const CLEANUP_MS = 2000
/** What the process may take beyond its budget: the timer's lateness and the exit itself. */
const SLACK_MS = 1500
const procs: WorkerProcess[] = []
const servers: LocalRedis[] = []
const queues: Queue[] = []
const databases: TestDatabase[] = []

afterEach(async () => {
  for (const p of procs.splice(0))
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL')
  for (const q of queues.splice(0)) q.redis.disconnect()
  for (const d of databases.splice(0)) await d.drop()
  for (const r of servers.splice(0)) {
    if (r.process.exitCode !== null || r.process.signalCode !== null) continue
    r.process.kill('SIGCONT')
    await r.stop()
  }
})

interface Outcome {
  code: number | null | 'hung'
  ms: number
  budget: number
  output: string
}

/** Starts `dtq <kind>` against a private redis-server, gives it work, faults Redis, then SIGTERMs it. */
async function scenario(kind: Kind, fault: Fault, env: Record<string, string> = {}, waitMs = 20_000) {
  const redis = await startLocalRedis(tempDir('shutdown-redis'))
  servers.push(redis)
  const prefix = `s${Date.now().toString(36)}`
  const base = {
    REDIS_URL: redis.url,
    KEY_PREFIX: prefix,
    SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_MS),
    SHUTDOWN_CLEANUP_MS: String(CLEANUP_MS),
    API_DRAIN_DELAY_MS: '0',
    LOG_LEVEL: 'info',
    ...env,
  }
  const drain = kind === 'api' || kind === 'dev' ? Number(base.API_DRAIN_DELAY_MS) : 0
  const budget = (kind === 'worker' || kind === 'dev' ? SHUTDOWN_MS : 0) + drain + CLEANUP_MS
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  if (fault === 'frozen-at-start') redis.process.kill('SIGSTOP')
  let proc: WorkerProcess
  if (kind === 'worker') proc = launch(['worker', '--handlers', FIXTURE_HANDLERS], base)
  else if (kind === 'dev') proc = launch(['dev'], { ...base, PORT: String(port), API_TOKENS: '' })
  else if (kind === 'api') proc = launch(['api', '--port', String(port)], base)
  else {
    const db = await createTestDatabase()
    databases.push(db)
    proc = launch(['archiver'], { ...base, DATABASE_URL: db.url })
  }
  procs.push(proc)
  if (fault === 'frozen-at-start') {
    // Starting: it waits for Redis (the API listens meanwhile, not ready).
    if (kind === 'worker' || kind === 'archiver') {
      await waitFor(() => proc.output().includes('"msg":"starting"'), { timeoutMs: 30_000, what: 'started' })
      await new Promise((r) => setTimeout(r, 1000))
    } else
      await waitFor(async () => (await fetch(`${url}/health/live`).catch(() => null)) !== null, {
        timeoutMs: 30_000,
        what: `${kind} listening`,
      })
  } else {
    const q = await Queue.connect(
      loadConfig({ REDIS_URL: redis.url, KEY_PREFIX: prefix, LOG_LEVEL: 'silent' }),
    )
    queues.push(q)
    // It takes work: jobs run (worker, dev), requests served (api, dev), the archive loop runs.
    if (kind === 'archiver')
      await waitFor(() => proc.output().includes('writing finished jobs'), {
        timeoutMs: 30_000,
        what: 'archiving',
      })
    else if (kind !== 'worker')
      await waitFor(async () => (await fetch(`${url}/health/ready`).catch(() => null))?.status === 200, {
        timeoutMs: 30_000,
        what: `${kind} ready`,
      })
    if (kind === 'worker' || kind === 'dev') {
      const task = kind === 'worker' ? 'ledger' : 'sleep'
      await q.addBulk(Array.from({ length: 40 }, () => ({ task_type: task, payload: { ms: 400 } })))
      await waitFor(async () => (await q.stats()).queues.some((s) => s.streams.normal.pending > 0), {
        timeoutMs: 30_000,
        what: 'jobs running',
      })
    }
    if (kind === 'api' || kind === 'dev') expect((await fetch(`${url}/queues`)).status).toBe(200)
    q.redis.disconnect()
    if (fault === 'killed') {
      redis.process.kill('SIGKILL')
      await new Promise((r) => redis.process.once('exit', r))
    } else redis.process.kill('SIGSTOP')
    // The process notices: its commands fail or time out, its clients reconnect.
    await new Promise((r) => setTimeout(r, 1500))
  }
  const t0 = Date.now()
  proc.child.kill('SIGTERM')
  const code = await Promise.race([
    proc.exited,
    new Promise<'hung'>((r) => setTimeout(() => r('hung'), waitMs)),
  ])
  const ms = Date.now() - t0
  console.log(`dtq ${kind}, redis ${fault}: exit ${code} after ${ms} ms (budget ${budget} ms)`)
  if (process.env.SHOW) console.log(proc.output().slice(-4000))
  return { code, ms, budget, output: proc.output() } satisfies Outcome
}

/** Exited within the budget; a forced exit is 1 and says what it abandoned, in one line. */
function assertBounded(r: Outcome) {
  expect(r.code, r.output.slice(-3000)).not.toBe('hung')
  expect(r.ms).toBeLessThanOrEqual(r.budget + SLACK_MS)
  const forced = r.output.split('\n').filter((l) => l.includes('shutdown budget spent'))
  if (forced.length) {
    expect(forced).toHaveLength(1)
    expect(JSON.parse(forced[0]!)).toMatchObject({ abandoned: expect.any(Object), budget_ms: r.budget })
    expect(r.code).toBe(1)
  }
}

describe("shutdown is bounded whatever Redis's state (invariant 35)", () => {
  for (const kind of ['worker', 'dev', 'api', 'archiver'] as const)
    for (const fault of ['killed', 'frozen', 'frozen-at-start'] as const)
      it(`dtq ${kind}, redis-server ${fault}: SIGTERM exits within the budget`, async () => {
        assertBounded(await scenario(kind, fault))
      }, 60_000)

  it('dtq worker, redis-server frozen under load, repeated: every run exits within the budget', async () => {
    const times: number[] = []
    for (let i = 0; i < 4; i++) {
      const r = await scenario('worker', i % 2 ? 'frozen' : 'killed')
      assertBounded(r)
      times.push(r.ms)
      for (const p of procs.splice(0)) if (p.child.exitCode === null) p.child.kill('SIGKILL')
    }
    console.log('repeated shutdown times (ms):', times)
  }, 180_000)

  for (const kind of ['api', 'dev'] as const)
    it(`dtq ${kind} with a load balancer's drain delay, redis-server frozen: the budget holds the delay too`, async () => {
      // Production sets API_DRAIN_DELAY_MS (the ALB's deregistration): the process goes on
      // serving for it after SIGTERM, and the bound counts it.
      const r = await scenario(kind, 'frozen', { API_DRAIN_DELAY_MS: '1500' })
      assertBounded(r)
      expect(r.budget).toBe((kind === 'dev' ? SHUTDOWN_MS : 0) + 1500 + CLEANUP_MS)
    }, 60_000)

  // Redis commands that time out only after 30 s: the bound, not the command timeout, ends it.
  const slowTimeouts = { REDIS_COMMAND_TIMEOUT_MS: '30000' }
  it('dtq worker holding jobs when Redis froze, its commands timing out after 30 s: SIGTERM exits within the budget', async () => {
    assertBounded(await scenario('worker', 'frozen', slowTimeouts))
  }, 60_000)

  it('negative control (DTQ_UNSAFE=no-shutdown-bound): the same worker ignores SIGTERM past its budget', async () => {
    // The control for the running case (the one below covers start-up): without the bound the
    // worker waits on Redis for its jobs' writes until its commands time out.
    const wait = SHUTDOWN_MS + CLEANUP_MS + 8000
    const r = await scenario('worker', 'frozen', { ...slowTimeouts, DTQ_UNSAFE: 'no-shutdown-bound' }, wait)
    expect(r.code).toBe('hung')
  }, 60_000)

  it('negative control (DTQ_UNSAFE=no-shutdown-bound): a worker waiting for a frozen Redis ignores SIGTERM past its budget', async () => {
    const wait = SHUTDOWN_MS + CLEANUP_MS + 8000
    const r = await scenario('worker', 'frozen-at-start', { DTQ_UNSAFE: 'no-shutdown-bound' }, wait)
    expect(r.code).toBe('hung')
  }, 60_000)
})
