/**
 * The jobs list at any size (issue 22, ADR 0033): totals per filter from the per-state counts,
 * jump to a time, the bounded payload filter (the search's engine), and the bulk delete with its
 * refusals and its safety rule (invariant 36: it never deletes a job that is not finished).
 */
import { afterEach, describe, expect, it } from 'vitest'
import { BULK_JOBS_TASK, BULK_STATES } from '../src/queue/system-tasks.ts'
import { type ApiBundle, apiSetup, bearer, TOKEN_SETTING } from './api-helpers.ts'
import { FakeClock, snapshot } from './helpers.ts'

const Q = 'scale'
const Q2 = 'scale2'
let b: ApiBundle
afterEach(() => b?.cleanup())

const get = (url: string, headers?: Record<string, string>) => b.app.inject({ method: 'GET', url, headers })
const post = (url: string, payload: unknown, headers?: Record<string, string>) =>
  b.app.inject({ method: 'POST', url, payload: payload as never, headers })

/** Takes `n` jobs of `queue` through the store: started, then completed, failed or cancelled. */
async function finish(queue: string, n: number, how: 'completed' | 'failed' | 'cancelled', type = 'work') {
  const ids: string[] = []
  for (let i = 0; i < n; i++) {
    const { job } = await b.queue.add(type, { i }, { queue, max_retries: 0 })
    ids.push(job.id)
    if (how === 'cancelled') {
      await b.queue.store.cancel(queue, job.id)
      continue
    }
    const [got] = (await b.queue.store.deliver(queue, 'c1', 1)).jobs
    if (how === 'completed')
      await b.queue.store.complete(queue, [{ id: job.id, epoch: got!.epoch, result: '1' }])
    else
      await b.queue.store.fail(
        queue,
        job.id,
        got!.epoch,
        'permanent',
        { message: 'boom', worker: 'c1', attempt: 1 },
        0,
      )
  }
  return ids
}

