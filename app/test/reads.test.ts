/**
 * The read paths: listings, stats and throughput cost a constant number of round trips however
 * many queues there are; filtered listings read only the matching jobs' hashes into Node;
 * cursor paging gives exactly the order a reference built from Redis's data gives, under every
 * work bound; stats stay numbers where Redis reports no lag.
 */

import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { F, type JobState, jobEntry, PRIORITIES } from '../src/queue/job.ts'
import { type RedisClient, scanKeys } from '../src/redis/connection.ts'
import { GROUP } from '../src/redis/keys.ts'
import type { QueueStats } from '../src/redis/reads.ts'
import { READ_ONLY_SCRIPTS } from '../src/redis/scripts.ts'
import type { JobStore } from '../src/redis/store.ts'
import { type ApiBundle, apiSetup } from './api-helpers.ts'
import { type Bundle, FakeClock, setup } from './helpers.ts'

/**
 * Counts what a call sends on a connection: commands by name, and round trips -- the number of
 * distinct counts of replies received at the moment commands were sent (commands sent together,
 * before any of their replies came back, are one round trip).
 */
function meter(redis: RedisClient) {
  let replies = 0
  let sentAt = new Set<number>()
  let commands: Record<string, number> = {}
  const send = redis.sendCommand.bind(redis)
  redis.sendCommand = ((cmd: { name: string; promise: Promise<unknown> }, ...rest: unknown[]) => {
    sentAt.add(replies)
    const name = cmd.name.toLowerCase()
    commands[name] = (commands[name] ?? 0) + 1
    cmd.promise?.then(
      () => replies++,
      () => replies++,
    )
    return send(cmd as never, ...(rest as []))
  }) as RedisClient['sendCommand']
  return async <T>(fn: () => Promise<T>) => {
    sentAt = new Set()
    commands = {}
    const value = await fn()
    const total = Object.values(commands).reduce((a, b) => a + b, 0)
    return { value, roundTrips: sentAt.size, commands, total }
  }
}

/** Per queue: queued jobs, an active one, a completed one and a dead letter. */
async function seedQueues(b: Bundle, n: number) {
  const store = b.queue.store
  const names = Array.from({ length: n }, (_, i) => `q${String(i).padStart(3, '0')}`)
  await b.queue.addBulk(
    names.flatMap((queue) => Array.from({ length: 4 }, () => ({ task_type: 'echo', queue }))),
  )
  await Promise.all(
    names.map(async (queue) => {
      const d = await store.deliver(queue, 'w', 3)
      const [a, c] = d.jobs
      await store.complete(queue, [{ id: a!.id, epoch: a!.epoch, result: '1' }])
      await store.fail(queue, c!.id, c!.epoch, 'permanent', { message: 'boom', worker: 'w', attempt: 1 }, 0)
    }),
  )
  return names
}

