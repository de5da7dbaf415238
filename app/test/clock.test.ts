/**
 * Redis's clock is the fleet's time base (ADR 0012): a process whose machine clock is off by any
 * steady amount still writes Redis's time, so DLQ ages, retention and purges hold. The process
 * tests run `dtq worker` / `dtq api` with DTQ_TEST_CLOCK_SKEW_MS (the process behaves as if its
 * clock were off by that much); the negative control switches the correction off.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { loadConfig } from '../src/config.ts'
import { F } from '../src/queue/job.ts'
import { Queue } from '../src/queue/queue.ts'
import { followClock, RedisClock } from '../src/redis/clock.ts'
import { connectRedis, createRedis, type RedisClient, redisTarget } from '../src/redis/connection.ts'
import { freePort, startLocalRedis } from '../src/redis/local-server.ts'
import { JobStore } from '../src/redis/store.ts'
import { type Bundle, FakeClock, setup, targetEnv, waitFor } from './helpers.ts'
import { launch, runCli, spawnWorker, tempDir, type WorkerProcess } from './processes.ts'

const YEAR = 365 * 86_400_000
const HOUR = 3_600_000
/** How far a corrected clock may be from Redis's here (local Redis: round trips well under 1 ms). */
const CLOSE_MS = 25

let b: Bundle | undefined
const procs: WorkerProcess[] = []
const cleanups: Array<() => unknown> = []
afterEach(async () => {
  for (const p of procs.splice(0)) if (p.child.exitCode === null) p.child.kill('SIGKILL')
  for (const c of cleanups.splice(0)) await c()
  await b?.cleanup()
  b = undefined
})

async function redisNow(redis: RedisClient): Promise<number> {
  const [s, us] = await redis.time()
  return Number(s) * 1000 + Math.floor(Number(us) / 1000)
}

/** |clock − Redis's clock|, bracketed by two TIME calls. */
async function distance(redis: RedisClient, now: () => number): Promise<number> {
  const before = await redisNow(redis)
  const t = now()
  const after = await redisNow(redis)
  return t < before ? before - t : t > after + 1 ? t - after - 1 : 0
}