describe('GET /jobs at scale', () => {
  it('answers a total per filter from the per-state counts (null with a task type)', async () => {
    b = await apiSetup()
    await finish(Q, 3, 'completed')
    await finish(Q, 2, 'failed')
    await finish(Q2, 4, 'cancelled')
    for (let i = 0; i < 5; i++) await b.queue.add('work', { i }, { queue: Q })
    await b.queue.add('other', {}, { queue: Q2, delay_ms: 60_000 })
    const total = async (qs: string) => (await get(`/jobs?limit=2&${qs}`)).json().total
    expect(await total('')).toBe(15)
    expect(await total(`queue=${Q}`)).toBe(10)
    expect(await total(`queue=${Q}&status=completed`)).toBe(3)
    expect(await total('status=queued')).toBe(5)
    expect(await total('status=cancelled')).toBe(4)
    expect(await total(`queue=${Q2}&status=scheduled`)).toBe(1)
    expect(await total('task_type=work')).toBeNull()
    const by = (await get(`/jobs?limit=1&queue=${Q}`)).json().by_state
    expect(by).toMatchObject({ completed: 3, failed: 2, queued: 5, cancelled: 0, active: 0 })
    expect((await get('/jobs?limit=1&status=failed')).json().by_state).toEqual({ failed: 2 })
    // The total does not depend on the page.
    const page = (await get(`/jobs?queue=${Q}&limit=2`)).json()
    expect(page.items).toHaveLength(2)
    expect((await get(`/jobs?queue=${Q}&limit=2&cursor=${page.next_cursor}`)).json().total).toBe(10)
  })

  it('from= starts the list at a time: jobs listed at or before it, newest first', async () => {
    const clock = new FakeClock()
    b = await apiSetup({}, { clock })
    const at: number[] = []
    for (let i = 0; i < 10; i++) {
      at.push(clock.now())
      await b.queue.add('work', { i }, { queue: Q, delay_ms: 3_600_000 })
      clock.advance(1000)
    }
    const ids = async (qs: string) =>
      (await get(`/jobs?queue=${Q}&status=scheduled&${qs}`))
        .json()
        .items.map((j: { payload: { i: number } }) => j.payload.i)
    expect(await ids('')).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1, 0])
    expect(await ids(`from=${at[6]}`)).toEqual([6, 5, 4, 3, 2, 1, 0])
    expect(await ids(`from=${at[6]! + 999}`)).toEqual([6, 5, 4, 3, 2, 1, 0])
    expect(await ids(`from=${at[0]! - 1}`)).toEqual([])
    // Paged from there: the cursor carries on, the pages neither repeat nor skip.
    const p1 = (await get(`/jobs?queue=${Q}&status=scheduled&from=${at[6]}&limit=4`)).json()
    const p2 = (
      await get(`/jobs?queue=${Q}&status=scheduled&from=${at[6]}&limit=4&cursor=${p1.next_cursor}`)
    ).json()
    expect([...p1.items, ...p2.items].map((j: { payload: { i: number } }) => j.payload.i)).toEqual([
      6, 5, 4, 3, 2, 1, 0,
    ])
    // Without a state filter too (the index zsets and the streams merged).
    expect((await get(`/jobs?queue=${Q}&from=${at[2]}`)).json().items).toHaveLength(3)
  })

  it('order=asc lists oldest first: the reverse of the newest-first walk, paged, from a time', async () => {
    const clock = new FakeClock()
    b = await apiSetup({}, { clock })
    const at: number[] = []
    for (let i = 0; i < 10; i++) {
      at.push(clock.now())
      await b.queue.add('work', { i }, { queue: Q, delay_ms: 3_600_000 })
      clock.advance(1000)
    }
    const ii = async (qs: string) =>
      (await get(`/jobs?queue=${Q}&status=scheduled&${qs}`))
        .json()
        .items.map((j: { payload: { i: number } }) => j.payload.i)
    expect(await ii('order=asc')).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    expect(await ii(`order=asc&from=${at[6]}`)).toEqual([6, 7, 8, 9])
    expect(await ii(`order=asc&from=${at[6]! + 1}`)).toEqual([7, 8, 9])
    expect(await ii('order=desc')).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1, 0])
  })

  it('order=asc over every source (streams: queued and active; indexes), two queues, paged', async () => {
    b = await apiSetup()
    await finish(Q, 3, 'completed')
    await finish(Q2, 2, 'failed')
    for (let i = 0; i < 4; i++)
      await b.queue.add('work', { i }, { queue: Q, priority: i % 2 ? 'high' : 'low' })
    for (let i = 0; i < 3; i++) await b.queue.add('work', { i }, { queue: Q2 })
    await b.queue.store.deliver(Q, 'c1', 2)
    await b.queue.add('work', {}, { queue: Q2, delay_ms: 60_000 })
    const key = (j: { queue: string; id: string }) => `${j.queue}/${j.id}`
    const all = async (qs: string) => {
      const out: string[] = []
      let cursor = ''
      for (;;) {
        const page = (await get(`/jobs?limit=3&${qs}${cursor ? `&cursor=${cursor}` : ''}`)).json()
        out.push(...page.items.map(key))
        if (!page.next_cursor) return out
        cursor = page.next_cursor
      }
    }
    const desc = await all('')
    expect(desc).toHaveLength(13)
    expect(await all('order=asc')).toEqual([...desc].reverse())
    for (const st of ['queued', 'active', 'completed']) {
      const d = await all(`status=${st}`)
      expect(d.length).toBeGreaterThan(0)
      expect(await all(`status=${st}&order=asc`)).toEqual([...d].reverse())
    }
  })

  it('where= filters by payload within a queue or type, bounded, saying what it scanned', async () => {
    b = await apiSetup({ searchLiveScan: 100 })
    await b.queue.addBulk(
      Array.from({ length: 150 }, (_, i) => ({
        task_type: 'work',
        payload: { user: { id: i % 3 }, i },
        queue: Q,
      })),
    )
    await b.queue.add('work', { user: { id: 1 } }, { queue: Q2 })
    const r = (await get(`/jobs?queue=${Q}&where=user.id%3D1&limit=50`)).json()
    // At most SEARCH_LIVE_SCAN (100) read: about a third of them match, fewer than the 50 there are.
    expect(r.scan).toEqual({ scanned: 100, capped: true, limit: 100 })
    expect(r.items.length).toBeGreaterThan(20)
    expect(r.items.length).toBeLessThan(50)
    for (const j of r.items) expect(j).toMatchObject({ queue: Q, payload: { user: { id: 1 } } })
    expect(r.history).toBe('disabled')
    expect(r.total).toBeNull()
    const byType = (await get('/jobs?task_type=work&where=user.id%3D1&limit=3')).json()
    expect(byType.items).toHaveLength(3)
    expect(byType.next_cursor).toBeTruthy()
    const more = (
      await get(`/jobs?task_type=work&where=user.id%3D1&limit=3&cursor=${byType.next_cursor}`)
    ).json()
    expect(more.items.map((j: { id: string }) => j.id)).not.toContain(byType.items[0].id)
  })

  it('where= answers every match when the scan is not cut short', async () => {
    b = await apiSetup({ searchLiveScan: 1000 })
    for (let i = 0; i < 30; i++) await b.queue.add('work', { user: { id: i % 3 } }, { queue: Q })
    const r = (await get(`/jobs?queue=${Q}&where=user.id%3D2`)).json()
    expect(r.scan).toEqual({ scanned: 30, capped: false, limit: 1000 })
    expect(r.items).toHaveLength(10)
  })

  it('refuses bad parameters with a 400 naming them, reading nothing', async () => {
    b = await apiSetup()
    const bad = [
      '/jobs?from=-1',
      '/jobs?from=soon',
      '/jobs?from=99999999999999999',
      '/jobs?where=user.id%3D1', // no queue nor task type
      `/jobs?queue=${Q}&where=${encodeURIComponent('a..b=1')}`,
      `/jobs?queue=${Q}&where=${encodeURIComponent('a={"x":1}')}`,
      `/jobs?queue=${Q}&where=a%3D1&cursor=nonsense`,
      '/jobs?sort=sideways',
      '/jobs?order=up',
      `/jobs?queue=${Q}&where=a%3D1&order=asc`,
    ]
    for (const url of bad) {
      const r = await get(url)
      expect({ url, status: r.statusCode, code: r.json().code }).toEqual({
        url,
        status: 400,
        code: 'VALIDATION',
      })
    }
  })
})

