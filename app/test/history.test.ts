/**
 * The 24-hour charts (GET /stats/history, ADR 0026): throughput per interval from the per-minute
 * buckets (now kept 25 hours) and run/wait percentiles per interval from the maintenance leader's
 * once-a-minute histogram snapshots. Real Redis and workers; the store's clock is a fake one
 * (the snapshot minutes and the read's window), the workers run on real time.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { historyPoints, quantile } from '../src/redis/history.ts'
import { HISTOGRAM_BUCKETS_MS } from '../src/redis/keys.ts'
import { type ApiBundle, apiSetup, bearer } from './api-helpers.ts'
import { FakeClock, waitFor } from './helpers.ts'

let b: ApiBundle | undefined
afterEach(async () => {
  await b?.cleanup()
  b = undefined
})

const N = HISTOGRAM_BUCKETS_MS.length + 1

describe('percentiles from histogram buckets', () => {
  it('interpolates within the bucket and answers the last bound for +Inf', () => {
    const counts = new Array<number>(N).fill(0)
    counts[HISTOGRAM_BUCKETS_MS.indexOf(100)] = 100 // 100 observations in (50, 100]
    expect(quantile(counts, 0.5)).toBe(75)
    expect(quantile(counts, 0.99)).toBeCloseTo(99.5)
    const inf = new Array<number>(N).fill(0)
    inf[N - 1] = 3
    expect(quantile(inf, 0.5)).toBe(300000)
    expect(quantile(new Array<number>(N).fill(0), 0.5)).toBe(0)
  })

  it('differences two snapshots per interval and leaves intervals before the first one null', () => {
    const snap = (run: number, wait: number) => {
      const r = new Array<number>(N).fill(0)
      const w = new Array<number>(N).fill(0)
      r[3] = run // (25, 50]
      w[0] = wait // [0, 5]
      return [...r, 0, ...w, 0].join(' ')
    }
    const pts = historyPoints(100, 1, [
      [
        [1, 0, 2, 1, 3, 0],
        ['', snap(10, 10), snap(10, 10), snap(30, 12)],
      ],
    ])
    expect(pts.map((p) => [p.at, p.completed, p.failed])).toEqual([
      [6_000_000, 1, 0],
      [6_060_000, 2, 1],
      [6_120_000, 3, 0],
    ])
    expect(pts[0]!.run).toBeNull()
    expect(pts[1]!.run).toEqual({ count: 0, p50: 0, p95: 0, p99: 0 })
    expect(pts[2]!.run?.count).toBe(20)
    expect(pts[2]!.run?.p50).toBeGreaterThan(25)
    expect(pts[2]!.wait?.count).toBe(2)
  })
})

describe('GET /stats/history', () => {
  it('charts completed/failed and wait/run percentiles over 1h/6h/24h, per queue or all', async () => {
    const clock = new FakeClock(Date.now())
    b = await apiSetup({}, { clock })
    const store = b.queue.store
    const w = b.worker()
    await w.start()
    const run = async (n: number, ms: number, type = 'sleep') => {
      const res = await b!.queue.addBulk(
        Array.from({ length: n }, () => ({ task_type: type, payload: { ms }, max_retries: 0 })),
      )
      await waitFor(
        async () => {
          const jobs = await Promise.all(res.map((r) => store.getJob('default', r.job.id)))
          return jobs.every((j) => !j || j.state === 'completed' || j.state === 'failed')
        },
        { what: 'jobs finished' },
      )
    }
    await run(10, 30)
    expect(await store.snapshotHistograms('default')).toBe(true)
    expect(await store.snapshotHistograms('default')).toBe(false) // once a minute at most
    clock.advance(60_000)
    expect(await store.snapshotHistograms('default')).toBe(false) // unchanged: nothing written
    await run(10, 120)
    await run(2, 0, 'fail')
    clock.advance(60_000)
    expect(await store.snapshotHistograms('default')).toBe(true)

    const res = await b.app.inject({ method: 'GET', url: '/stats/history?range=1h&queue=default' })
    expect(res.statusCode).toBe(200)
    const h = res.json()
    expect(h.step_ms).toBe(60_000)
    expect(h.points).toHaveLength(60)
    const sum = (k: 'completed' | 'failed') =>
      h.points.reduce((n: number, p: Record<string, number>) => n + (p[k] ?? 0), 0)
    expect(sum('completed')).toBe(20)
    expect(sum('failed')).toBe(2)
    // The minute before the newest snapshot holds the second batch's runs (120 ms: the (100, 250]
    // bucket); the current minute's latency is known once its end is snapshotted.
    expect(h.points[59].run.count).toBe(0)
    const last = h.points[58]
    expect(last.run.count).toBe(12)
    expect(last.run.p50).toBeGreaterThan(100)
    expect(last.run.p50).toBeLessThanOrEqual(250)
    expect(last.wait.count).toBe(12)
    // Before the first snapshot: no latency.
    expect(h.points[0].run).toBeNull()

    for (const [range, points, step] of [
      ['6h', 72, 300_000],
      ['24h', 96, 900_000],
    ] as const) {
      const all = (await b.app.inject({ method: 'GET', url: `/stats/history?range=${range}` })).json()
      expect(all.points).toHaveLength(points)
      expect(all.step_ms).toBe(step)
      expect(all.points.reduce((n: number, p: { completed: number }) => n + p.completed, 0)).toBe(20)
    }
    // The per-minute buckets now outlive the 24-hour window (25 h), written by the same one call.
    const [tpKey] = (await b.keys()).filter((k) => k.includes(':tp:'))
    expect(await b.redis.ttl(tpKey!)).toBeGreaterThan(24 * 3600)
  })

  it('refuses a bad range or queue with a 400', async () => {
    b = await apiSetup()
    for (const url of ['/stats/history?range=2h', '/stats/history?queue=a%20b', '/stats/history?x=1']) {
      expect((await b.app.inject({ method: 'GET', url, headers: bearer('read') })).statusCode, url).toBe(400)
    }
  })

  it('the maintenance leader takes the snapshots', async () => {
    b = await apiSetup()
    const w = b.worker({}, { historySnapshotMs: 100 })
    await w.start()
    await b.queue.add('echo', {}, {})
    await waitFor(async () => (await b!.redis.zcard(b!.queue.store.keys.histogramSnapshots('default'))) > 0, {
      what: 'a histogram snapshot',
    })
  })

  it('a 24-hour read of a busy queue is one cheap call (prints its cost)', async () => {
    const clock = new FakeClock(Date.now())
    b = await apiSetup({}, { clock })
    const store = b.queue.store
    const q = 'busy'
    await b.redis.sadd(store.keys.queues(), q)
    const now = Math.floor(clock.now() / 60_000)
    const p = b.redis.pipeline()
    const snap = (k: number) => Array.from({ length: 32 }, (_, i) => k * (i + 1)).join(' ')
    for (let m = now - 1500; m <= now; m++) {
      p.hset(store.keys.throughput(q, m), 'completed', 100, 'failed', 1)
      p.set(store.keys.histogramSnapshot(q, m), snap(m - now + 1500))
      p.zadd(store.keys.histogramSnapshots(q), m, String(m))
    }
    await p.exec()
    const times: number[] = []
    for (let i = 0; i < 10; i++) {
      const t0 = performance.now()
      const h = await b.queue.statsHistory('24h', q)
      times.push(performance.now() - t0)
      expect(h.points.reduce((n, x) => n + x.completed, 0)).toBe(1440 * 100)
    }
    times.sort((x, y) => x - y)
    console.log(
      `GET /stats/history?range=24h, one queue with every minute filled: median ${times[5]!.toFixed(1)} ms, max ${times[9]!.toFixed(1)} ms (incl. round trip)`,
    )
    expect(times[5]).toBeLessThan(100)
  })
})
