/**
 * The archiver (ADR 0027): every finished job reaches PostgreSQL once in effect, with its
 * attempts; several archivers share the work; a dead one's entries are claimed; retention and the
 * events stream's trimming cannot lose a job before it is archived (negative control: the hold
 * off); a job retried from the DLQ after it was archived ends as one row; a PostgreSQL outage
 * (a private server stopped and started) loses nothing. Real Redis, real PostgreSQL: a database
 * of this run's own on 127.0.0.1:5432, dropped after.
 */
import { randomBytes } from 'node:crypto'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { Archiver } from '../src/history/archiver.ts'
import { createPool, History, migrate, type Pool } from '../src/history/db.ts'
import { historyRows, type JobRow } from '../src/history/rows.ts'
import { archiveBacklogs } from '../src/http/archive-metrics.ts'
import { F } from '../src/queue/job.ts'
import { ArchiveStore } from '../src/redis/archive.ts'
import { setLibraryOptions } from '../src/redis/scripts.ts'
import { apiSetup, bearer, TOKEN_SETTING } from './api-helpers.ts'
import { type Bundle, setup, spreadQueues, targetEnv, testTarget, waitFor } from './helpers.ts'
import { createTestDatabase, hasPrivatePostgres, PrivatePostgres, type TestDatabase } from './postgres.ts'
import { runCli } from './processes.ts'

let db: TestDatabase
beforeAll(async () => {
  db = await createTestDatabase()
})
afterAll(async () => {
  await db?.drop()
})

let b: Bundle | undefined
const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
  await b?.cleanup()
  b = undefined
})

interface Kit {
  store: ArchiveStore
  history: History
  pool: Pool
  schema: string
  archiver(opts?: Partial<ConstructorParameters<typeof Archiver>[0]>): Archiver
}

/** A fresh schema, migrated, and archivers over the bundle's Redis. */
async function kit(bundle: Bundle, url = db.url): Promise<Kit> {
  const schema = `h_${randomBytes(4).toString('hex')}`
  await migrate(url, schema)
  const pool = createPool(url)
  const history = new History(pool, schema)
  const cfg = bundle.config
  const store = new ArchiveStore(bundle.redis, {
    prefix: cfg.keyPrefix,
    eventsMaxLen: cfg.eventsMaxLen,
    completedRetentionS: cfg.completedRetentionS,
    failedRetentionS: cfg.failedRetentionS,
  })
  const made: Archiver[] = []
  cleanups.push(async () => {
    await Promise.all(made.map((a) => a.stop()))
    await pool.end()
  })
  return {
    store,
    history,
    pool,
    schema,
    archiver(opts = {}) {
      const a = new Archiver({ store, history, pollMs: 20, scanMs: 0, ...opts })
      made.push(a)
      return a
    },
  }
}

/** Runs cycles until there is nothing left to archive. */
async function drain(a: Archiver): Promise<void> {
  for (let i = 0; i < 1000; i++) if ((await a.cycle()) === 0) return
  throw new Error('archiver did not drain')
}

async function rows(k: Kit, sql: string, params: unknown[] = []) {
  return (await k.pool.query(sql.replaceAll('$S', `"${k.schema}"`), params)).rows
}

/** job_id -> number of rows, over the whole jobs table. */
async function rowCounts(k: Kit): Promise<Map<string, number>> {
  const r = await rows(k, 'SELECT job_id, count(*)::int AS n FROM $S.jobs GROUP BY job_id')
  return new Map(r.map((x) => [x.job_id as string, x.n as number]))
}

const finished = (b: Bundle, n: number) =>
  waitFor(
    async () => {
      const t = (await b.queue.stats()).totals
      return t.completed + t.failed + t.cancelled >= n
    },
    { timeoutMs: 30_000, what: `${n} finished jobs` },
  )

