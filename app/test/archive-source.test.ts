/**
 * The history archive as a job source (ADR 0028, issue 21 part 4), over real Redis and real
 * PostgreSQL (a database of this run's own): a job finished, archived as the archiver writes it
 * (historyRows of its hash), then removed from Redis as retention removes it -- replay (with a
 * payload edit), dry run, timeline, compare archived vs live, GET /jobs/{id}, an id archived in
 * two queues (409), PostgreSQL unreachable (a 503 saying so, not a 500), no DATABASE_URL
 * (unchanged: 404).
 */
import { randomBytes } from 'node:crypto'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createPool, History, migrate } from '../src/history/db.ts'
import { historyRows } from '../src/history/rows.ts'
import { type ApiBundle, apiSetup, bearer, TOKEN_SETTING } from './api-helpers.ts'
import { targetEnv, testTarget } from './helpers.ts'
import { createTestDatabase, freePort, type TestDatabase } from './postgres.ts'
import { runCli } from './processes.ts'

let db: TestDatabase
beforeAll(async () => {
  db = await createTestDatabase()
})
afterAll(async () => {
  await db?.drop()
})

let b: ApiBundle | undefined
const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
  await b?.cleanup()
  b = undefined
})

const Q = 'arc'

async function setup(config: Record<string, unknown> = {}) {
  const schema = `s_${randomBytes(4).toString('hex')}`
  await migrate(db.url, schema)
  const pool = createPool(db.url)
  cleanups.push(() => pool.end())
  const history = new History(pool, schema)
  b = await apiSetup({
    databaseUrl: db.url,
    historySchema: schema,
    apiTokens: TOKEN_SETTING,
    ...config,
  } as never)
  return { bundle: b, history, schema }
}

const call = (method: 'GET' | 'POST', url: string, payload?: unknown, role: 'read' | 'write' = 'write') =>
  b!.app.inject({ method, url, payload: payload as never, headers: bearer(role) })

/** A job of `queue` that failed once (retried) then completed, archived, then gone from Redis. */
async function archivedJob(history: History | null, queue = Q, id?: string) {
  const store = b!.queue.store
  const { job } = await b!.queue.add('work', { n: 1, user: 'ann' }, { queue, id, max_retries: 2 })
  const first = (await store.deliver(queue, 'w1', 1)).jobs[0]!
  await store.fail(
    queue,
    first.id,
    first.epoch,
    'retry',
    { message: 'boom 1', class: 'Boom', worker: 'w1', attempt: 1, started_at: first.started_at ?? undefined },
    0,
  )
  await store.promote(queue) // backoff 0: due now
  const second = (await store.deliver(queue, 'w2', 1)).jobs[0]!
  await store.complete(queue, [{ id: second.id, epoch: second.epoch, result: JSON.stringify({ ok: true }) }])
  const h = await store.redis.hgetall(store.keys.job(queue, job.id))
  const rows = historyRows(queue, job.id, h)!
  expect(rows.job.state).toBe('completed')
  await history?.write([rows.job], rows.attempts)
  const served = (await call('GET', `/jobs/${job.id}?queue=${queue}`)).json()
  // Past its retention: Redis removes the job (the archive keeps it).
  await b!.queue.deleteJob(job.id, queue)
  expect(await store.getJob(queue, job.id)).toBeNull()
  return served as { id: string; queue: string; payload: unknown; result: unknown; attempts: number }
}