describe('POST /jobs/bulk action=delete', () => {
  it('deletes the finished jobs of a queue matching the filter; never one waiting or running', async () => {
    b = await apiSetup()
    const done = await finish(Q, 3, 'completed')
    const failed = await finish(Q, 2, 'failed')
    const cancelled = await finish(Q, 2, 'cancelled')
    const other = await finish(Q2, 2, 'completed')
    const { job: running } = await b.queue.add('work', {}, { queue: Q })
    await b.queue.store.deliver(Q, 'c1', 1)
    const { job: queued } = await b.queue.add('work', {}, { queue: Q })
    const { job: later } = await b.queue.add('work', {}, { queue: Q, delay_ms: 60_000 })
    const r = await b.queue.bulkJobs('delete', { queue: Q }, { ratePerSec: 100_000 })
    expect(r.done).toBe(7)
    for (const id of [...done, ...failed, ...cancelled]) expect(await b.queue.getJob(id, Q)).toBeNull()
    for (const id of other) expect((await b.queue.getJob(id, Q2))?.state).toBe('completed')
    expect((await b.queue.getJob(running.id, Q))?.state).toBe('active')
    expect((await b.queue.getJob(queued.id, Q))?.state).toBe('queued')
    expect((await b.queue.getJob(later.id, Q))?.state).toBe('scheduled')
    // The DLQ lost its entries with them.
    expect((await get(`/dlq?queue=${Q}`)).json().items).toEqual([])
  })

  it('one state only, by type and error text', async () => {
    b = await apiSetup()
    const done = await finish(Q, 2, 'completed')
    const failed = await finish(Q, 2, 'failed')
    const r = await b.queue.bulkJobs('delete', { queue: Q, state: 'failed', error_contains: 'BOOM' })
    expect(r.done).toBe(2)
    for (const id of failed) expect(await b.queue.getJob(id, Q)).toBeNull()
    for (const id of done) expect((await b.queue.getJob(id, Q))?.state).toBe('completed')
  })

  it('the route starts the paced system job (admin); refusals are clear and write nothing', async () => {
    b = await apiSetup({ apiTokens: TOKEN_SETTING })
    await finish(Q, 2, 'completed')
    const before = await snapshot(b)
    const refusals: Array<[unknown, Record<string, string>, number, string, RegExp]> = [
      [{ action: 'delete', queue: Q }, bearer('write'), 403, 'FORBIDDEN', /admin/],
      [{ action: 'delete' }, bearer('admin'), 400, 'VALIDATION', /queue is required/],
      [
        { action: 'delete', queue: Q, state: 'queued' },
        bearer('admin'),
        400,
        'VALIDATION',
        /finished jobs only/,
      ],
      [
        { action: 'delete', queue: Q, state: 'active' },
        bearer('admin'),
        400,
        'VALIDATION',
        /finished jobs only/,
      ],
      [{ action: 'delete', queue: Q, rate_per_sec: 0 }, bearer('admin'), 400, 'VALIDATION', /rate_per_sec/],
      [{ action: 'purge', queue: Q }, bearer('admin'), 400, 'VALIDATION', /action/],
    ]
    for (const [body, headers, status, code, message] of refusals) {
      const r = await post('/jobs/bulk', body, headers)
      expect({ body, status: r.statusCode, code: r.json().code }).toEqual({ body, status, code })
      expect(r.json().message).toMatch(message)
    }
    const keys = await snapshot(b)
    // The audit stream records refusals (ADR 0026); nothing else changed.
    for (const k of Object.keys(keys)) if (k.endsWith(':audit')) delete keys[k]
    for (const k of Object.keys(before)) if (k.endsWith(':audit')) delete before[k]
    expect(keys).toEqual(before)
    const ok = await post('/jobs/bulk', { action: 'delete', queue: Q, state: 'completed' }, bearer('admin'))
    expect(ok.statusCode).toBe(202)
    expect(ok.json().job).toMatchObject({ task_type: BULK_JOBS_TASK, queue: Q, priority: 'high' })
    expect(ok.json().job.payload).toMatchObject({
      action: 'delete',
      filter: { queue: Q, state: 'completed' },
    })
  })

  it('the system job deletes on a worker, its log showing progress', async () => {
    b = await apiSetup()
    await finish(Q, 5, 'completed')
    const r = await post('/jobs/bulk', { action: 'delete', queue: Q, rate_per_sec: 1000 })
    expect(r.statusCode).toBe(202)
    const w = b.worker({ workerQueues: [Q] })
    await w.start()
    try {
      const { waitFor } = await import('./helpers.ts')
      const job = await waitFor(async () => {
        const j = (await get(`/jobs/${r.json().job.id}?queue=${Q}`)).json()
        return j.state === 'completed' ? j : null
      })
      expect(job.result).toMatchObject({ action: 'delete', done: 5 })
      expect(job.logs.at(-1)).toMatch(/deleted 5 of \d+ examined/)
      expect(
        (await get(`/jobs?queue=${Q}&status=completed`))
          .json()
          .items.map((j: { task_type: string }) => j.task_type),
      ).toEqual([BULK_JOBS_TASK])
    } finally {
      await w.close()
    }
  })
})