describe('archiving', () => {
  it('writes every finished job once, with its attempts; a replay changes nothing', async () => {
    b = await setup({ config: { completedRetentionS: 3600 } })
    const k = await kit(b)
    const a = k.archiver()
    // Before archiving is on, finishing writes nothing for it.
    await b.queue.add('echo', { n: -1 })
    const w0 = b.worker()
    await w0.start()
    await finished(b, 1)
    await w0.close()
    expect((await b.keys()).filter((x) => x.includes(':archive'))).toEqual([])
    await a.scan() // on; the job finished before is taken from the completed index
    const ids: string[] = []
    for (let i = 0; i < 60; i++)
      ids.push((await b.queue.add('echo', { n: i, tag: i % 2 ? 'odd' : 'even' })).job.id)
    const retried = (await b.queue.add('fail', { times: 1 }, { max_retries: 2 })).job.id
    const dead = (
      await b.queue.add('fail', { times: 5, message: 'upstream zebra timeout' }, { max_retries: 1 })
    ).job.id
    const cancelled = (await b.queue.add('echo', {}, { delay_ms: 60_000 })).job.id
    await b.queue.cancel(cancelled)
    const w = b.worker()
    await w.start()
    await finished(b, 64)
    await w.close()
    await drain(a)
    const counts = await rowCounts(k)
    expect(counts.size).toBe(64)
    expect([...counts.values()].every((n) => n === 1)).toBe(true)
    const byId = new Map(
      (await rows(k, 'SELECT job_id, state, attempts, payload, worker FROM $S.jobs')).map((r) => [
        r.job_id,
        r,
      ]),
    )
    expect(byId.get(ids[7]!)).toMatchObject({
      state: 'completed',
      attempts: 1,
      payload: { n: 7, tag: 'odd' },
    })
    expect(byId.get(retried)).toMatchObject({ state: 'completed', attempts: 2 })
    expect(byId.get(dead)).toMatchObject({ state: 'failed', attempts: 2 })
    expect(byId.get(cancelled)).toMatchObject({ state: 'cancelled', attempts: 0 })
    const att = await rows(
      k,
      'SELECT job_id, attempt, outcome, worker FROM $S.attempts ORDER BY job_id, attempt',
    )
    expect(att.filter((r) => r.job_id === retried).map((r) => r.outcome)).toEqual(['failed', 'completed'])
    expect(att.filter((r) => r.job_id === dead).map((r) => r.outcome)).toEqual(['failed', 'failed'])
    expect(att.filter((r) => r.job_id === cancelled)).toEqual([])
    expect(att.every((r) => typeof r.worker === 'string' && r.worker.length > 0)).toBe(true)
    expect(att.length).toBe(61 + 2 + 2)
    // The indexes answer the planned queries: JSON containment and free text.
    const odd = await rows(k, `SELECT count(*)::int AS n FROM $S.jobs WHERE payload @> '{"tag":"odd"}'`)
    expect(odd[0].n).toBe(30)
    const text = await rows(
      k,
      `SELECT job_id FROM $S.jobs WHERE search @@ plainto_tsquery('simple', 'zebra')`,
    )
    expect(text.map((r) => r.job_id)).toEqual([dead])
    const errs = await rows(
      k,
      `SELECT job_id FROM $S.attempts WHERE search @@ plainto_tsquery('simple', 'zebra')`,
    )
    expect(errs.map((r) => r.job_id)).toEqual([dead, dead])
    // Every entry acknowledged and deleted; every hold released.
    expect((await k.store.status('default')).backlog).toBe(0)
    expect(await b.redis.hget(b.queue.store.keys.job('default', dead), F.archive)).toBeNull()
    expect(await b.redis.ttl(b.queue.store.keys.job('default', dead))).toBeGreaterThan(0)
    // A replay of everything (a crash between the commit and the acknowledgement) changes nothing.
    const hashes = await k.store.jobs('default', [...counts.keys()])
    const again = [...counts.keys()].map((id, i) => historyRows('default', id, hashes[i]!)!)
    await k.history.write(
      again.map((r) => r.job),
      again.flatMap((r) => r.attempts),
    )
    expect(await rowCounts(k)).toEqual(counts)
    expect((await rows(k, 'SELECT count(*)::int AS n FROM $S.attempts'))[0].n).toBe(att.length)
  }, 60_000)

  it('shares the work between archivers, and takes over a dead one’s entries', async () => {
    b = await setup()
    const k = await kit(b)
    const one = k.archiver({ batch: 40 })
    const two = k.archiver({ batch: 40, claimIdleMs: 1000 })
    await b.queue.add('echo', {})
    await one.scan()
    await two.scan()
    for (let i = 0; i < 299; i++) await b.queue.add('echo', { i })
    const w = b.worker()
    await w.start()
    await finished(b, 300)
    await w.close()
    // A third archiver reads some entries and dies before writing them.
    const dead = await k.store.read('default', 'dead-archiver', 15, '>')
    expect(dead.length).toBeGreaterThan(0)
    one.start()
    two.start()
    await waitFor(async () => (await k.store.status('default')).backlog === 0, { what: 'backlog drained' })
    const counts = await rowCounts(k)
    expect(counts.size).toBe(300)
    expect([...counts.values()].every((n) => n === 1)).toBe(true)
    expect(one.stats.entries).toBeGreaterThan(0)
    expect(two.stats.entries).toBeGreaterThan(0)
    // Shared, not doubled: each job written once, but for an entry taken over while its first
    // reader was slow (idle past the claim window on a loaded machine): a few at most.
    const written = one.stats.archived + two.stats.archived
    expect(written).toBeGreaterThanOrEqual(300)
    expect(written).toBeLessThanOrEqual(360)
    // The dead archiver's jobs were written (claimed after 1 s idle).
    for (const e of dead) for (const id of e.jobs) expect(counts.get(id)).toBe(1)
  }, 60_000)

  it('archives every queue, each in a slot of its own on a Cluster; GET /history/status shows the lag', async () => {
    const api = await apiSetup({ apiTokens: TOKEN_SETTING })
    b = api
    const k = await kit(b)
    const a = k.archiver()
    const queues = spreadQueues('arch')
    for (const queue of queues) await b.queue.add('echo', {}, { queue })
    await a.scan()
    const status = async () =>
      (await api.app.inject({ url: '/history/status', headers: bearer('read') })).json()
    for (const queue of queues) for (let i = 0; i < 20; i++) await b.queue.add('echo', { i }, { queue })
    const w = b.worker({ workerQueues: queues })
    await w.start()
    await finished(b, 63)
    await w.close()
    const before = await status()
    expect(before).toMatchObject({ enabled: true, backlog: expect.any(Number) })
    expect(before.backlog).toBeGreaterThan(0)
    expect(before.lag_ms).toBeGreaterThanOrEqual(0)
    // /metrics: the backlog per queue (ADR 0031), in every queue's own slot.
    const metrics = async () => (await api.app.inject({ url: '/metrics', headers: bearer('read') })).body
    const series = (body: string, name: string) =>
      new Map(
        [...body.matchAll(new RegExp(`^${name}\\{queue="([^"]+)"\\} (\\S+)$`, 'gm'))].map((m) => [
          m[1]!,
          Number(m[2]),
        ]),
      )
    let body = await metrics()
    const backlog = series(body, 'dtq_archive_backlog')
    expect([...backlog.keys()].sort()).toEqual([...queues].sort())
    expect([...backlog.values()].reduce((x, y) => x + y, 0)).toBe(before.backlog)
    expect([...series(body, 'dtq_archive_oldest_age_seconds').values()].every((v) => v > 0)).toBe(true)
    await drain(a)
    body = await metrics()
    expect([...series(body, 'dtq_archive_backlog').values()]).toEqual(queues.map(() => 0))
    expect([...series(body, 'dtq_archive_oldest_age_seconds').values()]).toEqual(queues.map(() => 0))
    const r = await rows(k, 'SELECT queue, count(*)::int AS n FROM $S.jobs GROUP BY queue ORDER BY queue')
    expect(r).toEqual([...queues].sort().map((queue) => ({ queue, n: 21 })))
    await a.cycle(Date.now() + 10_000) // its report is written
    const after = await status()
    expect(after).toMatchObject({ enabled: true, backlog: 0, lag_ms: 0 })
    expect(after.queues.map((q: { queue: string }) => q.queue).sort()).toEqual([...queues].sort())
    expect(after.archivers).toEqual([
      expect.objectContaining({ consumer: a.consumer, archived: 63, missing: 0 }),
    ])
  }, 30_000)

  it('a batch holds about ARCHIVER_BATCH jobs, however many jobs an entry holds', async () => {
    b = await setup({ config: { workerConcurrency: 40 } })
    const k = await kit(b)
    const a = k.archiver({ batch: 50 })
    await b.queue.add('echo', {})
    await a.scan()
    await b.queue.addBulk(Array.from({ length: 399 }, (_, i) => ({ task_type: 'echo', payload: { i } })))
    const w = b.worker()
    await w.start()
    await finished(b, 400)
    await w.close()
    const entries = await b.redis.xlen(k.store.keys.archive('default'))
    expect(entries).toBeLessThan(200) // several jobs per entry (a fetch call finishes many)
    const sizes: number[] = []
    for (let before = 0; ; ) {
      if ((await a.cycle()) === 0) break
      sizes.push(a.stats.archived - before)
      before = a.stats.archived
    }
    expect(sizes.reduce((x, y) => x + y, 0)).toBe(400)
    // One read of up to 10 entries past the batch at most.
    const biggest = Math.max(...sizes)
    expect(biggest).toBeGreaterThanOrEqual(50)
    expect(biggest).toBeLessThan(50 + 10 * 40)
    expect(sizes.length).toBeGreaterThanOrEqual(400 / biggest)
  }, 30_000)

  it('a job retried from the DLQ after it was archived ends as one row, with every attempt', async () => {
    b = await setup()
    const k = await kit(b)
    const a = k.archiver()
    await b.queue.add('echo', {})
    await a.scan()
    const id = (await b.queue.add('fail', { times: 1 }, { max_retries: 0 })).job.id
    const w = b.worker()
    await w.start()
    await waitFor(async () => (await b!.queue.getJob(id))?.state === 'failed')
    await drain(a)
    expect(await rows(k, 'SELECT state FROM $S.jobs WHERE job_id = $1', [id])).toEqual([{ state: 'failed' }])
    await b.queue.retry(id)
    await waitFor(async () => (await b!.queue.getJob(id))?.state === 'completed')
    await w.close()
    await drain(a)
    expect(await rows(k, 'SELECT state, attempts FROM $S.jobs WHERE job_id = $1', [id])).toEqual([
      { state: 'completed', attempts: 2 },
    ])
    const att = await rows(k, 'SELECT attempt, outcome FROM $S.attempts WHERE job_id = $1 ORDER BY attempt', [
      id,
    ])
    expect(att).toEqual([
      { attempt: 1, outcome: 'failed' },
      { attempt: 2, outcome: 'completed' },
    ])
  }, 30_000)
})

