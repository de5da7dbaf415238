/**
 * The created-time index (issue 22 point 10, ADR 0035, invariant 37): GET /jobs?sort=created
 * lists a queue's jobs by created_at across states, exactly -- every job hash has its member with
 * its created_at, and no member outlives its hash for longer than a listing or a sweep. Runs on
 * the standalone server and, with DTQ_TEST_REDIS=cluster, on a Cluster.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { F, type Job } from '../src/queue/job.ts'
import { ArchiveStore, finishedOf } from '../src/redis/archive.ts'
import { scanKeys } from '../src/redis/connection.ts'
import { setLibraryOptions } from '../src/redis/scripts.ts'
import { type ApiBundle, apiSetup } from './api-helpers.ts'
import { FakeClock, snapshot, targetEnv, testTarget } from './helpers.ts'
import { runCli } from './processes.ts'

const Q = 'made'
let b: ApiBundle
afterEach(() => b?.cleanup())

const get = (url: string) => b.app.inject({ method: 'GET', url })
const put = (url: string, payload: unknown) => b.app.inject({ method: 'PUT', url, payload: payload as never })

/** Every job hash of `queue` (one physical queue) with its created_at, and the index's members with their scores. */
async function both(
  queue: string,
): Promise<{ hashes: Record<string, number>; index: Record<string, number> }> {
  const jobKey = b.queue.store.keys.job(queue, '')
  const hashes: Record<string, number> = {}
  await scanKeys(b.redis, `${jobKey}*`, async (keys) => {
    for (const k of keys) hashes[k.slice(jobKey.length)] = Number(await b.redis.hget(k, F.created_at))
  })
  const flat = await b.redis.zrange(b.queue.store.keys.created(queue), 0, -1, 'WITHSCORES')
  const index: Record<string, number> = {}
  for (let i = 0; i < flat.length; i += 2) index[flat[i]!] = Number(flat[i + 1])
  return { hashes, index }
}

/** Every page of GET /jobs with these query parameters, following next_cursor. */
async function walk(qs: string): Promise<Job[]> {
  const out: Job[] = []
  let cursor: string | null = null
  for (let n = 0; n < 1000; n++) {
    const res = await get(`/jobs?${qs}${cursor ? `&cursor=${cursor}` : ''}`)
    expect(res.statusCode, res.body).toBe(200)
    const page = res.json()
    out.push(...page.items)
    cursor = page.next_cursor
    if (!cursor) return out
  }
  throw new Error('too many pages')
}

/** Newest first by created_at, then id bytewise descending (the listing's order). */
const byCreatedDesc = (a: { created_at: number; id: string }, b2: { created_at: number; id: string }) =>
  b2.created_at - a.created_at || (a.id < b2.id ? 1 : a.id > b2.id ? -1 : 0)

async function turnOn(queue = Q) {
  const res = await put(`/queues/${queue}/created-index`, { on: true })
  expect(res.statusCode, res.body).toBe(200)
  expect(res.json().created_index).toBe('on')
}

/** Jobs at clock times out of id order, taken through every state. */
async function seed(clock: FakeClock, queue = Q) {
  const t0 = clock.t
  const ids: string[] = []
  // created_at falls and rises against the id order, with ties.
  const offsets = [50, 10, 30, 30, 30, 0, 70, 20, 20, 60, 5, 40]
  for (const [i, off] of offsets.entries()) {
    clock.t = t0 + off
    const type = i % 3 === 0 ? 'odd' : 'work'
    const { job } = await b.queue.add(type, { i }, { queue, max_retries: 2, delay_ms: i === 9 ? 60_000 : 0 })
    ids.push(job.id)
  }
  clock.t = t0 + 100
  const s = b.queue.store
  const started = (await s.deliver(queue, 'c1', 5)).jobs
  const [a, f, r, act] = started
  await s.complete(queue, [{ id: a!.id, epoch: a!.epoch, result: '1' }])
  await s.fail(queue, f!.id, f!.epoch, 'permanent', { message: 'boom', worker: 'c1', attempt: 1 }, 0)
  await s.fail(queue, r!.id, r!.epoch, 'retry', { message: 'again', worker: 'c1', attempt: 1 }, 5000)
  void act
  await s.cancel(queue, ids[11]!)
  return ids
}

