/**
 * The queue page's and the dashboard's reads (issue 22, ADR 0032): a queue's live consumers in
 * GET /queues and /stats (`live_workers`, `no_workers`), and what is failing now
 * (GET /stats/failures). Real Redis and workers.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { lacksWorkers, liveWorkersByQueue } from '../src/queue/consumers.ts'
import { type ApiBundle, apiSetup, bearer, TOKEN_SETTING } from './api-helpers.ts'
import { FakeClock, targetEnv, testTarget, waitFor } from './helpers.ts'
import { runCli } from './processes.ts'

let b: ApiBundle | undefined
afterEach(async () => {
  await b?.cleanup()
  b = undefined
})

type Row = { queue: string; live_workers: number; no_workers: boolean; paused: boolean }
const rowOf = async (bb: ApiBundle, queue: string, url = '/queues'): Promise<Row | undefined> => {
  const res = await bb.app.inject({ method: 'GET', url, headers: bearer('read') })
  expect(res.statusCode).toBe(200)
  const body = res.json() as { items?: Row[]; queues?: Row[] }
  return (body.items ?? body.queues)!.find((q) => q.queue === queue)
}

describe('live consumers', () => {
  it('counts live workers per queue: partitions for their queue, stopping workers not at all', () => {
    const live = liveWorkersByQueue([
      { queues: ['a', 'b~1', 'b'], state: 'running' },
      { queues: ['a'], state: 'paused' },
      { queues: ['a', 'c'], state: 'stopping' },
    ])
    expect(Object.fromEntries(live)).toEqual({ a: 2, b: 1 })
    expect(lacksWorkers({ paused: false, waiting: 1, active: 0 }, 0)).toBe(true)
    expect(lacksWorkers({ paused: false, waiting: 0, active: 1 }, 0)).toBe(true)
    expect(lacksWorkers({ paused: false, waiting: 0, active: 0 }, 0)).toBe(false) // no work
    expect(lacksWorkers({ paused: true, waiting: 5, active: 0 }, 0)).toBe(false) // paused: shown as such
    expect(lacksWorkers({ paused: false, waiting: 5, active: 0 }, 1)).toBe(false)
  })

  it('GET /queues and /stats flag a queue with work and no live worker, not one with a worker or no work', async () => {
    b = await apiSetup()
    // No work: not flagged.
    await b.queue.pauseQueue('idle') // registers the queue with nothing in it
    await b.queue.resumeQueue('idle')
    expect(await rowOf(b, 'idle')).toMatchObject({ live_workers: 0, no_workers: false })

    // Work and nobody consumes the queue: flagged, in both reads.
    await b.queue.add('echo', { n: 1 }, { queue: 'orphan' })
    expect(await rowOf(b, 'orphan')).toMatchObject({ live_workers: 0, no_workers: true })
    expect(await rowOf(b, 'orphan', '/stats')).toMatchObject({ live_workers: 0, no_workers: true })
    // A worker of another queue changes nothing.
    const other = b.worker({ workerQueues: ['elsewhere'] })
    await other.start()
    expect(await rowOf(b, 'orphan')).toMatchObject({ live_workers: 0, no_workers: true })

    // Paused: shown as paused, not as "no workers".
    await b.queue.pauseQueue('orphan')
    expect(await rowOf(b, 'orphan')).toMatchObject({ paused: true, no_workers: false })
    await b.queue.resumeQueue('orphan')

    // A worker starts on the queue: no longer flagged (and it runs the job).
    const w = b.worker({ workerQueues: ['orphan'] })
    await w.start()
    expect(await rowOf(b, 'orphan')).toMatchObject({ live_workers: 1, no_workers: false })
    await waitFor(async () => (await b!.queue.stats()).totals.completed === 1, { what: 'the job ran' })
    expect(await rowOf(b, 'orphan')).toMatchObject({ live_workers: 1, no_workers: false })

    // The worker stops (its registry entry removed) with work left: flagged again.
    await w.close()
    await b.queue.add('echo', { n: 2 }, { queue: 'orphan' })
    expect(await rowOf(b, 'orphan')).toMatchObject({ live_workers: 0, no_workers: true })
    // The CLI says it too.
    const env = { ...targetEnv(testTarget()), KEY_PREFIX: b.prefix, REDIS_DURABILITY: 'off' }
    const out = await runCli(env, ['queues'])
    expect(out).toMatch(/^orphan .*workers 0 {2}NO WORKERS$/m)
    expect(out).toMatch(/^elsewhere .*workers 1$/m)
  })
})

describe('GET /stats/failures', () => {
  it('groups the dead letters of the window by queue, type and class, with the newest message and failure rates', async () => {
    const clock = new FakeClock(Date.now())
    b = await apiSetup({}, { clock })
    // The worker on the same clock: on Redis's own, its completions went into the minute it
    // finished them, past the API's frozen one whenever the test crossed a minute (CI saw 0).
    const w = b.worker({ workerQueues: ['default', 'mail'] }, { clock })
    await w.start()
    const ids = [
      ...(await b.queue.addBulk(
        Array.from({ length: 3 }, (_, i) => ({
          task_type: 'fail',
          payload: { message: `upstream said no ${i}` },
          max_retries: 0,
        })),
      )),
      ...(await b.queue.addBulk([
        { task_type: 'fail', payload: { message: 'bounce', permanent: true }, queue: 'mail' },
        { task_type: 'echo', payload: {}, queue: 'mail' },
        { task_type: 'echo', payload: {}, queue: 'mail' },
        { task_type: 'echo', payload: {}, queue: 'mail' },
      ])),
    ]
    await waitFor(
      async () => {
        const jobs = await Promise.all(ids.map((r) => b!.queue.store.getJob(r.job.queue, r.job.id)))
        return jobs.every((j) => j && (j.state === 'completed' || j.state === 'failed'))
      },
      { what: 'jobs finished' },
    )
    const get = async (qs: string) => {
      const res = await b!.app.inject({ method: 'GET', url: `/stats/failures${qs}`, headers: bearer('read') })
      expect(res.statusCode, qs).toBe(200)
      return res.json()
    }
    const f = await get('?minutes=5')
    expect(f.minutes).toBe(5)
    expect(f.total).toBe(4)
    expect(f.truncated).toBe(false)
    expect(f.groups).toHaveLength(2)
    const [top, next] = f.groups
    expect(top).toMatchObject({ queue: 'default', task_type: 'fail', count: 3 })
    expect(top.last_message).toMatch(/^upstream said no \d$/)
    expect(top.last_seen).toBeGreaterThan(Date.now() - 60_000)
    expect(next).toMatchObject({ queue: 'mail', task_type: 'fail', count: 1, last_message: 'bounce' })
    // The classes are the DLQ stats' own, so the console's link opens exactly these groups.
    const stats = (await b.app.inject({ method: 'GET', url: '/dlq/stats', headers: bearer('read') })).json()
    for (const g of f.groups) {
      const same = stats.groups.filter(
        (s: { queue: string; task_type: string; error_class: string }) =>
          s.queue === g.queue && s.task_type === g.task_type && s.error_class === g.error_class,
      )
      expect(same.reduce((n: number, s: { count: number }) => n + s.count, 0)).toBe(g.count)
    }
    // Rates from the minute buckets: 3 of 3 failed in default, 1 of 4 in mail.
    expect(f.completed).toBe(3)
    expect(f.failed).toBe(4)
    expect(f.failure_rate).toBeCloseTo(4 / 7)
    expect(f.queues).toEqual([
      { queue: 'default', completed: 0, failed: 3, failure_rate: 1 },
      { queue: 'mail', completed: 3, failed: 1, failure_rate: 0.25 },
    ])

    // Filters and the limit.
    expect((await get('?queue=mail')).groups).toEqual([next])
    expect((await get('?task_type=echo')).groups).toEqual([])
    expect((await get('?limit=1')).groups).toEqual([top])

    // Twenty minutes later the last 15 minutes hold none of them; the last hour still does.
    clock.advance(20 * 60_000)
    const later = await get('')
    expect(later.minutes).toBe(15)
    expect(later).toMatchObject({ total: 0, groups: [], completed: 0, failed: 0, failure_rate: null })
    expect((await get('?minutes=60')).total).toBe(4)
  })

  it('examines at most 4 pages per queue and says when it stopped short', async () => {
    b = await apiSetup()
    b.queue.store.dlqStatsPage = 2 // 4 pages: 8 dead letters
    const w = b.worker()
    await w.start()
    const res = await b.queue.addBulk(
      Array.from({ length: 10 }, () => ({ task_type: 'fail', payload: { permanent: true } })),
    )
    await waitFor(
      async () =>
        (await Promise.all(res.map((r) => b!.queue.store.getJob('default', r.job.id)))).every(
          (j) => j?.state === 'failed',
        ),
      { what: 'dead letters' },
    )
    const f = (await b.app.inject({ method: 'GET', url: '/stats/failures', headers: bearer('read') })).json()
    expect(f.truncated).toBe(true)
    expect(f.total).toBe(8)
  })

  it('refuses bad input with a 400 and needs the read role', async () => {
    b = await apiSetup({ apiTokens: TOKEN_SETTING })
    const anon = await b.app.inject({ method: 'GET', url: '/stats/failures' })
    expect(anon.statusCode).toBe(401)
    for (const qs of [
      '?minutes=0',
      '?minutes=1441',
      '?minutes=abc',
      '?limit=0',
      '?limit=51',
      '?queue=a%20b',
      '?task_type=%00',
      '?x=1',
    ]) {
      const res = await b.app.inject({ method: 'GET', url: `/stats/failures${qs}`, headers: bearer('read') })
      expect(res.statusCode, qs).toBe(400)
    }
    await expect(b.queue.recentFailures({ minutes: 0 })).rejects.toThrow(/minutes/)
  })
})

describe('GET /stats/history?task_type=', () => {
  it("charts one task type's completed and failed from the per-type snapshots, without latency", async () => {
    const clock = new FakeClock(Date.now())
    b = await apiSetup({}, { clock })
    const store = b.queue.store
    const w = b.worker()
    await w.start()
    const run = async (jobs: Array<{ task_type: string; payload: Record<string, unknown> }>) => {
      const res = await b!.queue.addBulk(jobs.map((j) => ({ ...j, max_retries: 0 })))
      await waitFor(
        async () =>
          (await Promise.all(res.map((r) => store.getJob('default', r.job.id)))).every(
            (j) => j?.state === 'completed' || j?.state === 'failed',
          ),
        { what: 'jobs finished' },
      )
    }
    const echo = (n: number) => Array.from({ length: n }, () => ({ task_type: 'echo', payload: {} }))
    const fail = (n: number) => Array.from({ length: n }, () => ({ task_type: 'fail', payload: {} }))
    await run([...echo(2), ...fail(1)]) // before the first snapshot: not charted by type
    expect(await store.snapshotHistograms('default')).toBe(true)
    const ts = await b.redis.hgetall(store.keys.typeSnapshot('default', Math.floor(clock.now() / 60_000)))
    expect(ts).toEqual({ 'completed|echo': '2', 'failed|fail': '1' })
    clock.advance(60_000)
    await run([...echo(3), ...fail(2)])
    clock.advance(60_000)
    expect(await store.snapshotHistograms('default')).toBe(true)

    const get = async (qs: string) => {
      const res = await b!.app.inject({ method: 'GET', url: `/stats/history${qs}` })
      expect(res.statusCode, qs).toBe(200)
      return res.json() as {
        task_type: string | null
        points: Array<{ completed: number; failed: number; run: unknown; wait: unknown }>
      }
    }
    const sum = (h: Awaited<ReturnType<typeof get>>, k: 'completed' | 'failed') =>
      h.points.reduce((n, p) => n + p[k], 0)
    const e = await get('?range=1h&task_type=echo')
    expect(e.task_type).toBe('echo')
    expect([sum(e, 'completed'), sum(e, 'failed')]).toEqual([3, 0])
    expect(e.points.every((p) => p.run === null && p.wait === null)).toBe(true)
    const f = await get('?range=1h&queue=default&task_type=fail')
    expect([sum(f, 'completed'), sum(f, 'failed')]).toEqual([0, 2])
    // Over 6 hours both snapshots fall in one 5-minute interval whose start has none yet: unknown.
    expect((await get('?range=6h&task_type=fail')).points).toHaveLength(72)
    expect(sum(await get('?range=24h&task_type=nothing'), 'completed')).toBe(0)
    // Without a type: every job of the buckets, as before.
    const all = await get('?range=1h')
    expect([sum(all, 'completed'), sum(all, 'failed')]).toEqual([5, 3])
    expect(all.task_type).toBeNull()
    for (const qs of ['?task_type=a%20b', '?task_type=', '?task_type=x&x=1']) {
      expect((await b.app.inject({ method: 'GET', url: `/stats/history${qs}` })).statusCode, qs).toBe(400)
    }
  })
})
