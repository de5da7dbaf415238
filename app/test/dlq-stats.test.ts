/**
 * GET /dlq/stats: dead letters counted by queue × task type × priority × error class, exact over
 * the whole DLQ (walked in pages in Redis); DLQ listing and purge by priority (seed 004's
 * per-priority views). Real Redis; the 100k measurement prints what a request costs.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { F } from '../src/queue/job.ts'
import type { Worker } from '../src/worker/worker.ts'
import { type ApiBundle, apiSetup, bearer } from './api-helpers.ts'
import { targetEnv, testTarget, waitFor } from './helpers.ts'
import { runCli } from './processes.ts'

let b: ApiBundle
let w: Worker
beforeEach(async () => {
  b = await apiSetup({
    apiTokens: 'read-token-0123456789:read,write-token-0123456789:write,admin-token-0123456789:admin',
  })
  w = b.worker({ workerQueues: ['default', 'other'] } as never)
  await w.start()
})
afterEach(() => b.cleanup())

/** Dead-letters jobs through the real fail path (max_retries 0); their ids. */
async function deadLetter(
  specs: Array<{ type?: string; priority?: 'high' | 'normal' | 'low'; message: string; queue?: string }>,
): Promise<string[]> {
  const ids: string[] = []
  for (const s of specs) {
    const { job } = await b.queue.add(
      'fail',
      { message: s.message, tag: s.type },
      {
        queue: s.queue ?? 'default',
        priority: s.priority,
        max_retries: 0,
      },
    )
    ids.push(`${s.queue ?? 'default'}/${job.id}`)
  }
  await waitFor(
    async () => {
      const states = await Promise.all(
        ids.map(async (qi) => {
          const [q, id] = qi.split('/') as [string, string]
          return (await b.queue.store.getJob(q, id))?.state
        }),
      )
      return states.every((s) => s === 'failed')
    },
    { what: 'dead-lettered' },
  )
  return ids.map((qi) => qi.split('/')[1]!)
}

const get = async (url: string, role: 'read' | 'write' | 'admin' = 'read') =>
  b.app.inject({ method: 'GET', url, headers: bearer(role) })