describe('RedisClock', () => {
  it('measures the offset to Redis within a few ms, and corrects a skewed local clock', async () => {
    b = await setup()
    const redis = b.redis
    for (const skewMs of [0, YEAR, -HOUR]) {
      const warnings: Array<Record<string, unknown>> = []
      const clock = new RedisClock(redis, { skewMs, warn: (f) => warnings.push(f) })
      await clock.start()
      cleanups.push(() => clock.stop())
      expect(Math.abs(clock.offsetMs + skewMs)).toBeLessThanOrEqual(CLOSE_MS)
      expect(clock.rttMs).toBeGreaterThanOrEqual(0)
      expect(clock.rttMs).toBeLessThan(CLOSE_MS)
      expect(await distance(redis, () => clock.now())).toBeLessThanOrEqual(CLOSE_MS)
      // The lease thread's view: Date.now() plus the shared shift.
      expect(await distance(redis, () => followClock(clock.shift).now())).toBeLessThanOrEqual(CLOSE_MS)
      // Warned once for a clock that is off (not again while the offset holds), never otherwise.
      await clock.measure()
      expect(warnings.length).toBe(skewMs ? 1 : 0)
      if (skewMs) expect(Math.abs((warnings[0]!.offsetMs as number) + skewMs)).toBeLessThanOrEqual(CLOSE_MS)
    }
  })

  it('keeps the last good offset while Redis is unreachable, and measures again when it is back', async () => {
    b = await setup()
    const redis = createRedis({ target: redisTarget(b.config), commandTimeoutMs: 500 })
    cleanups.push(() => redis.disconnect())
    await connectRedis(redis)
    const clock = new RedisClock(redis, { skewMs: YEAR, warn() {} })
    cleanups.push(() => clock.stop())
    await clock.start()
    const offset = clock.offsetMs
    redis.disconnect()
    await expect(clock.measure()).rejects.toThrow()
    expect(clock.offsetMs).toBe(offset)
    expect(await distance(b.redis, () => clock.now())).toBeLessThanOrEqual(CLOSE_MS)
    await redis.connect()
    await clock.measure()
    expect(Math.abs(clock.offsetMs - offset)).toBeLessThanOrEqual(CLOSE_MS)
  })

  it('a clock that cannot reach Redis at first reads the local clock and retries until it can', async () => {
    b = await setup()
    const port = await freePort()
    const redis = createRedis({ target: `redis://127.0.0.1:${port}`, commandTimeoutMs: 500 })
    cleanups.push(() => redis.disconnect())
    const clock = new RedisClock(redis, { skewMs: HOUR, warn() {} })
    cleanups.push(() => clock.stop())
    await expect(clock.start()).rejects.toThrow()
    expect(clock.offsetMs).toBe(0)
    expect(clock.rttMs).toBeNull()
    expect(clock.now() - Date.now()).toBe(HOUR)
    const server = await startLocalRedis(tempDir('clock-redis'), port)
    cleanups.push(() => server.stop())
    await connectRedis(redis)
    await waitFor(() => Math.abs(clock.offsetMs + HOUR) <= CLOSE_MS, {
      what: 'a measurement after the retry',
    })
  })

  it('is the default clock of Queue, Queue.connect and Worker; an injected clock is used as is', async () => {
    b = await setup()
    const skewed = { ...b.config, testClockSkewMs: YEAR }
    const q = new Queue(b.redis, skewed)
    cleanups.push(() => q.close())
    expect(q.clock).toBeInstanceOf(RedisClock)
    await (q.clock as RedisClock).sync()
    expect(await distance(b.redis, () => q.clock.now())).toBeLessThanOrEqual(CLOSE_MS)

    const connected = await Queue.connect(
      loadConfig({
        ...targetEnv(redisTarget(b.config)),
        KEY_PREFIX: b.prefix,
        DTQ_TEST_CLOCK_SKEW_MS: String(-HOUR),
      }),
    )
    cleanups.push(() => connected.close())
    // Measured before connect() returns.
    expect(await distance(b.redis, () => connected.clock.now())).toBeLessThanOrEqual(CLOSE_MS)

    const w = b.worker({ testClockSkewMs: YEAR })
    await w.start()
    expect(w.clock).toBeInstanceOf(RedisClock)
    expect(await distance(b.redis, () => w.clock.now())).toBeLessThanOrEqual(CLOSE_MS)
    expect(w.store.clock).toBe(w.clock)

    const fake = new FakeClock()
    expect(new Queue(b.redis, skewed, { clock: fake }).clock).toBe(fake)
  })

  it('dead-letters behind a deleted newer DLQ entry (a caller whose now is behind the stream top)', async () => {
    const clock = new FakeClock()
    b = await setup({ clock })
    const store = b.queue.store
    const ahead = new JobStore(b.redis, { ...store.opts, clock: new FakeClock(clock.t + 10_000) })
    await store.ensureGroups('default')
    const { job } = await b.queue.add('x', {}, { max_retries: 0 })
    const deadLetter = async (by: JobStore) => {
      const [d] = (await by.deliver('default', 'w', 1)).jobs
      expect(d?.id).toBe(job.id)
      const error = { message: 'e', worker: 'w', attempt: 1 }
      expect(await by.fail('default', job.id, d!.epoch, 'permanent', error, 0)).toBe('failed')
      return (await b!.redis.hget(store.keys.job('default', job.id), F.dlq_entry))!
    }
    const first = await deadLetter(ahead)
    await b.queue.retry(job.id) // its entry, the stream's top, is deleted
    const second = await deadLetter(store)
    const [top] = await b.redis.xrevrange(store.keys.dlq('default'), '+', '-', 'COUNT', 1)
    expect(top![0]).toBe(second)
    expect(Number(second.split('-')[0])).toBeGreaterThanOrEqual(Number(first.split('-')[0]))
    expect(second).not.toBe(first)
  })
})

// ---- processes ---------------------------------------------------------------------------

const QUEUES = ['p', 'j']
const N = 5