describe('sort=created', () => {
  it('lists across states in created_at order exactly, both ways, paging over ties without repeats or gaps', async () => {
    const clock = new FakeClock()
    b = await apiSetup({}, { clock })
    await seed(clock) // before the index: backfilled
    await turnOn()
    clock.t += 1000
    const later = await seed(clock) // after: indexed by their enqueue
    expect(later.length).toBe(12)
    const { hashes, index } = await both(Q)
    expect(index).toEqual(hashes)
    const all = (await walk(`queue=${Q}&limit=100`)).map((j) => ({ id: j.id, created_at: j.created_at }))
    const expected = [...all].sort(byCreatedDesc)
    for (const limit of [1, 2, 3, 5]) {
      const desc = await walk(`queue=${Q}&sort=created&limit=${limit}`)
      expect(desc.map((j) => j.id)).toEqual(expected.map((j) => j.id))
      const asc = await walk(`queue=${Q}&sort=created&order=asc&limit=${limit}`)
      expect(asc.map((j) => j.id)).toEqual([...expected].reverse().map((j) => j.id))
    }
    expect(new Set(all.map((j) => j.id)).size).toBe(24)
    // The states really differ.
    const states = new Set((await walk(`queue=${Q}&limit=100`)).map((j) => j.state))
    for (const st of ['queued', 'active', 'completed', 'failed', 'retrying', 'scheduled', 'cancelled'])
      expect(states).toContain(st)
    // from= jumps to a created time (at or before it, newest first).
    const at = expected[7]!.created_at
    const from = await walk(`queue=${Q}&sort=created&from=${at}&limit=4`)
    expect(from.map((j) => j.id)).toEqual(expected.filter((j) => j.created_at <= at).map((j) => j.id))
  }, 30_000)

  it('filters by state and task type, continuing a page cut short by its scan', async () => {
    const clock = new FakeClock()
    b = await apiSetup({}, { clock })
    await turnOn(await b.queue.add('work', {}, { queue: Q }).then(() => Q))
    await seed(clock)
    for (let i = 0; i < 60; i++) {
      clock.advance(1)
      await b.queue.add('work', { i }, { queue: Q })
    }
    const everything = await walk(`queue=${Q}&sort=created&limit=100`)
    for (const qs of ['status=queued', 'task_type=odd', 'status=failed', 'status=queued&task_type=odd']) {
      const want = everything.filter(
        (j) =>
          (!qs.includes('status=') || j.state === /status=(\w+)/.exec(qs)![1]) &&
          (!qs.includes('task_type') || j.task_type === 'odd'),
      )
      // limit 1: at most 20 members a page, so sparse matches come over several (some empty) pages.
      const got = await walk(`queue=${Q}&sort=created&limit=1&${qs}`)
      expect(got.map((j) => j.id)).toEqual(want.map((j) => j.id))
    }
    const first = (await get(`/jobs?queue=${Q}&sort=created&limit=1&status=failed`)).json()
    expect(first.items.length).toBe(0) // the failed job is among the oldest: beyond 20 members
    expect(first.next_cursor).not.toBeNull()
    // The per-state count, as for sort=updated.
    expect(first.total).toBe(everything.filter((j) => j.state === 'failed').length)
  }, 30_000)

  it('skips and removes members whose hash expired by TTL; the sweep removes the rest', async () => {
    b = await apiSetup()
    await b.queue.add('work', {}, { queue: Q })
    await turnOn()
    const ids: string[] = []
    for (let i = 0; i < 6; i++) ids.push((await b.queue.add('work', { i }, { queue: Q })).job.id)
    // Expiry, as a failed job's TTL does it: no script sees it.
    for (const id of ids.slice(0, 4)) await b.redis.del(b.queue.store.keys.job(Q, id))
    const page = (await get(`/jobs?queue=${Q}&sort=created&limit=2`)).json()
    expect(page.items.map((j: Job) => j.id)).toEqual([ids[5], ids[4]])
    const rest = await walk(`queue=${Q}&sort=created&limit=50`)
    expect(rest.length).toBe(3)
    let now = await both(Q)
    expect(now.index).toEqual(now.hashes) // read past: removed
    // Expired members no listing reaches: the janitor's sweep.
    for (const id of ids.slice(4)) await b.redis.del(b.queue.store.keys.job(Q, id))
    await b.queue.store.createdSweep(Q, 1)
    await b.queue.store.createdSweep(Q, 1)
    await b.queue.store.createdSweep(Q, 5)
    now = await both(Q)
    expect(now.index).toEqual(now.hashes)
    expect(Object.keys(now.index).length).toBe(1)
  }, 30_000)

  it('every path that deletes a job hash removes its member', async () => {
    const clock = new FakeClock()
    b = await apiSetup({ completedRetentionS: 60 }, { clock })
    await seed(clock)
    await turnOn()
    const exact = async (what: string) => {
      const { hashes, index } = await both(Q)
      expect(index, what).toEqual(hashes)
    }
    const s = b.queue.store
    const [one, two] = await walk(`queue=${Q}&sort=created&limit=100&status=queued`)
    expect((await b.app.inject({ method: 'DELETE', url: `/jobs/${one!.id}?queue=${Q}` })).statusCode).toBe(
      200,
    )
    await exact('delete')
    await s.deleteJob(Q, two!.id, ['completed', 'failed', 'cancelled']) // refused: queued
    const done = (await walk(`queue=${Q}&limit=100&status=completed`))[0]!
    await s.deleteJob(Q, done.id, ['completed', 'failed', 'cancelled']) // a bulk delete's call
    await exact('bulk delete')
    const dead = (await walk(`queue=${Q}&limit=100&status=failed`)).map((j) => j.id)
    expect(await s.dlqDelete(Q, dead)).toBe(dead.length)
    await exact('dlq delete')
    // Retention: completed jobs pruned by the janitor's call, and by completions.
    for (const j of (await s.deliver(Q, 'c1', 3)).jobs)
      await s.complete(Q, [{ id: j.id, epoch: j.epoch, result: '1' }])
    clock.advance(120_000)
    expect(await s.pruneCompleted(Q)).toBeGreaterThan(0)
    await exact('retention prune')
    await b.queue.emptyQueue(Q, { limit: 1000 })
    await exact('empty queue')
    // Whatever is left is finished or running: finish it, prune it, then the queue is forgotten.
    for (const j of (await s.deliver(Q, 'c1', 100)).jobs)
      await s.complete(Q, [{ id: j.id, epoch: j.epoch, result: '1' }])
    for (const j of await walk(`queue=${Q}&limit=100`)) await s.deleteJob(Q, j.id)
    await exact('all deleted')
    expect(await b.redis.exists(s.keys.created(Q))).toBe(0)
    await s.forgetQueueIfIdle(Q, 0)
    await s.forgetQueueIfIdle(Q, 0)
    // The index and its switch (meta) went with the queue.
    expect(
      (await b.keys()).filter((k) => k.startsWith(s.keys.base(Q)) && /:(created|meta)$/.test(k)),
    ).toEqual([])
  }, 30_000)

  it('completing or cancelling with a retention of 0 removes the member with the hash', async () => {
    b = await apiSetup({ completedRetentionS: 0 })
    await b.queue.add('work', {}, { queue: Q })
    await turnOn()
    for (let i = 0; i < 4; i++) await b.queue.add('work', { i }, { queue: Q })
    const s = b.queue.store
    const [a, c] = (await s.deliver(Q, 'c1', 2)).jobs
    await s.complete(Q, [{ id: a!.id, epoch: a!.epoch, result: '1' }])
    await s.fail(Q, c!.id, c!.epoch, 'cancel', { message: 'x', worker: 'c1', attempt: 1 }, 0)
    const { hashes, index } = await both(Q)
    expect(Object.keys(hashes).length).toBe(3)
    expect(index).toEqual(hashes)
  }, 30_000)

  it('archive_ack and archive_off with a retention of 0 remove the members of the hashes they delete', async () => {
    // Archiving holds finished jobs until the archiver has them (ADR 0027, 0031); with a
    // completed retention of 0 the archiver's acknowledgement -- or archiving switched off --
    // is what deletes the completed and cancelled ones (failed ones get their TTL: FAILED_RETENTION_S
    // is at least 60 s). Driven here as the archiver drives it, without PostgreSQL.
    const clock = new FakeClock()
    b = await apiSetup({ completedRetentionS: 0 }, { clock })
    const s = b.queue.store
    const arch = new ArchiveStore(b.redis, { ...s.opts, clock })
    await b.queue.add('work', {}, { queue: Q })
    await turnOn()
    expect(await arch.enable(Q)).toBe(true)
    const exact = async (what: string) => {
      const { hashes, index } = await both(Q)
      expect(index, what).toEqual(hashes)
      return Object.keys(hashes)
    }
    /** Adds 6 jobs and ends 5: 2 completed, 2 cancelled (one queued, one running), 1 failed. */
    const finishSome = async () => {
      clock.advance(10)
      const ids: string[] = []
      for (let i = 0; i < 4; i++) ids.push((await b.queue.add('work', { i }, { queue: Q })).job.id)
      const started = (await s.deliver(Q, 'c1', 10)).jobs.filter((j) => ids.includes(j.id))
      expect(started).toHaveLength(4)
      const [c1, c2, x1, f1] = started
      const queued = (await b.queue.add('work', { i: 4 }, { queue: Q })).job.id
      ids.push(queued, (await b.queue.add('work', { i: 5 }, { queue: Q })).job.id)
      await s.complete(Q, [
        { id: c1!.id, epoch: c1!.epoch, result: '1' },
        { id: c2!.id, epoch: c2!.epoch, result: '1' },
      ])
      await s.fail(Q, x1!.id, x1!.epoch, 'cancel', { message: 'x', worker: 'c1', attempt: 1 }, 0)
      await s.fail(Q, f1!.id, f1!.epoch, 'permanent', { message: 'boom', worker: 'c1', attempt: 1 }, 0)
      await s.cancel(Q, queued)
      clock.advance(10)
      // Held for the archiver: every hash still here, retention or not.
      await s.pruneCompleted(Q)
      expect(await exact('held')).toEqual(expect.arrayContaining(ids))
      return { gone: [c1!.id, c2!.id, x1!.id, queued], failed: f1!.id }
    }
    const first = await finishSome()
    // The archiver's round: read the entries, "write" the jobs as they are, acknowledge.
    const entries = await arch.read(Q, 'a1', 100, '>')
    const ids = [...new Set(entries.flatMap((e) => e.jobs))]
    const hashes = await arch.jobs(Q, ids)
    const written = ids.map((id, i) => [id, finishedOf(hashes[i]!), hashes[i]![F.state]!] as const)
    expect(written.map((w) => w[2]).sort()).toEqual([
      'cancelled',
      'cancelled',
      'completed',
      'completed',
      'failed',
    ])
    expect(
      await arch.ack(
        Q,
        entries.map((e) => e.entry),
        written,
      ),
    ).toBe(entries.length)
    let left = await exact('archive_ack')
    for (const id of first.gone) expect(left, `${id} deleted by archive_ack`).not.toContain(id)
    expect(left).toContain(first.failed) // a TTL now, not deleted
    expect(await b.redis.ttl(s.keys.job(Q, first.failed))).toBeGreaterThan(0)
    // Switched off with jobs still held: archive_off deletes them, members with them.
    const second = await finishSome()
    await arch.disable(Q)
    left = await exact('archive_off')
    for (const id of second.gone) expect(left, `${id} deleted by archive_off`).not.toContain(id)
    expect(left).toContain(second.failed)
    expect(await b.redis.exists(s.keys.archive(Q))).toBe(0)
  }, 30_000)

  it('a partitioned queue has an index per partition, merged on read', async () => {
    const clock = new FakeClock()
    b = await apiSetup({}, { clock })
    await b.queue.setPartitions(Q, 3)
    for (let i = 0; i < 30; i++) {
      clock.t += (i * 7919) % 13 // out of order, with ties
      await b.queue.add('work', { i }, { queue: Q, id: `p${i}` })
    }
    await turnOn()
    const all = await walk(`queue=${Q}&limit=100`)
    const expected = all.map((j) => ({ id: j.id, created_at: j.created_at })).sort(byCreatedDesc)
    expect((await walk(`queue=${Q}&sort=created&limit=4`)).map((j) => j.id)).toEqual(
      expected.map((j) => j.id),
    )
    // Partitions added later get their index too (backfilled).
    await b.queue.setPartitions(Q, 5)
    for (let i = 30; i < 40; i++) await b.queue.add('work', { i }, { queue: Q, id: `p${i}` })
    expect(await b.queue.createdIndexState(Q)).toBe('on')
    expect(await b.queue.store.physicalQueues(Q)).toHaveLength(5)
    for (const p of await b.queue.store.physicalQueues(Q)) {
      const { hashes, index } = await both(p)
      expect(index).toEqual(hashes)
    }
    expect(await walk(`queue=${Q}&sort=created&limit=7`)).toHaveLength(40)
  }, 30_000)
})

