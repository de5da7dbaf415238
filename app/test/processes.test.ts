/**
 * Faults over real processes: `dtq worker` processes killed with SIGKILL or stopped with
 * SIGTERM under load, redis-server killed and restarted under a running worker, a poison job
 * that kills its worker. A ledger outside Redis counts every execution.
 */
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { connectRedis, createRedis, redisTarget } from '../src/redis/connection.ts'
import { GROUP } from '../src/redis/keys.ts'
import { startLocalRedis } from '../src/redis/local-server.ts'
import { type Bundle, setup, targetEnv, waitFor } from './helpers.ts'
import { check, readLedger, runCli, spawnWorker, tempDir, type WorkerProcess } from './processes.ts'

const Q = 'default'
let b: Bundle | undefined
const procs: WorkerProcess[] = []
const cleanups: Array<() => Promise<void>> = []

afterEach(async () => {
  for (const p of procs.splice(0)) if (p.child.exitCode === null) p.child.kill('SIGKILL')
  await b?.cleanup()
  b = undefined
  for (const c of cleanups.splice(0)) await c()
})

function envOf(bundle: Bundle, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...targetEnv(redisTarget(bundle.config)),
    KEY_PREFIX: bundle.prefix,
    LEASE_MS: '200',
    CLAIM_IDLE_MS: '1000',
    INITIAL_BACKOFF_MS: '50',
    SHUTDOWN_TIMEOUT_MS: '3000',
    WORKER_CONCURRENCY: '8',
    ...extra,
  }
}

function start(env: Record<string, string>): WorkerProcess {
  const p = spawnWorker(env)
  procs.push(p)
  return p
}

async function completedIds(bundle: Bundle): Promise<Set<string>> {
  return new Set(await bundle.redis.zrange(bundle.queue.store.keys.index(Q, 'completed'), 0, -1))
}

async function assertDrained(bundle: Bundle) {
  const s = await bundle.queue.store.queueStats(Q)
  expect(s.counts).toMatchObject({ queued: 0, active: 0, scheduled: 0, retrying: 0 })
  for (const p of ['high', 'normal', 'low'] as const) expect(s.streams[p].pending).toBe(0)
  expect(s.totals.lost_entries ?? 0).toBe(0)
}