describe('round trips: constant in the number of queues', () => {
  let one: ApiBundle
  let many: ApiBundle
  beforeEach(async () => {
    one = await apiSetup()
    many = await apiSetup()
    await seedQueues(one, 1)
    await seedQueues(many, 100)
  })
  afterEach(async () => {
    await one.cleanup()
    await many.cleanup()
  })

  it('lists, counts and charts in the same round trips for 1 queue as for 100, one call per queue', async () => {
    const cases: Array<[string, (b: ApiBundle) => Promise<unknown>, number]> = [
      ['Queue.stats', (b) => b.queue.stats(), 2],
      ['Queue.throughput', (b) => b.queue.throughput(60), 2],
      ['listJobs', (b) => b.queue.listJobs({ limit: 50 }), 3],
      ['listJobs status=queued', (b) => b.queue.listJobs({ state: 'queued', limit: 50 }), 3],
      ['listJobs task_type', (b) => b.queue.listJobs({ task_type: 'echo', limit: 50 }), 3],
      ['listDlq error', (b) => b.queue.listDlq({ error_contains: 'BOOM', limit: 50 }), 3],
      ['GET /jobs', (b) => b.app.inject({ method: 'GET', url: '/jobs' }), 3],
      ['GET /jobs?status=active', (b) => b.app.inject({ method: 'GET', url: '/jobs?status=active' }), 3],
      ['GET /dlq?task_type=echo', (b) => b.app.inject({ method: 'GET', url: '/dlq?task_type=echo' }), 3],
      ['GET /queues', (b) => b.app.inject({ method: 'GET', url: '/queues' }), 2],
    ]
    const m1 = meter(one.redis)
    const m100 = meter(many.redis)
    for (const [what, fn, roundTrips] of cases) {
      const a = await m1(() => fn(one))
      const c = await m100(() => fn(many))
      console.log(
        `${what.padEnd(24)} round trips ${a.roundTrips} / ${c.roundTrips}, commands ${a.total} / ${c.total} (1 / 100 queues)`,
      )
      // GET /queues reads the worker registry beside the stats (live consumers, ADR 0032): on a
      // slow run its reads and a background refresh can land in one more round -- still constant.
      const slack = what === 'GET /queues' ? 1 : 0
      for (const n of [a.roundTrips, c.roundTrips]) {
        expect(n, what).toBeGreaterThanOrEqual(roundTrips)
        expect(n, what).toBeLessThanOrEqual(roundTrips + slack)
      }
      // One function call per queue (plus the registry read and the page's job hashes); GET /jobs
      // also one queue_stats per queue for its `total`, in the same round (ADR 0033).
      const perQueue = what.startsWith('GET /jobs') ? 2 : 1
      expect(c.total).toBeLessThanOrEqual(perQueue * (1 + 100) + 50)
    }
    // Stats: the registry, then one queue_stats call per queue; nothing per priority or state.
    const s = await m100(() => many.queue.stats())
    // (An HGETALL of the partition list may ride along: its background refresh, once a second,
    // fell in this window on a slow run -- ADR 0017.)
    const { hgetall = 0, ...perQueue } = s.commands as Record<string, number>
    expect(perQueue).toEqual({ smembers: 1, fcall: 100 })
    expect(hgetall).toBeLessThanOrEqual(1)
    expect(s.value.queues).toHaveLength(100)
    expect(s.value.totals).toMatchObject({ queued: 100, active: 100, completed: 100, failed: 100 })
    // GET /stats runs stats, workers and throughput side by side: a few round trips, not per queue.
    const st1 = await m1(() => one.app.inject({ method: 'GET', url: '/stats' }))
    const st100 = await m100(() => many.app.inject({ method: 'GET', url: '/stats' }))
    console.log(
      `GET /stats                round trips ${st1.roundTrips} / ${st100.roundTrips} (1 / 100 queues)`,
    )
    expect(st1.roundTrips).toBeLessThanOrEqual(4)
    expect(st100.roundTrips).toBeLessThanOrEqual(4)
    expect(st100.commands.hmget ?? 0).toBe(0) // the chart is one throughput call per queue
  })
})

