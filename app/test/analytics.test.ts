/**
 * GET /analytics/* (ADR 0030) over a real PostgreSQL history (a database of this run's own on
 * 127.0.0.1:5432, dropped after) holding a small known data set (history-seed.ts): every
 * number exact, bucket edges (half-open range, a job on an hour's edge), filters, the busiest
 * types with the rest as (other), partition pruning (EXPLAIN), bad input 400 with nothing
 * queried, history disabled (409 HISTORY_DISABLED), tables missing (503).
 */
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Analytics, readPool } from '../src/history/analytics.ts'
import { Archiver } from '../src/history/archiver.ts'
import { createPool, History, migrate, type Pool } from '../src/history/db.ts'
import { ArchiveStore } from '../src/redis/archive.ts'
import { type ApiBundle, apiSetup, bearer, TOKEN_SETTING } from './api-helpers.ts'
import { FakeClock, waitFor } from './helpers.ts'
import { HOUR, MIN, seedHistory, T0 } from './history-seed.ts'
import { createTestDatabase, type TestDatabase } from './postgres.ts'

const DAY = 24 * HOUR
let db: TestDatabase
let pool: Pool
let schema: string
let b: ApiBundle
const clock = new FakeClock(T0 + 48 * HOUR)

beforeAll(async () => {
  db = await createTestDatabase()
  schema = `a_${randomBytes(4).toString('hex')}`
  await migrate(db.url, schema)
  pool = createPool(db.url)
  await seedHistory(new History(pool, schema))
  b = await apiSetup({ databaseUrl: db.url, historySchema: schema, apiTokens: TOKEN_SETTING }, { clock })
}, 60_000)
afterAll(async () => {
  await b?.cleanup()
  await pool?.end()
  await db?.drop()
})

const range = `from=${T0}&to=${T0 + 48 * HOUR}`
async function get(path: string, role: 'read' | null = 'read') {
  const res = await b.app.inject({ method: 'GET', url: path, headers: role ? bearer(role) : {} })
  return { status: res.statusCode, body: res.json() }
}