describe('worker processes under faults', () => {
  it('two `dtq worker`s, `dtq enqueue echo --count 10000`, one killed -9 halfway: 10,000 completed', async () => {
    b = await setup()
    const env = envOf(b, { WORKER_CONCURRENCY: '50' })
    const w1 = start(env)
    start(env)
    await runCli(env, ['enqueue', 'echo', '--count', '10000'])
    await waitFor(async () => (await b!.queue.store.queueStats(Q)).counts.completed >= 5000, {
      timeoutMs: 60_000,
    })
    w1.child.kill('SIGKILL')
    await w1.exited
    const stats = await waitFor(
      async () => {
        const s = JSON.parse(await runCli(env, ['stats', '--json']))
        return s.totals.completed === 10_000 && s.totals.active === 0 ? s : null
      },
      { timeoutMs: 60_000, intervalMs: 500, what: '10,000 completed' },
    )
    expect(stats.totals).toMatchObject({
      completed: 10_000,
      failed: 0,
      queued: 0,
      active: 0,
      scheduled: 0,
      retrying: 0,
      dlq: 0,
    })
    await assertDrained(b)
  })

  it('kill -9 a worker repeatedly under load: lost 0, duplicates bounded by what it held', async () => {
    b = await setup()
    const ledger = join(tempDir('ledger'), 'ledger.txt')
    const env = envOf(b, { LEDGER_FILE: ledger })
    start(env)
    let victim = start(env)
    const n = 1500
    const res = await b.queue.addBulk(
      Array.from({ length: n }, () => ({ task_type: 'ledger', payload: { ms: 5 } })),
    )
    const accepted = res.map((r) => r.job.id)
    const kills = 3
    for (let k = 1; k <= kills; k++) {
      await waitFor(async () => (await completedIds(b!)).size >= (n * k) / (kills + 1), { timeoutMs: 60_000 })
      victim.child.kill('SIGKILL')
      await victim.exited
      victim = start(env)
    }
    await waitFor(async () => (await completedIds(b!)).size === n, {
      timeoutMs: 60_000,
      what: 'all completed',
    })
    const verdict = check(accepted, await completedIds(b), readLedger(ledger))
    console.log('kill -9 workers:', verdict)
    expect(verdict.lost).toBe(0)
    expect(verdict.unexpected).toBe(0)
    expect(verdict.duplicated).toBeLessThanOrEqual(8 * kills)
    await assertDrained(b)
  })

  it('SIGTERM a worker under load: exits within the budget, lost 0, duplicated 0', async () => {
    b = await setup()
    const ledger = join(tempDir('ledger'), 'ledger.txt')
    const env = envOf(b, { LEDGER_FILE: ledger })
    start(env)
    const victim = start(env)
    const n = 800
    const res = await b.queue.addBulk(
      Array.from({ length: n }, () => ({ task_type: 'ledger', payload: { ms: 20 } })),
    )
    await waitFor(async () => (await completedIds(b!)).size >= n / 3, { timeoutMs: 60_000 })
    const t0 = Date.now()
    victim.child.kill('SIGTERM')
    expect(await victim.exited).toBe(0)
    expect(Date.now() - t0).toBeLessThan(3000 + 2000)
    await waitFor(async () => (await completedIds(b!)).size === n, { timeoutMs: 60_000 })
    const verdict = check(
      res.map((r) => r.job.id),
      await completedIds(b),
      readLedger(ledger),
    )
    console.log('SIGTERM worker:', verdict)
    expect(verdict).toMatchObject({ lost: 0, duplicated: 0, unexpected: 0 })
    // The stopped worker left no consumer behind holding entries.
    const consumers = (await b.redis.xinfo(
      'CONSUMERS',
      b.queue.store.keys.stream(Q, 'normal'),
      'workers',
    )) as string[][]
    for (const c of consumers) expect(Number(c[3])).toBe(0)
    await assertDrained(b)
  })

  it('a poison job that kills its worker goes to the DLQ after MAX_DELIVERIES; other jobs are unaffected', async () => {
    b = await setup()
    const env = envOf(b, { MAX_DELIVERIES: '2', WORKER_CONCURRENCY: '2' })
    const poison = await b.queue.add('crash', {})
    let crashes = 0
    let stop = false
    const supervise = async () => {
      while (!stop) {
        const p = start(env)
        const code = await p.exited
        if (code === null) crashes++
      }
    }
    const supervisor = supervise()
    await waitFor(async () => (await b!.queue.getJob(poison.job.id))?.state === 'failed', {
      timeoutMs: 60_000,
    })
    const fine = await b.queue.add('echo', { ok: true })
    await waitFor(async () => (await b!.queue.getJob(fine.job.id))?.state === 'completed', {
      timeoutMs: 20_000,
    })
    stop = true
    for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGTERM')
    await supervisor
    const j = (await b.queue.getJob(poison.job.id))!
    expect(j.error).toMatch(/poison/)
    expect(j.stalls).toBe(3)
    expect(crashes).toBe(3)
    expect((await b.queue.listDlq()).items.map((x) => x.id)).toEqual([poison.job.id])
  })
})