describe('a job past its retention, from the archive', () => {
  it('GET /jobs/{id} answers the archived record, marked source archive; actions needing Redis 404', async () => {
    const { history } = await setup()
    const live = await archivedJob(history)
    const r = await call('GET', `/jobs/${live.id}`, undefined, 'read')
    expect(r.statusCode).toBe(200)
    const { logs, source, ...rest } = r.json()
    expect(source).toBe('archive')
    expect(logs).toEqual([])
    const { logs: _l, ...liveRest } = live as typeof live & { logs: string[] }
    expect(rest).toEqual(liveRest)
    expect(rest.payload).toEqual({ n: 1, user: 'ann' })
    expect(rest.result).toEqual({ ok: true })
    // The same with its queue, and a queue that does not hold it is a 404.
    expect((await call('GET', `/jobs/${live.id}?queue=${Q}`)).json().source).toBe('archive')
    expect((await call('GET', `/jobs/${live.id}?queue=other`)).statusCode).toBe(404)
    // Actions read Redis: a clear 404, nothing written.
    for (const action of ['retry', 'cancel']) {
      const a = await call('POST', `/jobs/${live.id}/${action}?queue=${Q}`)
      expect([action, a.statusCode, a.json().code]).toEqual([action, 404, 'NOT_FOUND'])
    }
    expect((await call('GET', '/jobs/nope')).statusCode).toBe(404)
  })

  it('replays it (replay_of, payload edited), dry run writes nothing', async () => {
    const { history } = await setup()
    const orig = await archivedJob(history)
    const dry = await call('POST', `/jobs/${orig.id}/replay?dry_run=true`, { payload: { n: 2 } })
    expect(dry.statusCode).toBe(200)
    expect(dry.json()).toMatchObject({
      dry_run: true,
      outcome: 'create',
      source: 'archive',
      original: `${Q}/${orig.id}`,
    })
    expect(dry.json().job.payload).toEqual({ n: 2 })
    expect((await b!.queue.listJobs({ queue: Q })).items).toHaveLength(0)

    const r = await call('POST', `/jobs/${orig.id}/replay`, { payload: { n: 2 } })
    expect(r.statusCode).toBe(201)
    const j = r.json()
    expect(j).toMatchObject({
      replay_of: `${Q}/${orig.id}`,
      payload: { n: 2 },
      state: 'queued',
      task_type: 'work',
    })
    expect(j.id).not.toBe(orig.id)
    // Unedited: the archived payload.
    const again = await call('POST', `/jobs/${orig.id}/replay?queue=${Q}`, null)
    expect(again.statusCode).toBe(201)
    expect(again.json().payload).toEqual({ n: 1, user: 'ann' })
  })

  it("timeline: the archive's attempts, marked archive", async () => {
    const { history } = await setup()
    const orig = await archivedJob(history)
    const r = await call('GET', `/jobs/${orig.id}/timeline`, undefined, 'read')
    expect(r.statusCode).toBe(200)
    const t = r.json()
    expect(t.source).toBe('archive')
    expect(t.job).toMatchObject({ id: orig.id, queue: Q, state: 'completed' })
    const fromArchive = t.entries.filter((e: { source: string }) => e.source === 'archive')
    expect(
      fromArchive.map((e: { event: string; attempt: number; worker: string }) => [
        e.event,
        e.attempt,
        e.worker,
      ]),
    ).toEqual([
      ['attempt_started', 1, 'w1'],
      ['attempt_failed', 1, 'w1'],
      ['attempt_started', 2, 'w2'],
      ['completed', 2, 'w2'],
    ])
    expect(fromArchive[1].message).toBe('boom 1')
    // The job record's own entries are there too (created, …).
    expect(
      t.entries.some((e: { event: string; source: string }) => e.event === 'created' && e.source === 'job'),
    ).toBe(true)
  })

  it('compare: archived vs live', async () => {
    const { history } = await setup()
    const orig = await archivedJob(history)
    const replay = (await call('POST', `/jobs/${orig.id}/replay`, { payload: { n: 3, user: 'ann' } })).json()
    const r = await call(
      'GET',
      `/jobs/${orig.id}/compare?with=${Q}/${replay.id}&queue=${Q}`,
      undefined,
      'read',
    )
    expect(r.statusCode).toBe(200)
    const c = r.json()
    expect([c.a.source, c.b.source]).toEqual(['archive', 'redis'])
    expect(c.same).toBe(false)
    expect(c.differences.some((d: { path: string }) => d.path.includes('n'))).toBe(true)
  })

  it('an id archived in two queues without ?queue= is 409 AMBIGUOUS_JOB_ID; with it, the one', async () => {
    const { history } = await setup()
    await archivedJob(history, 'qa', 'same-id')
    await archivedJob(history, 'qb', 'same-id')
    for (const [m, url] of [
      ['GET', '/jobs/same-id'],
      ['GET', '/jobs/same-id/timeline'],
      ['POST', '/jobs/same-id/replay'],
    ] as const) {
      const r = await call(m, url, m === 'POST' ? {} : undefined)
      expect([url, r.statusCode, r.json().code]).toEqual([url, 409, 'AMBIGUOUS_JOB_ID'])
      expect(r.json().message).toMatch(/qa, qb/)
    }
    expect((await call('GET', '/jobs/same-id?queue=qb')).json()).toMatchObject({
      queue: 'qb',
      source: 'archive',
    })
  })
})