describe('filtered listings read only the matching jobs', () => {
  let b: Bundle
  let store: JobStore
  let clock: FakeClock
  beforeEach(async () => {
    clock = new FakeClock()
    b = await setup({ clock })
    store = b.queue.store
  })
  afterEach(() => b.cleanup())

  it('job hashes read for a task_type matching 1 job in 500: only the matching ones', async () => {
    const rare: string[] = []
    for (let i = 0; i < 5000; i += 1000) {
      const res = await b.queue.addBulk(
        Array.from({ length: 1000 }, (_, k) => ({ task_type: (i + k) % 500 === 7 ? 'rare' : 'common' })),
      )
      for (const r of res) if (r.job.task_type === 'rare') rare.push(r.job.id)
    }
    expect(rare).toHaveLength(10)
    const measure = meter(b.redis)
    const all = await measure(() => b.queue.listJobs({ task_type: 'rare', limit: 50 }))
    expect(all.value.items.map((j) => j.id).sort()).toEqual([...rare].sort())
    expect(all.value.next_cursor).toBeNull()
    expect(all.commands.hgetall).toBe(10)
    expect(all.commands.hmget ?? 0).toBe(0)
    // 5000 candidates, at most 2000 examined per call: three calls, one after the other.
    expect(all.commands.fcall).toBe(3)
    // Paged by 4: the same jobs, 4 + 4 + 2 hashes.
    const seen: string[] = []
    let cursor: string | undefined
    do {
      const page = await measure(() => b.queue.listJobs({ task_type: 'rare', limit: 4, cursor }))
      expect(page.commands.hgetall).toBe(page.value.items.length)
      seen.push(...page.value.items.map((j) => j.id))
      cursor = page.value.next_cursor ?? undefined
    } while (cursor)
    expect(seen).toEqual(all.value.items.map((j) => j.id))
  })

  it('DLQ hashes read for an error text matching 1 dead letter in 250: only the matching ones', async () => {
    const matching: string[] = []
    for (let i = 0; i < 1000; i += 500) {
      await b.queue.addBulk(Array.from({ length: 500 }, () => ({ task_type: 'mail', max_retries: 0 })))
      const d = await store.deliver('default', 'w', 500)
      for (const [k, j] of d.jobs.entries()) {
        const message = (i + k) % 250 === 3 ? `Disk FULL on host ${k}` : 'upstream timeout'
        if (message.startsWith('Disk')) matching.push(j.id)
        await store.fail('default', j.id, j.epoch, 'permanent', { message, worker: 'w', attempt: 1 }, 0)
      }
    }
    const measure = meter(b.redis)
    const r = await measure(() => b.queue.listDlq({ error_contains: 'disk full', limit: 50 }))
    expect(r.value.items.map((j) => j.id).sort()).toEqual(matching.sort())
    expect(r.value.items.every((j) => j.dlq_entry !== '' && j.failed_at === clock.now())).toBe(true)
    expect(r.commands.hgetall).toBe(4)
  })
})