describe('a worker frozen past its lease, whose jobs come back to it', () => {
  /**
   * The worker is stopped (SIGSTOP: a long GC pause, a VM freeze) while it runs jobs; their
   * leases lapse and they are reclaimed; when it wakes, the same worker is handed them again.
   * The old runs must be aborted as soon as their loss is known, and must never untrack the new
   * runs' leases (before the fix, per-job bookkeeping let the old run's end drop the new run's
   * lease, the cycle repeated, and healthy jobs were dead-lettered as poison).
   */
  it('aborts the stale runs, completes each job, never poisons it (repeated)', async () => {
    b = await setup()
    const track = join(tempDir('track'), 'track.txt')
    const env = envOf(b, { TRACK_FILE: track, MAX_DELIVERIES: '3', WORKER_CONCURRENCY: '8' })
    const worker = start(env)
    const store = b.queue.store
    const lines = () => (existsSync(track) ? readFileSync(track, 'utf8').trim().split('\n') : [])
    const jobsPerRound = 4
    for (let round = 0; round < 2; round++) {
      const res = await b.queue.addBulk(
        Array.from({ length: jobsPerRound }, () => ({ task_type: 'tracked', payload: { ms: 3000 } })),
      )
      const ids = res.map((r) => r.job.id)
      const started = (id: string) => lines().filter((l) => l.startsWith(`${id} start`)).length
      await waitFor(() => ids.every((id) => started(id) === 1), { what: 'first runs started' })
      worker.child.kill('SIGSTOP')
      // Frozen until every lease has lapsed, then reclaimed by someone else (here: the test).
      await waitFor(
        async () => {
          const pend = (await b!.redis.xpending(
            store.keys.stream(Q, 'normal'),
            GROUP,
            '-',
            '+',
            100,
          )) as Array<[string, string, number, number]>
          return pend.length === jobsPerRound && pend.every((p) => p[2] > 1200)
        },
        { what: 'leases lapsed' },
      )
      let cursor = '0-0'
      let requeued = 0
      do {
        const r = await store.reclaim(Q, 'test-reaper', 'normal', 1000, 3, cursor)
        requeued += r.requeued
        cursor = r.cursor
      } while (cursor !== '0-0')
      expect(requeued).toBe(jobsPerRound)
      worker.child.kill('SIGCONT')
      await waitFor(
        async () => {
          const jobs = await Promise.all(ids.map((id) => b!.queue.getJob(id)))
          return jobs.every((j) => j && (j.state === 'completed' || j.state === 'failed'))
        },
        { timeoutMs: 30_000, what: 'jobs finished' },
      )
      for (const id of ids) {
        const job = (await b.queue.getJob(id))!
        const mine = lines().filter((l) => l.startsWith(`${id} `))
        expect({ id, state: job.state, stalls: job.stalls }).toEqual({ id, state: 'completed', stalls: 1 })
        // Two runs: the stale one (epoch 1) aborted, the new one (epoch 3) done.
        expect(mine.filter((l) => l.includes(' start '))).toHaveLength(2)
        expect(mine).toContain(`${id} abort 1`)
        expect(mine).toContain(`${id} done 3`)
        expect(mine).not.toContain(`${id} done 1`)
      }
    }
    expect(worker.child.exitCode).toBeNull()
  }, 90_000)
})

describe('redis-server restarted under a running worker', () => {
  it('the worker recovers by itself and loses nothing acknowledged', async () => {
    const dir = tempDir('redis-restart')
    let redis = await startLocalRedis(dir)
    const port = Number(new URL(redis.url).port)
    cleanups.push(() => redis.stop())
    // appendfsync always: every acknowledged write is on disk before the kill.
    const admin = createRedis({ target: redis.url, commandTimeoutMs: 2000 })
    await connectRedis(admin)
    await admin.config('SET', 'appendfsync', 'always')
    admin.disconnect()
    b = await setup({ url: redis.url })
    const ledger = join(tempDir('ledger'), 'ledger.txt')
    const env = envOf(b, { LEDGER_FILE: ledger })
    const worker = start(env)
    const first = await b.queue.addBulk(
      Array.from({ length: 300 }, () => ({ task_type: 'ledger', payload: { ms: 10 } })),
    )
    await waitFor(async () => (await completedIds(b!)).size >= 100, { timeoutMs: 30_000 })

    redis.process.kill('SIGKILL')
    await new Promise((r) => redis.process.once('exit', r))
    await new Promise((r) => setTimeout(r, 1500)) // the worker sees Redis gone
    redis = await startLocalRedis(dir, port)

    await waitFor(async () => b!.redis.status === 'ready', { timeoutMs: 20_000 })
    const second = await waitFor(
      () =>
        b!.queue.addBulk(Array.from({ length: 100 }, () => ({ task_type: 'ledger', payload: { ms: 10 } }))),
      { timeoutMs: 20_000, what: 'enqueue after restart' },
    )
    const accepted = [...first, ...second].map((r) => r.job.id)
    await waitFor(async () => (await completedIds(b!)).size === accepted.length, {
      timeoutMs: 60_000,
      what: 'all completed',
    }).catch((err: Error) => {
      throw new Error(
        `${err.message}; worker exit ${worker.child.exitCode}, output:\n${worker.output().slice(-3000)}`,
      )
    })
    const verdict = check(accepted, await completedIds(b), readLedger(ledger))
    console.log('redis restart:', verdict)
    expect(verdict.lost).toBe(0)
    expect(verdict.unexpected).toBe(0)
    expect(verdict.duplicated).toBeLessThanOrEqual(8)
    expect(worker.child.exitCode).toBeNull()
    await assertDrained(b)
  }, 150_000) // the waits above add up to more than the default 60 s on a busy machine
})