describe('GET /dlq/stats', () => {
  it('counts by queue × type × priority × class exactly, with filters, the recorded class first', async () => {
    b.queue.store.dlqStatsPage = 3 // several pages per queue
    const ids = await deadLetter([
      { priority: 'high', message: 'TypeError: x is undefined' },
      { priority: 'high', message: 'TypeError: y is undefined' },
      { priority: 'low', message: 'plain failure' },
      { priority: 'low', message: 'ETIMEDOUT: upstream' },
      { priority: 'normal', message: 'no class here: really' },
      { queue: 'other', priority: 'high', message: 'RangeError: too big' },
      { priority: 'high', message: 'TypeError: z' },
      // A prefix that names no kind is the message's own text, never a class (a label).
      { priority: 'normal', message: 'tenant_42: quota exceeded' },
    ])
    // The fail path's recorded class (field ec) wins over the message.
    await b.redis.hset(b.queue.store.keys.job('default', ids[6]!), F.error_class, 'ECONNRESET')
    const res = await get('/dlq/stats')
    expect(res.statusCode).toBe(200)
    const body = res.json()
    expect(body.total).toBe(8)
    const rows = body.groups.map(
      (g: { queue: string; task_type: string; priority: string; error_class: string; count: number }) =>
        `${g.queue} ${g.task_type} ${g.priority} ${g.error_class} ${g.count}`,
    )
    expect(rows).toEqual([
      'default fail high TypeError 2',
      'default fail normal Error 2',
      'default fail high ECONNRESET 1',
      'default fail low ETIMEDOUT 1',
      'default fail low Error 1',
      'other fail high RangeError 1',
    ])
    // The CLI's `dtq dlq stats` answers the same.
    const env = { ...targetEnv(testTarget()), KEY_PREFIX: b.prefix, REDIS_DURABILITY: 'off' }
    expect(JSON.parse(await runCli(env, ['dlq', 'stats', '--json']))).toEqual(body)
    expect(await runCli(env, ['dlq', 'stats', '--queue', 'other'])).toBe(
      `       1  other            fail                 high   RangeError\n       1  in all\n`,
    )
    const high = (await get('/dlq/stats?priority=high')).json()
    expect(high.total).toBe(4)
    const other = (await get('/dlq/stats?queue=other')).json()
    expect(other.groups).toEqual([
      {
        queue: 'other',
        task_type: 'fail',
        priority: 'high',
        error_class: 'RangeError',
        count: 1,
        newest: expect.any(Number),
      },
    ])
    // The newest failure of a group: its latest dead letter's time.
    const failedAt = (await b.queue.store.getJob('default', ids[6]!))!.finished_at!
    const econn = body.groups.find((g: { error_class: string }) => g.error_class === 'ECONNRESET')
    expect(econn.newest).toBe(failedAt)
    // The listing filters by the same class (derived in Redis by the same function).
    const byClass = async (c: string) =>
      (await get(`/dlq?error_class=${c}`))
        .json()
        .items.map((j: { id: string }) => j.id)
        .sort()
    expect(await byClass('TypeError')).toEqual([ids[0]!, ids[1]!].sort())
    expect(await byClass('ECONNRESET')).toEqual([ids[6]!])
    expect(await byClass('Error')).toEqual([ids[2]!, ids[4]!, ids[7]!].sort())
    expect((await get('/dlq?error_class=a%20b')).statusCode).toBe(400)
    expect((await get('/dlq/stats?task_type=nope')).json()).toEqual({ groups: [], total: 0 })
    // A retried job leaves the counts (its entry is no longer current).
    await w.close(500)
    await b.queue.retry(ids[0]!, 'default')
    expect((await get('/dlq/stats?priority=high&queue=default')).json().total).toBe(2)
    // An entry whose job expired (failed retention) is not counted either.
    await b.redis.del(b.queue.store.keys.job('default', ids[1]!))
    expect((await get('/dlq/stats')).json().total).toBe(6)
  })

  it('refuses bad filters with a 4xx', async () => {
    for (const url of ['/dlq/stats?priority=urgent', '/dlq/stats?queue=a%20b', '/dlq/stats?x=1']) {
      expect((await get(url)).statusCode, url).toBe(400)
    }
    expect((await b.app.inject({ method: 'GET', url: '/dlq/stats' })).statusCode).toBe(401)
  })
})

describe('DLQ by priority', () => {
  it('lists by priority (query and seed 004 views) and purges one priority only', async () => {
    await deadLetter([
      { priority: 'high', message: 'a' },
      { priority: 'low', message: 'b' },
      { priority: 'low', message: 'c' },
      { priority: 'normal', message: 'd' },
    ])
    const prios = async (url: string) =>
      (await get(url))
        .json()
        .items.map((j: { priority: string }) => j.priority)
        .sort()
    expect(await prios('/dlq?priority=low')).toEqual(['low', 'low'])
    expect(await prios('/dlq/low')).toEqual(['low', 'low'])
    expect(await prios('/dlq/high')).toEqual(['high'])
    expect(await prios('/dlq/normal?queue=default')).toEqual(['normal'])
    expect((await get('/dlq?priority=bad')).statusCode).toBe(400)
    expect((await get('/dlq/high?priority=low')).statusCode).toBe(400)

    // Seed 004's spellings: search by POST, retry-all by priority with a limit.
    const search = await b.app.inject({
      method: 'POST',
      url: '/dlq/search',
      headers: bearer('read'),
      payload: { task_type: 'fail', priority: 'low', error_contains: 'C', limit: 50 },
    })
    expect(search.json().items.map((j: { error: string }) => j.error)).toEqual(['c'])
    const badSearch = await b.app.inject({
      method: 'POST',
      url: '/dlq/search',
      headers: bearer('read'),
      payload: { priority: 'urgent' },
    })
    expect(badSearch.statusCode).toBe(400)
    const normal = (await get('/dlq/normal')).json().items[0].id
    const retryAll = await b.app.inject({
      method: 'POST',
      url: '/dlq/retry-all',
      headers: bearer('write'),
      payload: { priority: 'normal', limit: 1 },
    })
    expect(retryAll.statusCode).toBe(202)
    expect(retryAll.json().job.payload).toMatchObject({ filter: { priority: 'normal' }, max: 1 })
    await waitFor(
      async () => {
        const redrive = await b.queue.store.getJob('default', retryAll.json().job.id)
        const j = await b.queue.store.getJob('default', normal)
        return redrive?.state === 'completed' && j?.state === 'failed' && j.attempts === 2
      },
      { what: 'the normal dead letter retried once (it fails again: back in the DLQ)' },
    )

    // Bad purge input: 400 and nothing deleted.
    const bad = await b.app.inject({
      method: 'DELETE',
      url: '/dlq?older_than_days=0&priority=urgent',
      headers: bearer('admin'),
    })
    expect(bad.statusCode).toBe(400)
    expect((await get('/dlq/stats')).json().total).toBe(4)

    b.queue.store.dlqStatsPage = 1
    const purged = await b.app.inject({
      method: 'DELETE',
      url: '/dlq/purge?older_than_days=0&priority=low',
      headers: bearer('admin'),
    })
    expect(purged.json()).toEqual({ deleted: 2 })
    expect(await prios('/dlq')).toEqual(['high', 'normal'])
    const rest = await b.app.inject({
      method: 'DELETE',
      url: '/dlq?older_than_days=0',
      headers: bearer('admin'),
    })
    expect(rest.json()).toEqual({ deleted: 2 })
  })
})