describe('analytics', () => {
  it('throughput per hour: by type and state, the hour edge in the later bucket, [from, to)', async () => {
    const r = await get(`/analytics/throughput?${range}&bucket=hour`)
    expect(r.status).toBe(200)
    expect(r.body).toMatchObject({ from: T0, to: T0 + 48 * HOUR, bucket: 'hour', bucket_ms: HOUR })
    expect(r.body.items).toEqual([
      { at: T0, task_type: 'email', completed: 2, failed: 1, cancelled: 0 },
      { at: T0 + HOUR, task_type: 'email', completed: 1, failed: 0, cancelled: 0 },
      { at: T0 + HOUR, task_type: 'report', completed: 1, failed: 0, cancelled: 0 },
      { at: T0 + 25 * HOUR, task_type: 'report', completed: 0, failed: 1, cancelled: 0 },
      { at: T0 + 26 * HOUR, task_type: 'report', completed: 0, failed: 0, cancelled: 1 },
    ])
  })

  it('throughput per day, and the filters (queue, task_type)', async () => {
    const day = await get(`/analytics/throughput?${range}&bucket=day`)
    expect(day.body.items).toEqual([
      { at: T0, task_type: 'email', completed: 3, failed: 1, cancelled: 0 },
      { at: T0, task_type: 'report', completed: 1, failed: 0, cancelled: 0 },
      { at: T0 + DAY, task_type: 'report', completed: 0, failed: 1, cancelled: 1 },
    ])
    const billing = await get(`/analytics/throughput?${range}&bucket=day&queue=billing`)
    expect(billing.body.items.map((i: { task_type: string }) => i.task_type)).toEqual(['report', 'report'])
    const email = await get(`/analytics/throughput?${range}&bucket=day&task_type=email`)
    expect(email.body.items).toEqual([{ at: T0, task_type: 'email', completed: 3, failed: 1, cancelled: 0 }])
    // A range that starts and ends inside buckets: only what ended inside it.
    const part = await get(`/analytics/throughput?from=${T0 + 15 * MIN}&to=${T0 + HOUR}&bucket=hour`)
    expect(part.body.items).toEqual([{ at: T0, task_type: 'email', completed: 1, failed: 1, cancelled: 0 }])
  })

  it('the default range is the last 7 days up to now (the clock), to exclusive', async () => {
    const r = await get('/analytics/throughput?bucket=day')
    expect(r.body).toMatchObject({ from: T0 + 48 * HOUR - 7 * DAY, to: T0 + 48 * HOUR, bucket: 'day' })
    // x1 (T0 - 1 ms) is inside, x2 (T0 + 48 h = now) is not.
    expect(r.body.items[0]).toEqual({
      at: T0 - DAY,
      task_type: 'email',
      completed: 1,
      failed: 0,
      cancelled: 0,
    })
    const total = r.body.items.reduce((n: number, i: { completed: number }) => n + i.completed, 0)
    expect(total).toBe(5)
  })

  it('failure rate per bucket and type: failed / (completed + failed), cancelled left out', async () => {
    const r = await get(`/analytics/failure-rate?${range}&bucket=day`)
    expect(r.status).toBe(200)
    expect(r.body.items).toEqual([
      { at: T0, task_type: 'email', completed: 3, failed: 1, rate: 0.25 },
      { at: T0, task_type: 'report', completed: 1, failed: 0, rate: 0 },
      { at: T0 + DAY, task_type: 'report', completed: 0, failed: 1, rate: 1 },
    ])
  })

  it('latency percentiles (percentile_cont) per bucket, all types and per type', async () => {
    const all = await get(`/analytics/latency?${range}&bucket=hour`)
    expect(all.body.items[0]).toEqual({
      at: T0,
      task_type: null,
      count: 3,
      wait_ms: { p50: 200, p95: 290, p99: 298 },
      run_ms: { p50: 2000, p95: 2900, p99: 2980 },
    })
    // The cancelled job that never ran has no bucket of its own.
    expect(all.body.items.map((i: { at: number }) => i.at)).toEqual([T0, T0 + HOUR, T0 + 25 * HOUR])
    const per = await get(`/analytics/latency?${range}&bucket=day&by=task_type`)
    expect(per.body.items).toEqual([
      {
        at: T0,
        task_type: 'email',
        count: 4,
        wait_ms: { p50: 250, p95: 385, p99: 397 },
        run_ms: { p50: 2500, p95: 3850, p99: 3970 },
      },
      {
        at: T0,
        task_type: 'report',
        count: 1,
        wait_ms: { p50: 1000, p95: 1000, p99: 1000 },
        run_ms: { p50: 10000, p95: 10000, p99: 10000 },
      },
      {
        at: T0 + DAY,
        task_type: 'report',
        count: 1,
        wait_ms: { p50: 50, p95: 50, p99: 50 },
        run_ms: { p50: 500, p95: 500, p99: 500 },
      },
    ])
  })

  it('top error classes: failed attempts, jobs, first/last seen, the latest message, types', async () => {
    const r = await get(`/analytics/errors?${range}`)
    expect(r.body.items).toEqual([
      {
        error_class: 'ETIMEDOUT',
        count: 2,
        jobs: 1,
        first_seen: T0 + 5 * MIN,
        last_seen: T0 + 30 * MIN,
        example: 'timeout 1',
        task_types: ['email'],
      },
      {
        error_class: 'TypeError',
        count: 1,
        jobs: 1,
        first_seen: T0 + 25 * HOUR,
        last_seen: T0 + 25 * HOUR,
        example: 'x is undefined',
        task_types: ['report'],
      },
    ])
    const one = await get(`/analytics/errors?${range}&limit=1`)
    expect(one.body.items.map((i: { error_class: string }) => i.error_class)).toEqual(['ETIMEDOUT'])
    // The first ETIMEDOUT (T0 + 5 min) is outside this range: first_seen moves.
    const later = await get(`/analytics/errors?from=${T0 + 10 * MIN}&to=${T0 + HOUR}`)
    expect(later.body.items).toEqual([expect.objectContaining({ count: 1, first_seen: T0 + 30 * MIN })])
  })

  it('slowest task types by p95 run time', async () => {
    const r = await get(`/analytics/slowest?${range}`)
    expect(r.body.items).toEqual([
      { task_type: 'report', count: 2, run_ms: { p50: 5250, p95: 9525, p99: 9905, avg: 5250, max: 10000 } },
      { task_type: 'email', count: 4, run_ms: { p50: 2500, p95: 3850, p99: 3970, avg: 2500, max: 4000 } },
    ])
  })

  it('per worker: attempts by outcome, rates per hour of the range', async () => {
    const r = await get(`/analytics/workers?${range}`)
    expect(r.body.items).toEqual([
      expect.objectContaining({
        worker: 'w1',
        completed: 3,
        failed: 2,
        cancelled: 0,
        per_hour: 0.1,
        failed_per_hour: 0.04,
      }),
      expect.objectContaining({
        worker: 'w2',
        completed: 1,
        failed: 1,
        cancelled: 0,
        per_hour: 0.04,
        failed_per_hour: 0.02,
      }),
    ])
    expect(r.body.items[0]).toMatchObject({ first_seen: T0 + 5 * MIN, last_seen: T0 + 25 * HOUR })
  })

  it('a series shows the busiest types by name and sums the rest as (other)', async () => {
    const t1 = T0 + 3 * DAY
    const h = new History(pool, schema)
    const jobs = Array.from({ length: 12 }, (_, i) =>
      Array.from({ length: 12 - i }, (_, k) => ({ type: `t${String(i).padStart(2, '0')}`, k })),
    ).flat()
    await h.write(
      jobs.map(({ type, k }) => ({
        queue: 'many',
        job_id: `${type}-${k}`,
        task_type: type,
        state: 'completed',
        priority: 'normal',
        payload: null,
        result: null,
        error_class: null,
        error: null,
        attempts: 1,
        max_retries: 0,
        worker: 'w9',
        partition_key: null,
        created_at: t1,
        queued_at: t1,
        started_at: t1 + 1,
        finished_at: t1 + 2,
        flow_id: null,
        schedule: null,
        trace: null,
        idempotency_key: null,
        job: {} as never,
      })),
      [],
    )
    const r = await get(`/analytics/throughput?from=${t1}&to=${t1 + DAY}&bucket=day`)
    const types = r.body.items.map((i: { task_type: string; completed: number }) => [
      i.task_type,
      i.completed,
    ])
    // t00..t09 (12..3 jobs) by name; t10 (2) and t11 (1) as (other).
    expect(types).toHaveLength(11)
    expect(types).toContainEqual(['t09', 3])
    expect(types).toContainEqual(['(other)', 3])
  })

  it('queries read only the day partitions of the range (EXPLAIN)', async () => {
    // Each query's plan, from its own SQL and parameters (the query answers no rows).
    let last = ''
    const explain = new Analytics(
      {
        query: async (sql: string, params: unknown[]) => {
          const r = await pool.query(`EXPLAIN ${sql}`, params)
          last = (r.rows as Array<Record<string, string>>).map((x) => x['QUERY PLAN']).join('\n')
          return { rows: [] }
        },
      } as never,
      schema,
    )
    const plan = async (run: Promise<unknown>) => {
      await run
      return last
    }
    const r = { from: T0 + DAY, to: T0 + 2 * DAY }
    const plans: Record<string, string> = {
      throughput: await plan(explain.throughput(r, 'hour')),
      latency: await plan(explain.latency(r, 'hour', true)),
      slowest: await plan(explain.slowest(r, 10)),
      errors: await plan(explain.errors(r, 10)),
      workers: await plan(explain.workers(r, 10)),
    }
    expect(plans.throughput).toContain('jobs_20261121')
    expect(plans.workers).toContain('attempts_20261121')
    for (const [query, p] of Object.entries(plans)) {
      expect(p, query).toMatch(/(jobs|attempts)_20261121/)
      expect(p, query).not.toMatch(/(jobs|attempts)_202611(19|20|22)/)
    }
  })

  it("the API's read pool: plain index scans off (bitmap scans on), a statement timeout", async () => {
    const p = readPool(db.url, 1234, 1)
    try {
      const show = async (k: string) => (await p.query(`SHOW ${k}`)).rows[0][k]
      expect(await show('enable_indexscan')).toBe('off')
      expect(await show('enable_bitmapscan')).toBe('on')
      expect(await show('statement_timeout')).toBe('1234ms')
      await expect(p.query('SELECT pg_sleep(2)')).rejects.toMatchObject({ code: '57014' })
    } finally {
      await p.end()
    }
  })

  it('bad input: 400 with a clear message', async () => {
    const bad: Array<[string, RegExp]> = [
      [`/analytics/throughput?from=${T0}&to=${T0}`, /from .* must be before to/],
      [`/analytics/throughput?from=${T0 + 1}&to=${T0}`, /must be before/],
      [`/analytics/throughput?from=${T0 - 91 * DAY}&to=${T0}&bucket=day`, /longer than 90 days/],
      [`/analytics/throughput?from=${T0 - 89 * DAY}&to=${T0}&bucket=hour`, /2136 hour buckets .* bucket=day/],
      ['/analytics/throughput?bucket=minute', /bucket/],
      ['/analytics/throughput?from=yesterday', /from/],
      ['/analytics/throughput?from=-5', /from/],
      ['/analytics/latency?by=queue', /by/],
      ['/analytics/errors?limit=0', /limit/],
      ['/analytics/errors?limit=101', /limit/],
      ['/analytics/slowest?bucket=hour', /bucket/],
      ['/analytics/workers?task_type=a%20b', /task_type/],
      ['/analytics/workers?queue=..', /queue/],
    ]
    for (const [url, message] of bad) {
      const r = await get(url)
      expect([url, r.status, r.body.code]).toEqual([url, 400, 'VALIDATION'])
      expect(r.body.message).toMatch(message)
    }
    // 83 days per hour is 1992 buckets: allowed.
    expect((await get(`/analytics/throughput?from=${T0 - 83 * DAY}&to=${T0}&bucket=hour`)).status).toBe(200)
  })

  it('role read is needed; the routes are in the OpenAPI document', async () => {
    expect((await get(`/analytics/throughput?${range}`, null)).status).toBe(401)
    const spec = (await get('/openapi.json', null)).body
    for (const p of ['throughput', 'failure-rate', 'latency', 'errors', 'slowest', 'workers'])
      expect(spec.paths[`/analytics/${p}`].get.tags).toEqual(['analytics'])
    expect(spec.paths['/analytics/throughput'].get.parameters.map((x: { name: string }) => x.name)).toEqual(
      expect.arrayContaining(['from', 'to', 'bucket', 'queue', 'task_type']),
    )
  })

  it('tables not there yet (no archiver ran): 503 HISTORY_UNAVAILABLE saying so', async () => {
    const other = await apiSetup({
      databaseUrl: db.url,
      historySchema: 'nothing_here',
      apiTokens: TOKEN_SETTING,
    })
    try {
      const r = await other.app.inject({ method: 'GET', url: '/analytics/errors', headers: bearer('read') })
      expect(r.statusCode).toBe(503)
      expect(r.json()).toMatchObject({
        code: 'HISTORY_UNAVAILABLE',
        message: expect.stringMatching(/dtq archiver/),
      })
    } finally {
      await other.cleanup()
    }
  })

  it('end to end: jobs run by a worker, archived by the archiver, counted by the API', async () => {
    const s2 = `e_${randomBytes(4).toString('hex')}`
    await migrate(db.url, s2)
    const live = await apiSetup({ databaseUrl: db.url, historySchema: s2, apiTokens: TOKEN_SETTING })
    const p = createPool(db.url)
    try {
      const cfg = live.config
      const store = new ArchiveStore(live.redis, {
        prefix: cfg.keyPrefix,
        eventsMaxLen: cfg.eventsMaxLen,
        completedRetentionS: cfg.completedRetentionS,
        failedRetentionS: cfg.failedRetentionS,
      })
      const archiver = new Archiver({ store, history: new History(p, s2), pollMs: 20, scanMs: 0 })
      await live.queue.add('echo', {}) // creates the queue, so the scan switches archiving on
      await archiver.scan()
      for (let i = 0; i < 9; i++) await live.queue.add('echo', { i })
      await live.queue.add('fail', { times: 5, message: 'upstream down' }, { max_retries: 1 })
      const w = live.worker()
      await w.start()
      await waitFor(
        async () => {
          const t = (await live.queue.stats()).totals
          return t.completed + t.failed >= 11
        },
        { timeoutMs: 30_000, what: '11 finished jobs' },
      )
      await w.close()
      for (let i = 0; i < 100 && (await archiver.cycle()) > 0; i++);
      const ask = async (path: string) =>
        (await live.app.inject({ method: 'GET', url: path, headers: bearer('read') })).json()
      const t = await ask('/analytics/throughput?bucket=day')
      const sum = (type: string, k: 'completed' | 'failed') =>
        t.items
          .filter((i: { task_type: string }) => i.task_type === type)
          .reduce((n: number, i: Record<string, number>) => n + i[k]!, 0)
      expect([sum('echo', 'completed'), sum('fail', 'failed')]).toEqual([10, 1])
      const e = await ask('/analytics/errors')
      expect(e.items).toEqual([
        expect.objectContaining({
          count: 2,
          jobs: 1,
          example: expect.stringMatching(/upstream down/),
          task_types: ['fail'],
        }),
      ])
      const ws = await ask('/analytics/workers')
      expect(ws.items).toEqual([expect.objectContaining({ completed: 10, failed: 2 })])
      await archiver.stop()
    } finally {
      await p.end()
      await live.cleanup()
    }
  })

  it('history disabled (no DATABASE_URL): 409 HISTORY_DISABLED on every route, the rest works', async () => {
    const off = await apiSetup({ databaseUrl: '', apiTokens: TOKEN_SETTING })
    try {
      for (const p of ['throughput', 'failure-rate', 'latency', 'errors', 'slowest', 'workers']) {
        const r = await off.app.inject({ method: 'GET', url: `/analytics/${p}`, headers: bearer('read') })
        expect([p, r.statusCode]).toEqual([p, 409])
        expect(r.json()).toMatchObject({
          code: 'HISTORY_DISABLED',
          message: expect.stringMatching(/DATABASE_URL/),
        })
      }
      // The schema runs first: bad input is still 400.
      const badReq = await off.app.inject({
        method: 'GET',
        url: '/analytics/errors?limit=0',
        headers: bearer('read'),
      })
      expect(badReq.statusCode).toBe(400)
      const stats = await off.app.inject({ method: 'GET', url: '/stats', headers: bearer('read') })
      expect(stats.statusCode).toBe(200)
    } finally {
      await off.cleanup()
    }
  })
})