describe('invariant 36: a bulk delete never deletes a job that is not finished', () => {
  it('a job retried after the walk read it stays (control: the unguarded delete removes it)', async () => {
    b = await apiSetup()
    const [a, c] = await finish(Q, 2, 'failed')
    // The walk read both as failed; then an operator retried them: they are queued again.
    expect(await b.queue.store.requeue(Q, [a!, c!])).toEqual(['queued', 'queued'])
    expect(await b.queue.store.deleteJob(Q, a!, BULK_STATES.delete)).toBe('state:queued')
    expect((await b.queue.getJob(a!, Q))?.state).toBe('queued')
    // Running now: still left alone, its worker's lease intact.
    const [got] = (await b.queue.store.deliver(Q, 'c1', 1)).jobs
    expect(await b.queue.store.deleteJob(Q, got!.id, BULK_STATES.delete)).toBe('state:active')
    expect((await b.queue.getJob(got!.id, Q))?.state).toBe('active')
    // Negative control: DELETE /jobs/{id}'s unguarded call removes a job in any state.
    const queuedOne = got!.id === a ? c! : a!
    expect(await b.queue.store.deleteJob(Q, queuedOne)).toBe('deleted:queued')
    expect(await b.queue.getJob(queuedOne, Q)).toBeNull()
  })

  it('racing retries: every job a retry moved back to queued survives the bulk delete (20 rounds)', async () => {
    b = await apiSetup()
    let raced = 0
    for (let round = 0; round < 20; round++) {
      const ids = await finish(Q, 30, 'failed')
      const retried = ids.filter((_, i) => i % 2 === 0)
      const [del, answers] = await Promise.all([
        b.queue.bulkJobs('delete', { queue: Q, state: 'failed' }, { ratePerSec: 100_000 }),
        (async () => {
          const out: string[] = []
          for (const id of retried) out.push(...(await b.queue.store.requeue(Q, [id])))
          return out
        })(),
      ])
      raced += answers.filter((x) => x === 'queued').length
      for (const [i, id] of retried.entries()) {
        const job = await b.queue.getJob(id, Q)
        if (answers[i] === 'queued') expect(job?.state).toBe('queued')
        else expect(job).toBeNull()
      }
      expect(del.done + answers.filter((x) => x === 'queued').length).toBe(30)
      await b.queue.emptyQueue(Q, { limit: 10_000 })
    }
    expect(raced).toBeGreaterThan(0)
  })

  it('the script refuses a state list that names an unfinished state, writing nothing', async () => {
    b = await apiSetup()
    const [id] = await finish(Q, 1, 'failed')
    await expect(b.queue.store.deleteJob(Q, id!, ['queued'])).rejects.toThrow(/finished states only/)
    expect((await b.queue.getJob(id!, Q))?.state).toBe('failed')
  })
})