describe('the write', () => {
  it('keeps one row per job, its latest end, whatever the order and with writers racing', async () => {
    b = await setup()
    const k = await kit(b)
    const other = new History(createPool(db.url), k.schema)
    cleanups.push(() => other.pool.end())
    const day = 86_400_000
    const t0 = Date.now() - 3 * day
    const row = (id: string, fin: number, state: string): JobRow => ({
      ...historyRows('q', id, {
        [F.task_type]: 't',
        [F.state]: state,
        [F.created_at]: String(t0 - day),
        [F.finished_at]: String(fin),
        [F.payload]: '{"a":1}',
        [F.attempts]: '1',
      })!.job,
    })
    // A later end written first, then an older one (a slow archiver): the later one stays.
    await k.history.write([row('j0', t0 + day, 'completed')], [])
    await k.history.write([row('j0', t0, 'failed')], [])
    expect(await rows(k, `SELECT state FROM $S.jobs WHERE job_id = 'j0'`)).toEqual([{ state: 'completed' }])
    // Two archivers writing two ends of the same jobs at once, 20 rounds, ends a day apart (two
    // partitions): one row each, the later end.
    for (let r = 0; r < 20; r++) {
      const ids = Array.from({ length: 50 }, (_, i) => `r${r}-${i}`)
      const older = ids.map((id) => row(id, t0, 'failed'))
      const newer = ids.map((id) => row(id, t0 + day + r, 'completed'))
      await Promise.all(
        r % 2
          ? [k.history.write(older, []), other.write(newer, [])]
          : [other.write(newer, []), k.history.write(older, [])],
      )
      const got = await rows(
        k,
        `SELECT state, count(*)::int AS n FROM $S.jobs WHERE job_id LIKE $1 GROUP BY state`,
        [`r${r}-%`],
      )
      expect(got).toEqual([{ state: 'completed', n: 50 }])
    }
    expect((await rows(k, 'SELECT count(*)::int AS n FROM $S.job_latest'))[0].n).toBe(1 + 20 * 50)
  }, 60_000)

  it('retention drops whole day partitions older than HISTORY_RETENTION_DAYS, and their pointers', async () => {
    b = await setup()
    const k = await kit(b)
    const day = 86_400_000
    const now = Date.UTC(2026, 10, 30, 12)
    const job = (id: string, fin: number) =>
      historyRows('q', id, {
        [F.task_type]: 't',
        [F.state]: 'completed',
        [F.created_at]: String(fin - 1000),
        [F.started_at]: String(fin - 500),
        [F.finished_at]: String(fin),
        [F.attempts]: '1',
      })!
    const rs = [job('old', now - 40 * day), job('edge', now - 30 * day), job('new', now - day)]
    await k.history.write(
      rs.map((r) => r.job),
      rs.flatMap((r) => r.attempts),
    )
    const dropped = await k.history.dropOlderThan(30, now)
    expect(dropped).toEqual(['attempts_20261021', 'jobs_20261021'])
    expect(await rows(k, 'SELECT job_id FROM $S.jobs ORDER BY job_id')).toEqual([
      { job_id: 'edge' },
      { job_id: 'new' },
    ])
    expect(await rows(k, 'SELECT job_id FROM $S.attempts ORDER BY job_id')).toEqual([
      { job_id: 'edge' },
      { job_id: 'new' },
    ])
    expect(await rows(k, 'SELECT job_id FROM $S.job_latest ORDER BY job_id')).toEqual([
      { job_id: 'edge' },
      { job_id: 'new' },
    ])
    // A day written again after its partition was dropped gets it back.
    await k.history.write([job('old', now - 40 * day).job], [])
    expect((await rows(k, `SELECT count(*)::int AS n FROM $S.jobs WHERE job_id = 'old'`))[0].n).toBe(1)
  })

  it('locks only the partitions it writes, so a long retention does not exhaust the lock table', async () => {
    b = await setup()
    const k = await kit(b)
    const now = Date.now()
    await k.history.ensureDays(Array.from({ length: 120 }, (_, i) => now - i * 86_400_000))
    // A batch of 500 jobs over 120 daily partitions writes (no "out of shared memory").
    const rs = Array.from({ length: 500 }, (_, i) => ({
      ...historyRows('q', `p${i}`, {
        [F.task_type]: 't',
        [F.state]: 'completed',
        [F.created_at]: String(now - 1000),
        [F.finished_at]: String(now - (i % 3) * 1000),
        [F.attempts]: '1',
        [F.started_at]: String(now - 2000),
      })!,
    }))
    // Another session holds an uncommitted row with the key of p0's row: the write waits there,
    // in its last step, and its locks are counted meanwhile.
    const blocker = await k.pool.connect()
    await blocker.query('BEGIN')
    await blocker.query(
      `INSERT INTO "${k.schema}".jobs (queue, job_id, task_type, state, priority, attempts, max_retries,
         created_at, finished_at, job) VALUES ('q', 'p0', 't', 'completed', 'normal', 1, 0, now(), $1, '{}')`,
      [new Date(now)],
    )
    const writing = k.history.write(
      rs.map((r) => r.job),
      rs.flatMap((r) => r.attempts),
    )
    const locks = await waitFor(async () => {
      const w = await k.pool.query(
        `SELECT a.pid, (SELECT count(*)::int FROM pg_locks l WHERE l.pid = a.pid) AS n FROM pg_stat_activity a
         WHERE a.datname = current_database() AND a.wait_event_type = 'Lock' AND a.query LIKE '%INSERT INTO%jobs%'`,
      )
      return w.rows[0]?.n as number | undefined
    })
    await blocker.query('ROLLBACK')
    blocker.release()
    await writing
    // The partitions of the batch's days (2 tables, a few days, their indexes), not all 240.
    expect(locks).toBeLessThan(150)
    expect((await rows(k, 'SELECT count(*)::int AS n FROM $S.jobs'))[0].n).toBe(500)
  }, 60_000)
})