interface Outcome {
  /** Right after the jobs ran: DLQ purge of entries older than 14.4 min (queue p). */
  purgedNow: number
  /** Right after: the janitor (failed retention 60 s, completed 600 s) on both queues. */
  trimmedNow: number
  prunedNow: number
  /** Once the entries are a second old: DLQ purge older than 0.864 s (queue p). */
  purgedLater: number
  /** The janitor a minute later (retention 60 s): DLQ trim (queue j) and completed prune. */
  trimmedLater: number
  prunedLater: number
  warned: boolean
}

/** What retention and purges do after a worker whose clock is off by `skewMs` ran the jobs. */
async function runSkewedWorker(skewMs: number, sync = true): Promise<Outcome> {
  b = await setup()
  const bundle = b
  const env = {
    ...targetEnv(redisTarget(bundle.config)),
    KEY_PREFIX: bundle.prefix,
    WORKER_QUEUES: QUEUES.join(','),
    LEASE_MS: '200',
    CLAIM_IDLE_MS: '1000',
    DTQ_TEST_CLOCK_SKEW_MS: String(skewMs),
    ...(sync ? {} : { DTQ_UNSAFE: 'no-clock-sync' }),
  }
  const worker = spawnWorker(env)
  procs.push(worker)
  for (const queue of QUEUES) {
    await bundle.queue.addBulk([
      ...Array.from({ length: N }, () => ({ task_type: 'fail', queue, max_retries: 0 })),
      ...Array.from({ length: N }, () => ({ task_type: 'echo', queue })),
    ])
  }
  await waitFor(
    async () => {
      const s = await Promise.all(QUEUES.map((q) => bundle.queue.store.queueStats(q)))
      return s.every((x) => x.counts.failed === N && x.counts.completed === N)
    },
    { timeoutMs: 30_000, what: 'jobs run by the skewed worker' },
  )
  worker.child.kill('SIGTERM')
  await worker.exited
  const ranBy = await redisNow(bundle.redis)

  const cli = { ...targetEnv(redisTarget(bundle.config)), KEY_PREFIX: bundle.prefix }
  const purge = async (days: number) =>
    Number(
      /purged (\d+)/.exec(
        await runCli(cli, ['dlq', 'purge', '--queue', 'p', '--older-than-days', String(days)]),
      )![1],
    )
  const janitor = async (clock: FakeClock, completedRetentionS: number) => {
    const store = new JobStore(bundle.redis, {
      ...bundle.queue.store.opts,
      completedRetentionS,
      failedRetentionS: 60,
      clock,
    })
    let trimmed = 0
    let pruned = 0
    for (const q of QUEUES) {
      const r = await store.sweep(q, new Set(), 60_000)
      trimmed += r.dlqEntries
      pruned += r.completedJobs
    }
    return { trimmed, pruned }
  }

  const purgedNow = await purge(0.01)
  const now = await janitor(new FakeClock(await redisNow(bundle.redis)), 600)
  await waitFor(async () => (await redisNow(bundle.redis)) - ranBy > 1000, { what: 'a second' })
  const purgedLater = await purge(0.00001)
  const later = await janitor(new FakeClock((await redisNow(bundle.redis)) + 61_000), 60)
  return {
    purgedNow,
    trimmedNow: now.trimmed,
    prunedNow: now.pruned,
    purgedLater,
    trimmedLater: later.trimmed,
    prunedLater: later.pruned,
    warned: /clock is off from Redis/.test(worker.output()),
  }
}

const asIfUnskewed: Omit<Outcome, 'warned'> = {
  purgedNow: 0,
  trimmedNow: 0,
  prunedNow: 0,
  purgedLater: N,
  trimmedLater: N,
  prunedLater: 2 * N,
}