/** One round: a queue with jobs, the index switched on, its backfill in pages of 5 keys with enqueues and deletes in between. */
async function backfillRound(queue: string): Promise<boolean> {
  const s = b.queue.store
  const ids: string[] = []
  for (let i = 0; i < 25; i++) ids.push((await b.queue.add('work', { i }, { queue })).job.id)
  await s.setCreatedIndex(queue, true)
  let n = 0
  while ((await s.createdIndexState(queue)) === 'building') {
    await s.createdBackfill(queue, 1, 5)
    ids.push((await b.queue.add('work', { n }, { queue })).job.id)
    const victim = ids.splice((n * 7) % ids.length, 1)[0]!
    await s.deleteJob(queue, victim)
    n++
  }
  const { hashes, index } = await both(queue)
  return JSON.stringify(Object.entries(index).sort()) === JSON.stringify(Object.entries(hashes).sort())
}

describe('the backfill', () => {
  it('is exact with enqueues and deletes during it (20 rounds), and resumable', async () => {
    b = await apiSetup()
    for (let r = 0; r < 20; r++) expect(await backfillRound(`bf${r}`), `round ${r}`).toBe(true)
    // A page written from a cursor that is no longer the current one is refused: nothing written.
    await b.queue.add('work', {}, { queue: 'stale' })
    await b.queue.store.setCreatedIndex('stale', true)
    const meta = b.queue.store.keys.meta('stale')
    const before = await snapshot(b)
    const lib = (b.queue.store as unknown as { lib: { call: (...a: unknown[]) => Promise<unknown> } }).lib
    const common = (b.queue.store as unknown as { common: (n: number) => number[] }).common(Date.now())
    const reply = await lib.call(b.redis, 'created_index', b.queue.store.keys.base('stale'), [
      ...common,
      'page',
      '12345',
      '0',
      '1',
    ])
    expect(reply).toBe('moved')
    expect(await snapshot(b)).toEqual(before)
    expect(await b.redis.hget(meta, 'created_index')).toBe('building')
    // Resumed by whoever continues it (the janitor calls the same).
    expect(await b.queue.store.createdBackfill('stale')).toBe('on')
  }, 60_000)

  it('negative control: without indexing during the build (no-created-building-index), it is not exact', async () => {
    setLibraryOptions({ noCreatedWhileBuilding: true })
    try {
      b = await apiSetup()
      let inexact = 0
      for (let r = 0; r < 20; r++) if (!(await backfillRound(`bf${r}`))) inexact++
      expect(inexact).toBeGreaterThan(0)
    } finally {
      setLibraryOptions({})
    }
  }, 60_000)
})