describe('cursor paging against a reference order', () => {
  let b: Bundle
  let store: JobStore
  let clock: FakeClock
  const QUEUES = ['a1', 'B2', 'c_3']
  // Caller ids whose byte order differs from any case-insensitive or numeric order; each is
  // used in every queue, so ties on (score, id) are broken by the queue.
  const OWN_IDS = ['Zed', 'alpha', 'a-b', 'a.b', 'a_b', 'B9', 'b9', 'x', 'X-1', 'x.1']

  beforeEach(async () => {
    clock = new FakeClock()
    b = await setup({ clock })
    store = b.queue.store
    const t0 = clock.t
    for (const queue of QUEUES) {
      // The same times in every queue: the same id in two queues ties on (score, id).
      clock.t = t0
      // One call each: the stream entries of a call share a millisecond (ties broken by id).
      await b.queue.addBulk(
        OWN_IDS.map((id, i) => ({
          id,
          queue,
          task_type: i % 3 ? 'a' : 'b',
          priority: PRIORITIES[i % 3],
        })),
      )
      const generated = await b.queue.addBulk(
        Array.from({ length: 24 }, (_, i) => ({
          queue,
          task_type: i % 4 ? 'a' : 'b',
          priority: PRIORITIES[i % 3],
          delay_ms: i % 6 === 5 ? 60_000 : undefined,
        })),
      )
      const d = await store.deliver(queue, 'w', 18)
      // Same clock for most moves (index ties), a later one for some.
      for (const [k, j] of d.jobs.entries()) {
        if (k % 6 === 0) await store.complete(queue, [{ id: j.id, epoch: j.epoch, result: '1' }])
        else if (k % 6 === 1)
          await store.fail(
            queue,
            j.id,
            j.epoch,
            'permanent',
            { message: `Disk full ${k}`, worker: 'w', attempt: 1 },
            0,
          )
        else if (k % 6 === 2)
          await store.fail(
            queue,
            j.id,
            j.epoch,
            'permanent',
            { message: 'timeout', worker: 'w', attempt: 1 },
            0,
          )
        else if (k % 6 === 3)
          await store.fail(queue, j.id, j.epoch, 'retry', { message: 'again', worker: 'w', attempt: 1 }, 5000)
        if (k === 9) clock.advance(1000)
      }
      await b.queue.cancel(generated[5]!.job.id, queue) // a scheduled one
    }
  })
  afterEach(() => b.cleanup())

  type Row = { queue: string; id: string; state: JobState; type: string; score: number; error: string }

  /** Every job with its listing score, read straight from Redis. */
  async function reference(): Promise<Row[]> {
    const rows: Row[] = []
    for (const queue of QUEUES) {
      const prefix = `${store.keys.base(queue)}:job:`
      await scanKeys(b.redis, `${prefix}*`, async (keys) => {
        for (const key of keys) {
          const id = key.slice(prefix.length)
          const h = await b.redis.hgetall(key)
          const state = h[F.state] as JobState
          const score =
            state === 'queued' || state === 'active'
              ? Number(jobEntry(h)!.split('-')[0])
              : Number(await b.redis.zscore(store.keys.index(queue, state), id))
          rows.push({ queue, id, state, type: h[F.task_type]!, score, error: h[F.error] ?? '' })
        }
      })
    }
    // Newest first: score, then id, then queue, each descending (by bytes).
    const desc = (x: string, y: string) => (x < y ? 1 : x > y ? -1 : 0)
    return rows.sort((x, y) => y.score - x.score || desc(x.id, y.id) || desc(x.queue, y.queue))
  }

  async function pageAll(
    list: (
      cursor?: string,
    ) => Promise<{ items: Array<{ id: string; queue: string }>; next_cursor: string | null }>,
  ) {
    const out: string[] = []
    let cursor: string | undefined
    for (let pages = 0; pages < 2000; pages++) {
      const page = await list(cursor)
      out.push(...page.items.map((j) => `${j.queue}/${j.id}`))
      if (!page.next_cursor) return out
      cursor = page.next_cursor
    }
    throw new Error('paging did not end')
  }

  const BOUNDS = [
    { perCall: 2000, perPage: 100_000, limits: [1, 4, 50] },
    { perCall: 1, perPage: 100_000, limits: [7] },
    { perCall: 3, perPage: 7, limits: [5] },
  ]

  it('lists jobs: every filter and work bound gives the reference order, no repeat, no gap', async () => {
    const ref = await reference()
    expect(new Set(ref.map((r) => r.state))).toEqual(
      new Set(['queued', 'active', 'scheduled', 'retrying', 'completed', 'failed', 'cancelled']),
    )
    const filters: Array<{ queue?: string; state?: JobState; task_type?: string }> = [
      {},
      { state: 'queued' },
      { state: 'active' },
      { state: 'completed' },
      { state: 'failed' },
      { state: 'scheduled' },
      { task_type: 'b' },
      { task_type: 'b', state: 'queued' },
      { queue: 'B2' },
      { queue: 'c_3', task_type: 'a' },
    ]
    for (const bound of BOUNDS) {
      Object.assign(store.listScan, { perCall: bound.perCall, perPage: bound.perPage })
      for (const f of filters) {
        const expected = ref
          .filter(
            (r) =>
              (!f.queue || r.queue === f.queue) &&
              (!f.state || r.state === f.state) &&
              (!f.task_type || r.type === f.task_type),
          )
          .map((r) => `${r.queue}/${r.id}`)
        expect(expected.length).toBeGreaterThan(0)
        for (const limit of bound.limits) {
          const got = await pageAll((cursor) => b.queue.listJobs({ ...f, limit, cursor }))
          expect({ f, bound, limit, got }).toEqual({ f, bound, limit, got: expected })
        }
      }
    }
  })

  it('lists dead letters: every filter and work bound gives the reference order', async () => {
    const ref = (await reference()).filter((r) => r.state === 'failed')
    expect(ref.length).toBeGreaterThan(5)
    // Score: the DLQ entry's ms (the failure time, or Redis's time when that ms was taken).
    const entries = new Map<string, { score: number; failedAt: number }>()
    for (const queue of QUEUES)
      for (const [entry, fields] of await b.redis.xrange(store.keys.dlq(queue), '-', '+'))
        entries.set(`${queue}/${fields[1]}`, {
          score: Number(entry.split('-')[0]),
          failedAt: Number(fields[fields.indexOf('failed_at') + 1]),
        })
    const desc = (x: string, y: string) => (x < y ? 1 : x > y ? -1 : 0)
    const rows = ref
      .map((r) => ({ ...r, ...entries.get(`${r.queue}/${r.id}`)! }))
      .sort((x, y) => y.score - x.score || desc(x.id, y.id) || desc(x.queue, y.queue))
    const now = clock.now()
    const filters: Array<{
      queue?: string
      task_type?: string
      error_contains?: string
      older_than_ms?: number
    }> = [
      {},
      { task_type: 'b' },
      { error_contains: 'DISK' },
      { older_than_ms: 0 },
      { older_than_ms: 500 },
      { queue: 'B2', error_contains: 'disk f' },
    ]
    for (const bound of BOUNDS) {
      Object.assign(store.listScan, { perCall: bound.perCall, perPage: bound.perPage })
      for (const f of filters) {
        const expected = rows
          .filter(
            (r) =>
              (!f.queue || r.queue === f.queue) &&
              (!f.task_type || r.type === f.task_type) &&
              (!f.error_contains || r.error.toLowerCase().includes(f.error_contains.toLowerCase())) &&
              (f.older_than_ms === undefined ||
                (r.score <= now - f.older_than_ms && r.failedAt <= now - f.older_than_ms)),
          )
          .map((r) => `${r.queue}/${r.id}`)
        expect(expected.length).toBeGreaterThan(0)
        for (const limit of bound.limits) {
          const got = await pageAll((cursor) => b.queue.listDlq({ ...f, limit, cursor }))
          expect({ f, bound, limit, got }).toEqual({ f, bound, limit, got: expected })
        }
      }
    }
  })

  it('a page stopped by its work bound ends short, with a cursor (paging on from it: the tests above)', async () => {
    Object.assign(store.listScan, { perCall: 2, perPage: 4 })
    const page = await b.queue.listJobs({ task_type: 'b', state: 'completed', limit: 50 })
    expect(page.items.length).toBeLessThan(50)
    expect(page.next_cursor).not.toBeNull()
  })

  it('continues after the cursor while jobs change: no repeat, newer jobs not mixed in', async () => {
    for (let round = 0; round < 6; round++) {
      const first = await b.queue.listJobs({ state: 'queued', limit: 3 })
      const rest = (await reference()).filter((r) => r.state === 'queued').map((r) => `${r.queue}/${r.id}`)
      await b.queue.addBulk(Array.from({ length: 5 }, () => ({ task_type: 'a', queue: 'B2' })))
      const d = await store.deliver('a1', 'w', 1) // the oldest queued job of a1 starts
      const second = await b.queue.listJobs({ state: 'queued', limit: 3, cursor: first.next_cursor! })
      const ids = (p: typeof first) => p.items.map((j) => `${j.queue}/${j.id}`)
      expect(ids(first)).toEqual(rest.slice(0, 3))
      const started = d.jobs.map((j) => `a1/${j.id}`)
      expect(ids(second)).toEqual(
        rest
          .slice(3)
          .filter((x) => !started.includes(x))
          .slice(0, 3),
      )
    }
  })
})