describe('the CLI with DATABASE_URL', () => {
  it('dtq timeline, dtq replay, dtq compare read the archive; without DATABASE_URL, not found', async () => {
    const { history, schema } = await setup()
    const orig = await archivedJob(history)
    const base = { ...targetEnv(testTarget()), KEY_PREFIX: b!.prefix, REDIS_DURABILITY: 'off' }
    const env = { ...base, DATABASE_URL: db.url, HISTORY_SCHEMA: schema }
    const tl = await runCli(env, ['timeline', orig.id, '--queue', Q])
    expect(tl).toMatch(/attempt_failed +archive +#1 w1\s+boom 1/)
    expect(tl).toMatch(/completed +archive +#2 w2/)
    const out = await runCli(env, ['replay', orig.id, '--payload', '{"n":7}'])
    const m = new RegExp(`^replayed ${Q}/${orig.id} as ${Q}/(\\S+) \\(queued\\)\n$`).exec(out)
    expect(m).not.toBeNull()
    const cmp = await runCli(env, ['compare', `${Q}/${orig.id}`, `${Q}/${m![1]}`])
    expect(cmp).toContain('changed  /payload/n  1 -> 7')
    await expect(runCli(base, ['timeline', orig.id, '--queue', Q])).rejects.toMatchObject({
      stderr: expect.stringContaining('not found'),
    })
  })
})

describe('without a usable archive', () => {
  it('PostgreSQL unreachable: a job Redis holds is unaffected; one it does not is a 503 saying so, quickly', async () => {
    const port = await freePort()
    b = await apiSetup({
      databaseUrl: `postgres://postgres@127.0.0.1:${port}/none`,
      apiTokens: TOKEN_SETTING,
    } as never)
    const gone = await archivedJob(null)
    const { job: live } = await b.queue.add('work', { n: 9 }, { queue: Q })
    expect((await call('GET', `/jobs/${live.id}`)).statusCode).toBe(200)
    expect((await call('GET', `/jobs/${live.id}/timeline`)).statusCode).toBe(200)
    for (const [m, url] of [
      ['GET', `/jobs/${gone.id}`],
      ['GET', `/jobs/${gone.id}/timeline`],
      ['POST', `/jobs/${gone.id}/replay`],
      ['GET', `/jobs/${gone.id}/compare?with=${live.id}`],
    ] as const) {
      const t0 = Date.now()
      const r = await call(m, url, m === 'POST' ? {} : undefined)
      expect([url, r.statusCode, r.json().code]).toEqual([url, 503, 'HISTORY_UNAVAILABLE'])
      expect(r.json().message).toMatch(/archive could not be read: PostgreSQL is unreachable/)
      expect(Date.now() - t0).toBeLessThan(4000)
    }
  })

  it('no tables yet: the 503 says to run the archiver', async () => {
    b = await apiSetup({
      databaseUrl: db.url,
      historySchema: 'nothing_here',
      apiTokens: TOKEN_SETTING,
    } as never)
    const gone = await archivedJob(null)
    const r = await call('POST', `/jobs/${gone.id}/replay`, {})
    expect([r.statusCode, r.json().code]).toEqual([503, 'HISTORY_UNAVAILABLE'])
    expect(r.json().message).toMatch(/dtq archiver/)
  })

  it('history disabled (no DATABASE_URL): unchanged, a job past its retention is a 404', async () => {
    b = await apiSetup({ apiTokens: TOKEN_SETTING } as never)
    const gone = await archivedJob(null)
    for (const [m, url] of [
      ['GET', `/jobs/${gone.id}`],
      ['GET', `/jobs/${gone.id}/timeline`],
      ['POST', `/jobs/${gone.id}/replay`],
    ] as const) {
      const r = await call(m, url, m === 'POST' ? {} : undefined)
      expect([url, r.statusCode, r.json().code]).toEqual([url, 404, 'NOT_FOUND'])
    }
  })
})