describe('refusals and the switch', () => {
  it('refuses bad input with a 4xx and changes nothing', async () => {
    b = await apiSetup()
    await b.queue.add('work', {}, { queue: Q })
    const before = await snapshot(b)
    const cases: Array<[string, string, unknown, number, string | RegExp]> = [
      ['GET', '/jobs?sort=created', undefined, 400, /needs a queue/],
      ['GET', `/jobs?sort=created&queue=${Q}`, undefined, 409, 'CREATED_INDEX_OFF'],
      ['GET', `/jobs?sort=newest&queue=${Q}`, undefined, 400, 'VALIDATION'],
      ['GET', `/jobs?sort=created&queue=${Q}&where=a%3D1`, undefined, 400, /drop sort=created/],
      ['GET', `/jobs?sort=created&queue=${Q}&cursor=nope`, undefined, 409, 'CREATED_INDEX_OFF'],
      ['PUT', `/queues/${Q}/created-index`, { on: 'yes' }, 400, 'VALIDATION'],
      ['PUT', `/queues/${Q}/created-index`, {}, 400, 'VALIDATION'],
      ['PUT', `/queues/${Q}/created-index`, { on: true, extra: 1 }, 400, 'VALIDATION'],
      ['PUT', '/queues/nosuch/created-index', { on: true }, 404, 'NOT_FOUND'],
      ['PUT', '/queues/bad%20name/created-index', { on: true }, 400, 'VALIDATION'],
    ]
    for (const [method, url, payload, status, what] of cases) {
      const res = await b.app.inject({ method: method as 'GET', url, payload: payload as never })
      expect(res.statusCode, `${method} ${url}: ${res.body}`).toBe(status)
      if (typeof what === 'string') expect(res.json().code, url).toBe(what)
      else expect(res.body, url).toMatch(what)
    }
    const off = (await get(`/jobs?sort=created&queue=${Q}`)).json()
    expect(off.message).toMatch(/PUT \/queues\/made\/created-index/)
    expect(await snapshot(b)).toEqual(before)
  }, 30_000)

  it('off -> on -> off leaves every key as it was; GET /queues says the state', async () => {
    b = await apiSetup()
    for (let i = 0; i < 5; i++) await b.queue.add('work', { i }, { queue: Q })
    const before = await snapshot(b)
    const state = async () =>
      (await get('/queues')).json().items.find((q: { queue: string }) => q.queue === Q).created_index
    expect(await state()).toBe('off')
    await turnOn()
    expect(await state()).toBe('on')
    expect(await b.redis.zcard(b.queue.store.keys.created(Q))).toBe(5)
    const res = await put(`/queues/${Q}/created-index`, { on: false })
    expect(res.json()).toEqual({ queue: Q, created_index: 'off' })
    expect(await state()).toBe('off')
    expect(await snapshot(b)).toEqual(before)
  }, 30_000)
})

describe('dtq queues created-index', () => {
  it('switches the index on (backfilled) and off; a bad state is refused', async () => {
    b = await apiSetup()
    for (let i = 0; i < 3; i++) await b.queue.add('work', { i }, { queue: Q })
    const env = { ...targetEnv(testTarget()), KEY_PREFIX: b.prefix, REDIS_DURABILITY: 'off' }
    expect(JSON.parse(await runCli(env, ['queues', 'created-index', Q, 'on']))).toEqual({
      queue: Q,
      created_index: 'on',
    })
    expect(await b.redis.zcard(b.queue.store.keys.created(Q))).toBe(3)
    const before = await snapshot(b)
    const err = await runCli(env, ['queues', 'created-index', Q, 'maybe']).then(
      () => '',
      (e: { stderr: string }) => e.stderr,
    )
    expect(err).toMatch(/on or off/)
    expect(await snapshot(b)).toEqual(before)
    expect(JSON.parse(await runCli(env, ['queues', 'created-index', Q, 'off'])).created_index).toBe('off')
    expect(await b.redis.exists(b.queue.store.keys.created(Q))).toBe(0)
  }, 60_000)
})