/** Finishes `n` echo jobs with archiving on and no archiver reading, retention 1 s, then prunes. */
async function finishUnarchived(n: number, k: Kit) {
  await b!.queue.add('echo', {})
  await k.archiver().scan()
  await b!.queue.addBulk(Array.from({ length: n - 1 }, (_, i) => ({ task_type: 'echo', payload: { i } })))
  const w = b!.worker()
  await w.start()
  await finished(b!, n)
  await w.close()
  await new Promise((r) => setTimeout(r, 1100)) // past COMPLETED_RETENTION_S
  await b!.queue.store.pruneCompleted('default')
}

describe('nothing is lost before it is archived', () => {
  it('retention waits for the archiver, then removes the job', async () => {
    b = await setup({ config: { completedRetentionS: 1, eventsMaxLen: 100 } })
    const k = await kit(b)
    await finishUnarchived(400, k)
    const jobKeys = async () => (await b!.keys()).filter((x) => x.includes(':job:')).length
    expect(await jobKeys()).toBe(400) // all held past their retention
    // The events stream was trimmed to ~100 events: most completions are gone from it, while the
    // archive stream holds every finished job.
    const events = (await b.redis.xrange(b.queue.store.keys.events('default'), '-', '+')) as Array<
      [string, string[]]
    >
    const completedEvents = events
      .filter(([, f]) => f[3] === 'completed')
      .flatMap(([, f]) => f[1]!.split(' '))
    expect(completedEvents.length).toBeLessThan(300)
    const a = k.archiver()
    await drain(a)
    expect((await rowCounts(k)).size).toBe(400)
    expect(a.stats.missing).toBe(0)
    await b.queue.store.pruneCompleted('default')
    expect(await jobKeys()).toBe(0) // archived: retention applies again
  }, 30_000)

  it('negative control: with the hold off (no-archive-hold), retention drops unarchived jobs', async () => {
    setLibraryOptions({ noArchiveHold: true })
    try {
      b = await setup({ config: { completedRetentionS: 1 } })
      const k = await kit(b)
      await finishUnarchived(120, k)
      const a = k.archiver()
      await drain(a)
      expect(a.stats.missing).toBeGreaterThan(0)
      expect((await rowCounts(k)).size).toBeLessThan(120)
    } finally {
      setLibraryOptions({})
    }
  }, 30_000)

  it('failed and cancelled jobs get their TTL only once archived', async () => {
    b = await setup()
    const k = await kit(b)
    const a = k.archiver()
    await b.queue.add('echo', {})
    await a.scan()
    const id = (await b.queue.add('fail', { times: 3 }, { max_retries: 0 })).job.id
    const c = (await b.queue.add('echo', {}, { delay_ms: 60_000 })).job.id
    await b.queue.cancel(c)
    const w = b.worker()
    await w.start()
    await waitFor(async () => (await b!.queue.getJob(id))?.state === 'failed')
    await w.close()
    const key = (x: string) => b!.queue.store.keys.job('default', x)
    expect(await b.redis.ttl(key(id))).toBe(-1)
    expect(await b.redis.ttl(key(c))).toBe(-1)
    await drain(a)
    expect(await b.redis.ttl(key(id))).toBeGreaterThan(0)
    expect(await b.redis.ttl(key(c))).toBeGreaterThan(0)
  }, 30_000)

  /**
   * An operator retries a failed and a cancelled job while the archiver writes their ends to
   * PostgreSQL (between its read and its ack), `rounds` times. Returns each retried job's TTL
   * after the ack, and its state.
   */
  async function retriedWhileArchived(rounds: number): Promise<Array<{ state?: string; ttl: number }>> {
    b = await setup()
    const k = await kit(b)
    const history = k.history
    const retryNow = new Set<string>()
    const writing = {
      write: async (...args: Parameters<History['write']>) => {
        await history.write(...args)
        // The retry lands after the rows are written and before the entries are acknowledged.
        for (const id of retryNow) await b!.queue.retry(id)
        retryNow.clear()
      },
      dropOlderThan: history.dropOlderThan.bind(history),
    } as unknown as History
    const a = new Archiver({ store: k.store, history: writing, pollMs: 20, scanMs: 0 })
    cleanups.push(() => a.stop())
    await b.queue.add('echo', {})
    await a.scan()
    await drain(a)
    const out: Array<{ state?: string; ttl: number }> = []
    for (let r = 0; r < rounds; r++) {
      const failed = (await b.queue.add('fail', { times: 1 }, { max_retries: 0 })).job.id
      const cancelled = (await b.queue.add('echo', {}, { delay_ms: 600_000 })).job.id
      await b.queue.cancel(cancelled)
      const w = b.worker()
      await w.start()
      await waitFor(async () => (await b!.queue.getJob(failed))?.state === 'failed')
      await w.close()
      retryNow.add(failed)
      retryNow.add(cancelled)
      await drain(a)
      for (const id of [failed, cancelled])
        out.push({
          state: (await b.queue.getJob(id))?.state,
          ttl: await b.redis.ttl(b.queue.store.keys.job('default', id)),
        })
    }
    return out
  }

  it('a job retried while the archiver writes its failed or cancelled end gets no expiry (4 rounds)', async () => {
    const seen = await retriedWhileArchived(4)
    expect(seen).toHaveLength(8)
    for (const j of seen) expect(j).toEqual({ state: 'queued', ttl: -1 })
  }, 60_000)

  it('negative control: released by the state the archiver read, a retried job expires while queued', async () => {
    setLibraryOptions({ archiveReleaseByReadState: true })
    try {
      const seen = await retriedWhileArchived(1)
      expect(seen.map((j) => j.state)).toEqual(['queued', 'queued'])
      expect(seen.every((j) => j.ttl > 0)).toBe(true)
    } finally {
      setLibraryOptions({})
    }
  }, 60_000)

  it('a queue whose switch went (forgotten by the janitor, then back) is switched on again', async () => {
    b = await setup()
    const k = await kit(b)
    const a = k.archiver()
    await b.queue.add('echo', {})
    const t = Date.now()
    await a.scan(t)
    expect(await k.store.enabled('default')).toBe(true)
    await b.redis.del(b.queue.store.keys.archiveOn('default'))
    await a.scan(t + 1000) // a known queue: not looked at again yet
    expect(await k.store.enabled('default')).toBe(false)
    await a.scan(t + 31_000) // the full rescan
    expect(await k.store.enabled('default')).toBe(true)
  })

  it('switching archiving off gives the held jobs their retention back', async () => {
    b = await setup({ config: { completedRetentionS: 1 } })
    const k = await kit(b)
    await finishUnarchived(30, k)
    await k.store.disable('default')
    expect(await k.store.enabled('default')).toBe(false)
    expect(await b.redis.exists(b.queue.store.keys.archive('default'))).toBe(0)
    await b.queue.store.pruneCompleted('default')
    expect((await b.keys()).filter((x) => x.includes(':job:'))).toEqual([])
  }, 30_000)
})