describe('stats', () => {
  let b: Bundle
  let store: JobStore
  let clock: FakeClock
  beforeEach(async () => {
    clock = new FakeClock()
    b = await setup({ clock })
    store = b.queue.store
  })
  afterEach(() => b.cleanup())

  it('counts the lag when Redis reports none (a waiting entry deleted), never NaN', async () => {
    const added = await b.queue.addBulk([{ task_type: 'echo' }, { task_type: 'echo' }, { task_type: 'echo' }])
    await store.deliver('default', 'w', 1)
    // Cancelling a waiting job deletes its entry after the group's last-delivered id.
    await b.queue.cancel(added[2]!.job.id)
    const groups = (await b.redis.xinfo('GROUPS', store.keys.stream('default', 'normal'))) as unknown[][]
    const g = groups[0]!
    expect(g[g.indexOf('name') + 1]).toBe(GROUP)
    expect(g[g.indexOf('lag') + 1]).toBeNull() // the state: Redis does not know the lag
    const s = await store.queueStats('default')
    expect(s.streams.normal).toMatchObject({ length: 2, pending: 1, lag: 1 })
    expect(s.counts).toMatchObject({ queued: 1, active: 1, cancelled: 1 })
    expect(typeof s.oldest_waiting_ms).toBe('number')
    for (const pr of PRIORITIES) expect(Number.isFinite(s.streams[pr].lag)).toBe(true)
    expect(JSON.stringify(await b.queue.stats())).not.toContain('"lag":null') // NaN would serialise as null
    await b.queue.add('echo')
    expect((await store.queueStats('default')).streams.normal).toMatchObject({
      length: 3,
      pending: 1,
      lag: 2,
    })
  })

  it('charts completed and failed per minute, summed over queues', async () => {
    const finish = async (queue: string, ok: boolean) => {
      await b.queue.add('echo', {}, { queue, max_retries: 0 })
      const [j] = (await store.deliver(queue, 'w', 1)).jobs
      if (ok) await store.complete(queue, [{ id: j!.id, epoch: j!.epoch, result: '1' }])
      else await store.fail(queue, j!.id, j!.epoch, 'permanent', { message: 'x', worker: 'w', attempt: 1 }, 0)
    }
    clock.t = Math.floor(clock.t / 60000) * 60000 + 5000
    await finish('q1', true)
    await finish('q2', true)
    clock.advance(60_000)
    await finish('q2', false)
    clock.advance(60_000)
    expect(await store.throughput(['q1', 'q2'], 3)).toEqual([
      { minute: clock.t - 5000 - 120_000, completed: 2, failed: 0 },
      { minute: clock.t - 5000 - 60_000, completed: 0, failed: 1 },
      { minute: clock.t - 5000, completed: 0, failed: 0 },
    ])
  })

  it('the read-only functions write nothing', async () => {
    await seedQueues(b, 2)
    const snapshot = async () => {
      const out: Record<string, string> = {}
      for (const key of await b.keys())
        out[key] = ((await b.redis.dumpBuffer(key)) ?? Buffer.alloc(0)).toString('hex')
      return out
    }
    const before = await snapshot()
    expect([...READ_ONLY_SCRIPTS].sort()).toEqual([
      'dlq_stats',
      'history',
      'list',
      'queue_stats',
      'throughput',
    ])
    await b.queue.stats()
    await b.queue.throughput(5)
    await b.queue.listJobs({ state: 'queued', task_type: 'echo', limit: 2 })
    await b.queue.listJobs({ state: 'active' })
    await b.queue.listDlq({ error_contains: 'boom', older_than_ms: 0 })
    await b.queue.dlqStats({ priority: 'high' })
    await b.queue.statsHistory('24h')
    expect(await snapshot()).toEqual(before)
  })
})

