/**
 * The flow-control API through app.inject() against a real Redis: PUT/GET /queues/{q}/limits,
 * POST /queues/{q}/breakers/{type}; bad bodies 400 changing nothing; a partitioned queue 409;
 * the held state in listings and metrics.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type ApiBundle, apiSetup } from './api-helpers.ts'

let b: ApiBundle
beforeEach(async () => {
  b = await apiSetup()
})
afterEach(() => b.cleanup())

const put = (url: string, payload: unknown) => b.app.inject({ method: 'PUT', url, payload: payload as never })
const post = (url: string, payload: unknown) =>
  b.app.inject({ method: 'POST', url, payload: payload as never })
const get = (url: string) => b.app.inject({ method: 'GET', url })

describe('limits API', () => {
  it('sets, reads and removes limits; held jobs show as held in listings, stats and metrics', async () => {
    const spec = {
      concurrency: 1,
      key_concurrency: 1,
      rate: { limit: 100, window_ms: 1000 },
      types: { mail: { concurrency: 2, breaker: { failures: 5, cooldown_ms: 30_000 } } },
    }
    const r = await put('/queues/lq/limits', spec)
    expect(r.statusCode).toBe(200)
    expect(r.json()).toMatchObject({ queue: 'lq', limits: spec, released: 0, running: { queue: 0 } })
    expect((await get('/queues/lq/limits')).json().breakers.mail).toEqual({
      state: 'closed',
      failures: 0,
      open_until: null,
      probe: null,
    })
    for (let i = 0; i < 3; i++) await post('/jobs', { task_type: 'mail', queue: 'lq' })
    await b.queue.store.deliver('lq', 'probe', 10)
    expect((await get('/jobs?status=held&queue=lq')).json().items).toHaveLength(2)
    expect((await get('/stats')).json().totals.held).toBe(2)
    const view = (await get('/queues/lq/limits')).json()
    expect(view.held).toEqual([{ reason: 'concurrency', scope: 'queue', count: 2 }])
    const metrics = (await get('/metrics')).body
    expect(metrics).toMatch(/\njobs\{queue="lq",state="held"\} 2/)
    expect(metrics).toMatch(/jobs_held_total\{queue="lq"\} 2/)

    const off = await put('/queues/lq/limits', {})
    expect(off.json()).toMatchObject({ limits: {}, released: 2, held: [] })
    expect((await get('/jobs?status=queued&queue=lq')).json().items).toHaveLength(2)
  })

  it('opens and closes a breaker by hand', async () => {
    const opened = await post('/queues/lq/breakers/mail', { action: 'open', open_ms: 60_000 })
    expect(opened.statusCode).toBe(200)
    expect(opened.json().paused.mail).toBeGreaterThan(Date.now())
    expect((await get('/metrics')).body).toMatch(/task_type_paused\{queue="lq",task_type="mail"\} 1/)
    const closed = await post('/queues/lq/breakers/mail', { action: 'close' })
    expect(closed.json().paused).toEqual({})
    await put('/queues/lq/limits', { types: { mail: { breaker: { failures: 2, cooldown_ms: 60_000 } } } })
    await post('/queues/lq/breakers/mail', { action: 'open' })
    expect((await get('/metrics')).body).toMatch(/breaker_state\{queue="lq",task_type="mail"\} 2/)
  })

  it('refuses bad input with a 400 that changes nothing, and a partitioned queue with a 409', async () => {
    await put('/queues/lq/limits', { concurrency: 3 })
    const before = await b.keys()
    const bad: Array<[string, unknown, RegExp]> = [
      ['/queues/lq/limits', { concurrency: 0 }, /concurrency/],
      ['/queues/lq/limits', { rate: { limit: 5 } }, /window_ms/],
      ['/queues/lq/limits', { nope: 1 }, /nope|additional/i],
      ['/queues/lq/limits', { types: { 'bad type': { concurrency: 1 } } }, /task type/],
      ['/queues/lq/limits', { types: { t: { breaker: { failures: 1, cooldown_ms: 1 } } } }, /cooldown_ms/],
      ['/queues/l q/limits', { concurrency: 1 }, /queue/],
    ]
    for (const [url, body, why] of bad) {
      const res = await put(url, body)
      expect(res.statusCode, JSON.stringify(body)).toBe(400)
      expect(JSON.stringify(res.json())).toMatch(why)
    }
    const bb = await post('/queues/lq/breakers/mail', { action: 'explode' })
    expect(bb.statusCode).toBe(400)
    expect(await b.keys()).toEqual(before)
    await put('/queues/pq/partitions', { partitions: 2 })
    const p = await put('/queues/pq/limits', { concurrency: 1 })
    expect(p.statusCode).toBe(409)
    expect(p.json().code).toBe('PARTITIONED_QUEUE')
  })
})