/** Adds n jobs, finishes them with a worker on `clock`, then stops it; returns their ids. */
async function finishWith(clock: { now(): number }, n: number): Promise<string[]> {
  const ids = (
    await b!.queue.addBulk(Array.from({ length: n }, (_, i) => ({ task_type: 'echo', payload: { i } })))
  ).map((r) => r.job.id)
  const w = b!.worker({}, { clock })
  await w.start()
  await waitFor(async () =>
    (await Promise.all(ids.map((id) => b!.queue.getJob(id)))).every((j) => j?.state === 'completed'),
  )
  await w.close()
  return ids
}

/** The archive entries of the queue not in `seen`. */
async function newEntries(seen: Set<string>): Promise<string[]> {
  const all = (await b!.redis.xrange(b!.queue.store.keys.archive('default'), '-', '+')) as Array<
    [string, string[]]
  >
  const out = all.map(([id]) => id).filter((id) => !seen.has(id))
  for (const id of out) seen.add(id)
  return out
}

describe('the watermark (ADR 0031)', () => {
  it('retention reaches exactly the jobs of acknowledged entries, and holds jobs ended on a lagging clock', async () => {
    let skew = 0
    b = await setup({ config: { completedRetentionS: 1 }, clock: { now: () => Date.now() + skew } })
    const k = await kit(b)
    await b.queue.add('echo', {})
    await k.archiver().scan()
    const real = { now: () => Date.now() }
    const seen = new Set<string>()
    const a = await finishWith(real, 30) // (with the first job)
    const entriesA = await newEntries(seen)
    const bIds = await finishWith(real, 30)
    const entriesB = await newEntries(seen)
    const exists = async (ids: string[]) =>
      (await Promise.all(ids.map((id) => b!.redis.exists(b!.queue.store.keys.job('default', id))))).filter(
        (x) => x === 1,
      ).length
    // Two minutes on, everything is past its retention; only what is archived may go.
    const prune = async () => {
      skew = 120_000
      await b!.queue.store.pruneCompleted('default')
      skew = 0
    }
    await prune()
    expect(await exists([...a, ...bIds])).toBe(60)
    await k.store.ack('default', entriesA, [])
    await prune()
    expect(await exists(a)).toBe(0) // archived: retention applies
    expect(await exists(bIds)).toBe(30)
    let bl = (await archiveBacklogs(b.queue.store, ['default'], Date.now()))[0]!
    expect(bl.entries).toBe(entriesB.length)
    expect(bl.oldestAgeS).toBeGreaterThan(0)
    expect(bl.oldestAgeS).toBeLessThan(30)
    // C ends on a clock 30 s behind Redis's: its jobs' ends are older than B's, though its
    // entries come after B's in the stream (whose ids are Redis's time). B archived: C's jobs
    // stay (and B's with them, the watermark being C's oldest end) -- a watermark taken from the
    // stream's oldest entry id would have let retention drop C unarchived.
    const c = await finishWith({ now: () => Date.now() - 30_000 }, 30)
    const entriesC = await newEntries(seen)
    bl = (await archiveBacklogs(b.queue.store, ['default'], Date.now()))[0]!
    expect(bl.oldestAgeS).toBeGreaterThanOrEqual(29)
    await k.store.ack('default', entriesB, [])
    skew = 5000 // past C's retention on any clock, not past B's by the stream's ids
    await b.queue.store.pruneCompleted('default')
    skew = 0
    expect(await exists(c)).toBe(30)
    await k.store.ack('default', entriesC, [])
    await prune()
    expect(await exists([...bIds, ...c])).toBe(0)
    bl = (await archiveBacklogs(b.queue.store, ['default'], Date.now()))[0]!
    expect(bl).toEqual({ queue: 'default', entries: 0, oldestAgeS: 0 })
  }, 60_000)

  it('with a completed retention of 0, a completed job waits in its index for the archive, then goes', async () => {
    b = await setup({ config: { completedRetentionS: 0 } })
    const k = await kit(b)
    await b.queue.add('echo', {})
    await k.archiver().scan()
    const ids = await finishWith({ now: () => Date.now() }, 50)
    const jobKeys = async () => (await b!.keys()).filter((x) => x.includes(':job:')).length
    expect(await jobKeys()).toBe(51)
    await b.queue.store.pruneCompleted('default')
    expect(await jobKeys()).toBe(51)
    const a = k.archiver()
    await drain(a)
    expect((await rowCounts(k)).size).toBe(51)
    expect(await jobKeys()).toBe(0) // deleted by archive_ack, as retention 0 says
    expect(await b.redis.zcard(b.queue.store.keys.index('default', 'completed'))).toBe(0)
    // Switched off with jobs still held: they are deleted then.
    await k.store.enable('default')
    await finishWith({ now: () => Date.now() }, 20)
    expect(await jobKeys()).toBe(20)
    await k.store.disable('default')
    expect(await jobKeys()).toBe(0)
    expect(await b.redis.exists(b.queue.store.keys.archiveAt('default'))).toBe(0)
    expect(ids.length).toBe(50)
  }, 60_000)
})