/**
 * Redis 7 reports a consumer group's lag as nil (XINFO GROUPS) when an entry at or after the
 * group's last-delivered id was deleted, or when the group's read counter is unknown (XGROUP
 * SETID / CREATE at an id inside the stream). Each state is made for real, the raw reply checked
 * to hold a nil lag (the control: the state the reads must survive), then GET /queues, /stats
 * and /metrics and the store's read answer with the lag counted -- or null where it cannot be
 * counted within the work bound -- and never 500.
 */
describe('a consumer group whose lag Redis reports as nil', () => {
  let b: ApiBundle
  let store: JobStore
  beforeEach(async () => {
    b = await apiSetup()
    store = b.queue.store
  })
  afterEach(() => b.cleanup())

  const stream = () => store.keys.stream('default', 'normal')
  async function rawGroup(): Promise<Record<string, unknown>> {
    const groups = (await b.redis.xinfo('GROUPS', stream())) as unknown[][]
    const g = groups.find((x) => x[x.indexOf('name') + 1] === GROUP)!
    const out: Record<string, unknown> = {}
    for (let i = 0; i < g.length; i += 2) out[String(g[i])] = g[i + 1]
    return out
  }
  async function deliver(n: number) {
    for (let left = n; left > 0; ) {
      const got = (await store.deliver('default', 'w', Math.min(left, 500))).jobs.length
      expect(got).toBeGreaterThan(0)
      left -= got
    }
  }
  /** The normal stream's row from the store, GET /queues and GET /stats (all 200), and /metrics' lag sample. */
  async function reads() {
    const direct = (await store.queueStats('default')).streams.normal
    const q = await b.app.inject({ method: 'GET', url: '/queues' })
    const st = await b.app.inject({ method: 'GET', url: '/stats' })
    const m = await b.app.inject({ method: 'GET', url: '/metrics' })
    expect([q.statusCode, st.statusCode, m.statusCode], `${q.body} ${st.body}`).toEqual([200, 200, 200])
    const row = (items: QueueStats[]) => items.find((x) => x.queue === 'default')!.streams.normal
    const sample = m.body.split('\n').find((l) => /stream_lag\{.*queue="default".*priority="normal"/.test(l))
    expect(m.body).not.toContain('NaN')
    return {
      direct,
      queues: row(q.json().items),
      stats: row(st.json().queues),
      metric: sample === undefined ? null : Number(sample.split(' ').pop()),
    }
  }

  it('a job completed before an older one (its entry, the last delivered, deleted): the lag is counted', async () => {
    await b.queue.addBulk([{ task_type: 'echo' }, { task_type: 'echo' }, { task_type: 'echo' }])
    const [, second] = (await store.deliver('default', 'w', 2)).jobs
    await store.complete('default', [{ id: second!.id, epoch: second!.epoch, result: '1' }])
    expect(await rawGroup()).toMatchObject({ lag: null, pending: 1 }) // the state
    const r = await reads()
    expect(r.direct).toMatchObject({ length: 2, pending: 1, lag: 1 })
    expect(r.queues.lag).toBe(1)
    expect(r.stats.lag).toBe(1)
    expect(r.metric).toBe(1)
  })

  it('a group created (XGROUP CREATE) or moved (SETID) at an id inside the stream, read counter unknown: the entries after it, not length - pending', async () => {
    const added = await b.queue.addBulk(Array.from({ length: 4 }, () => ({ task_type: 'echo' })))
    const second = (await b.queue.getJob(added[1]!.job.id))!
    const entry = jobEntry(await b.redis.hgetall(store.keys.job('default', second.id)))!
    // No job was delivered yet: the group does not exist; it is made at the second entry.
    await b.redis.xgroup('CREATE', stream(), GROUP, entry)
    expect(await rawGroup()).toMatchObject({ lag: null, 'entries-read': null, pending: 0 }) // the state
    let r = await reads()
    // length - pending (the previous derivation) would say 4: two entries lie after the group's id.
    expect(r.direct).toMatchObject({ length: 4, pending: 0, lag: 2 })
    expect([r.queues.lag, r.stats.lag, r.metric]).toEqual([2, 2, 2])
    // Moved back to the first entry, then to the second: the same state by SETID.
    await b.redis.xgroup('SETID', stream(), GROUP, '0')
    expect((await reads()).direct.lag).toBe(4)
    await b.redis.xgroup('SETID', stream(), GROUP, entry)
    expect(await rawGroup()).toMatchObject({ lag: null, 'entries-read': null })
    r = await reads()
    expect([r.direct.lag, r.queues.lag, r.stats.lag, r.metric]).toEqual([2, 2, 2, 2])
  })

  it('past the count bound on one side: counted from the other (length less the entries up to the id)', async () => {
    await b.queue.addBulk(Array.from({ length: 1100 }, () => ({ task_type: 'echo' })))
    await deliver(50)
    const waiting = await b.queue.listJobs({ state: 'queued', limit: 1 })
    await b.queue.cancel(waiting.items[0]!.id)
    expect(await rawGroup()).toMatchObject({ lag: null, pending: 50 })
    const r = await reads()
    expect(r.direct).toMatchObject({ length: 1099, pending: 50, lag: 1049 })
    expect([r.queues.lag, r.stats.lag, r.metric]).toEqual([1049, 1049, 1049])
  })

  it('past the bound on both sides: null in the API (documented), no metric sample, still 200', async () => {
    await b.queue.addBulk(Array.from({ length: 2100 }, () => ({ task_type: 'echo' })))
    await deliver(1050)
    const waiting = await b.queue.listJobs({ state: 'queued', limit: 1 })
    await b.queue.cancel(waiting.items[0]!.id)
    expect(await rawGroup()).toMatchObject({ lag: null, pending: 1050 })
    const r = await reads()
    expect(r.direct).toMatchObject({ length: 2099, pending: 1050, lag: null })
    expect(typeof r.direct.oldest_waiting_ms).toBe('number')
    expect([r.queues.lag, r.stats.lag, r.metric]).toEqual([null, null, null])
    // The other numbers stay: queued is counted from the stream, as before.
    expect((await store.queueStats('default')).counts.queued).toBe(1049)
  }, 30_000)

  it('a partitioned queue sums its partitions: a counted lag adds up, an unknown one makes the sum unknown', async () => {
    await b.queue.setPartitions('pq', 2)
    // Keyless calls go to the partitions in turn: three jobs in one, two in the other.
    const first = await b.queue.addBulk(Array.from({ length: 3 }, () => ({ task_type: 'echo', queue: 'pq' })))
    const p1 = first[0]!.job.queue
    const second = await b.queue.addBulk([
      { task_type: 'echo', queue: 'pq' },
      { task_type: 'echo', queue: 'pq' },
    ])
    expect(second[0]!.job.queue).not.toBe(p1)
    const [, done] = (await store.deliver(p1, 'w', 2)).jobs
    await store.complete(p1, [{ id: done!.id, epoch: done!.epoch, result: '1' }])
    const rowOf = async () => {
      const r = await b.app.inject({ method: 'GET', url: '/queues' })
      expect(r.statusCode).toBe(200)
      return (r.json().items as QueueStats[]).find((x) => x.queue === 'pq')!
    }
    expect((await store.queueStats(p1)).streams.normal.lag).toBe(1) // Redis said nil: counted
    expect((await rowOf()).streams.normal).toMatchObject({ length: 4, pending: 1, lag: 3 })
    // Past the bound on both sides in the first partition (2100 entries, the group moved to the
    // 1050th): the sum is unknown.
    const s1 = store.keys.stream(p1, 'normal')
    const ids: string[] = []
    for (let i = 0; i < 2100; i += 300) {
      const p = b.redis.pipeline()
      for (let k = i; k < i + 300; k++) p.xadd(s1, '*', 'id', `x${k}`)
      for (const [, id] of (await p.exec()) ?? []) ids.push(id as string)
    }
    await b.redis.xgroup('SETID', s1, GROUP, ids[1049]!)
    expect((await store.queueStats(p1)).streams.normal.lag).toBeNull()
    const row = await rowOf()
    expect(row.partitions).toBe(2)
    expect(row.streams.normal.lag).toBeNull()
  }, 30_000)
})