describe('a worker process whose clock is off', () => {
  it.each([
    ['unskewed', 0],
    ['a year ahead', YEAR],
    ['an hour behind', -HOUR],
  ])('%s: its dead letters and completed jobs are purged and pruned on time', async (_, skewMs) => {
    const o = await runSkewedWorker(skewMs)
    expect(o).toEqual({ ...asIfUnskewed, warned: skewMs !== 0 })
  })

  it('negative control (no clock sync), a year ahead: its DLQ entries and completed jobs are pinned', async () => {
    const o = await runSkewedWorker(YEAR, false)
    expect(o).toMatchObject({ purgedLater: 0, trimmedLater: 0, prunedLater: 0 })
  })

  it('negative control (no clock sync), an hour behind: they are removed an hour early', async () => {
    const o = await runSkewedWorker(-HOUR, false)
    expect(o).toMatchObject({ purgedNow: N, trimmedNow: N, prunedNow: 2 * N })
  })
})

describe('an API process whose clock is off', () => {
  it('a year ahead: delays, created_at, DLQ purges by age and a schedule’s fires use Redis’s time', async () => {
    b = await setup()
    const bundle = b
    const port = await freePort()
    const api = launch(['api', '--port', String(port)], {
      ...targetEnv(redisTarget(bundle.config)),
      KEY_PREFIX: bundle.prefix,
      DTQ_TEST_CLOCK_SKEW_MS: String(YEAR),
      API_DRAIN_DELAY_MS: '0',
    })
    procs.push(api)
    const url = `http://127.0.0.1:${port}`
    await waitFor(async () => (await fetch(`${url}/health/ready`)).status === 200, { timeoutMs: 20_000 })
    const post = async (body: unknown) => {
      const r = await fetch(`${url}/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      })
      return (await r.json()) as { id: string; created_at: number }
    }
    await waitFor(() => /clock is off from Redis/.test(api.output()), { what: 'the offset warning' })
    const t0 = await redisNow(bundle.redis)
    const delayed = await post({ task_type: 'echo', delay_ms: 1500 })
    const t1 = await redisNow(bundle.redis)
    expect(delayed.created_at).toBeGreaterThanOrEqual(t0 - CLOSE_MS)
    expect(delayed.created_at).toBeLessThanOrEqual(t1 + CLOSE_MS)
    const due = Number(await bundle.redis.zscore(bundle.queue.store.keys.delayed('default'), delayed.id))
    expect(due - delayed.created_at).toBe(1500)
    const w = bundle.worker()
    await w.start()
    await waitFor(async () => (await bundle.queue.getJob(delayed.id))?.state === 'completed', {
      timeoutMs: 5000,
    })

    // A dead letter written in Redis's time, purged by age through the skewed API.
    const failed = await post({ task_type: 'fail', max_retries: 0 })
    await waitFor(async () => (await bundle.queue.getJob(failed.id))?.state === 'failed')
    const del = (days: number) =>
      fetch(`${url}/dlq?older_than_days=${days}`, { method: 'DELETE' }).then((r) => r.json())
    expect(await del(0.01)).toEqual({ deleted: 0 })
    const at = await redisNow(bundle.redis)
    await waitFor(async () => (await redisNow(bundle.redis)) - at > 1000, { what: 'a second' })
    expect(await del(0.00001)).toEqual({ deleted: 1 })

    // A schedule made and fired by the skewed API process (its runner): its times are Redis's.
    const t2 = await redisNow(bundle.redis)
    const put = await fetch(`${url}/schedules/skewed`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ every_ms: 1000, job: { task_type: 'echo' } }),
    }).then((r) => r.json() as Promise<{ next_runs: number[] }>)
    expect(put.next_runs[0]!).toBeGreaterThanOrEqual(t2 - CLOSE_MS)
    expect(put.next_runs[0]!).toBeLessThanOrEqual(t2 + 1000 + CLOSE_MS)
    // It fires within seconds (a year ahead, it would not fire for a year), at Redis's times.
    const fired = await waitFor(
      async () => {
        const jobs = (await bundle.queue.listJobs({ limit: 50 })).items.filter(
          (j) => j.task_type === 'echo' && j.id !== delayed.id,
        )
        return jobs.length ? jobs[0]! : null
      },
      { timeoutMs: 10_000, what: 'a fire' },
    )
    expect(Math.abs(fired.created_at - (await redisNow(bundle.redis)))).toBeLessThan(10_000)
  })
})