describe('GET /dlq/stats at 100k dead letters', () => {
  it('stays exact and bounded per call (prints the cost)', async () => {
    await w.close(500)
    const q = 'bulk'
    const store = b.queue.store
    await b.redis.sadd(store.keys.queues(), q)
    const N = 100_000
    const types = ['email', 'sms', 'push', 'report']
    const prios = ['high', 'normal', 'low']
    const classes = ['TypeError', 'ETIMEDOUT', '', 'RangeError']
    const expected = new Map<string, number>()
    for (let start = 0; start < N; start += 1000) {
      const p = b.redis.pipeline()
      for (let i = start; i < start + 1000; i++) {
        const id = `j${i}`
        const ty = types[i % 4]!
        const pr = prios[i % 3]!
        const ec = classes[(i >> 2) % 4]!
        const entry = `${1_700_000_000_000 + i}-0`
        p.xadd(
          store.keys.dlq(q),
          entry,
          'id',
          id,
          'type',
          ty,
          'error',
          'boom',
          'attempts',
          '1',
          'failed_at',
          '1',
        )
        const h: Record<string, string> = {
          [F.state]: 'failed',
          [F.task_type]: ty,
          [F.priority]: pr,
          [F.error]: 'boom',
          [F.dlq_entry]: entry,
        }
        if (ec) h[F.error_class] = ec
        p.hset(store.keys.job(q, id), h)
        const key = `${ty} ${pr} ${ec || 'Error'}`
        expected.set(key, (expected.get(key) ?? 0) + 1)
      }
      const failed = ((await p.exec()) ?? []).filter(([err]) => err)
      expect(failed.map(([err]) => String(err)).slice(0, 3)).toEqual([])
    }
    expect(await b.redis.xlen(store.keys.dlq(q))).toBe(N)
    const t0 = performance.now()
    const res = await store.dlqStats([q])
    const ms = performance.now() - t0
    expect(res.total).toBe(N)
    expect(res.examined).toBe(N)
    const got = new Map(res.groups.map((g) => [`${g.task_type} ${g.priority} ${g.error_class}`, g.count]))
    expect(got).toEqual(expected)
    // One call's cost: the slowest page, timed alone.
    let worst = 0
    for (let k = 0; k < 5; k++) {
      const s = performance.now()
      await b.queue.store.dlqStats([q], { priority: 'high', task_type: 'sms' }).catch(() => {})
      worst = Math.max(worst, performance.now() - s)
    }
    const perCall = ms / res.rounds
    console.log(
      `dlq stats over ${N} dead letters: ${ms.toFixed(0)} ms in ${res.rounds} calls of ${store.dlqStatsPage} entries ` +
        `(${perCall.toFixed(1)} ms per call incl. round trip); filtered run ${worst.toFixed(0)} ms`,
    )
    expect(res.rounds).toBe(Math.ceil(N / store.dlqStatsPage) + (N % store.dlqStatsPage === 0 ? 1 : 0))
    expect(perCall).toBeLessThan(50)
  }, 120_000)
})