describe('the CLI', () => {
  it('dtq archiver needs DATABASE_URL; --off switches every queue off', async () => {
    b = await setup({ config: { completedRetentionS: 1 } })
    const k = await kit(b)
    await finishUnarchived(10, k)
    const env = { ...targetEnv(testTarget()), KEY_PREFIX: b.prefix, DATABASE_URL: '' }
    await expect(runCli(env, ['archiver'])).rejects.toThrow(/needs DATABASE_URL/)
    expect(await runCli(env, ['archiver', '--off'])).toMatch(/archiving is off in 1 queue/)
    expect(await k.store.enabled('default')).toBe(false)
    await b.queue.store.pruneCompleted('default')
    expect((await b.keys()).filter((x) => x.includes(':job:'))).toEqual([])
  }, 30_000)
})

describe.runIf(hasPrivatePostgres())('a PostgreSQL outage', () => {
  it('loses nothing: the archiver retries, nothing is acknowledged until written', async () => {
    const server = await PrivatePostgres.create()
    cleanups.push(() => server.destroy())
    b = await setup()
    const k = await kit(b, server.url)
    const a = k.archiver({ batch: 50 })
    await b.queue.add('echo', {})
    await a.scan()
    a.start()
    const w = b.worker()
    await w.start()
    for (let i = 0; i < 99; i++) await b.queue.add('echo', { i })
    await finished(b, 100)
    await waitFor(async () => (await k.store.status('default')).backlog === 0, { what: 'first drain' })
    await server.stop()
    for (let i = 0; i < 200; i++) await b.queue.add('echo', { i })
    await finished(b, 300)
    await waitFor(() => a.stats.failures > 0, { what: 'a failed write' })
    expect((await k.store.status('default')).backlog).toBeGreaterThan(0)
    await server.start()
    await waitFor(async () => (await k.store.status('default')).backlog === 0, {
      timeoutMs: 40_000,
      what: 'drain after the outage',
    })
    await w.close()
    const counts = await rowCounts(k)
    expect(counts.size).toBe(300)
    expect([...counts.values()].every((n) => n === 1)).toBe(true)
  }, 90_000)
})
