/**
 * Dedup and start deadlines through the REST API (ADR 0021): POST /jobs answers a deduplicated
 * add 200 with the job that answered it (`deduplicated: true`), the batch reports it per item,
 * GET /jobs/{id} shows the deadline and the expiry, and bad values are a 400 that writes nothing.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type ApiBundle, apiSetup } from './api-helpers.ts'
import { FakeClock } from './helpers.ts'

let b: ApiBundle
let clock: FakeClock
beforeEach(async () => {
  clock = new FakeClock()
  b = await apiSetup({}, { clock })
})
afterEach(() => b.cleanup())

const post = (url: string, payload?: unknown) =>
  b.app.inject({ method: 'POST', url, payload: payload as never })
const get = (url: string) => b.app.inject({ method: 'GET', url })

describe('POST /jobs with dedup', () => {
  it('201 for the first add, 200 with that job and deduplicated: true for the next', async () => {
    const body = {
      task_type: 'sync',
      payload: { a: 1 },
      queue: 'q',
      dedup: { mode: 'throttle', ttl_ms: 5000 },
    }
    const first = await post('/jobs', body)
    expect(first.statusCode).toBe(201)
    expect(first.json()).toMatchObject({
      dedup: { mode: 'throttle', ttl_ms: 5000 },
      snoozes: 0,
      expired: false,
    })
    expect(first.json().deduplicated).toBeUndefined()
    const again = await post('/jobs', { ...body, payload: { a: 1 } })
    expect(again.statusCode).toBe(200)
    expect(again.json()).toMatchObject({ id: first.json().id, deduplicated: true })
    clock.advance(5000)
    expect((await post('/jobs', body)).statusCode).toBe(201)
  })

  it('the batch says existing for a deduplicated item', async () => {
    const item = { task_type: 'agg', payload: 1, dedup: { mode: 'unique', key: 'k1' } }
    const r = await post('/jobs/batch', { jobs: [item, { ...item, payload: 2 }] })
    expect(r.statusCode).toBe(200)
    const items = r.json().items
    expect(items.map((i: { status: number }) => i.status)).toEqual([201, 200])
  })

  it.each([
    [{ mode: 'sometimes', ttl_ms: 5 }, /dedup/],
    [{ mode: 'throttle' }, /ttl_ms is required/],
    [{ mode: 'debounce', ttl_ms: 0 }, /dedup.ttl_ms/],
    [{ mode: 'unique', extra: 1 }, /not a known field/],
    ['unique', /dedup/],
  ])('400 for dedup %j, nothing written', async (dedup, why) => {
    const before = await b.keys()
    const r = await post('/jobs', { task_type: 't', queue: 'q', dedup })
    expect(r.statusCode).toBe(400)
    expect(r.json().message).toMatch(why)
    expect(await b.keys()).toEqual(before)
  })
})

describe('POST /jobs with a start deadline', () => {
  it('shows start_by, and the expiry once the deadline passed', async () => {
    const r = await post('/jobs', { task_type: 't', queue: 'q', expires_in_ms: 1000 })
    expect(r.statusCode).toBe(201)
    const id = r.json().id
    expect(r.json().start_by).toBe(clock.now() + 1000)
    clock.advance(1001)
    await b.queue.store.promote('q')
    const j = await get(`/jobs/${id}?queue=q`)
    expect(j.json()).toMatchObject({
      state: 'cancelled',
      expired: true,
      error: expect.stringMatching(/^expired: not started by /),
    })
  })

  it.each([
    [{ start_by: 5 }, /start_by/],
    [{ start_by: '2026-02-30T00:00:00Z' }, /start_by/],
    [{ expires_in_ms: 0 }, /expires_in_ms/],
    [{ expires_in_ms: 1.5 }, /expires_in_ms/],
    [{ expires_in_ms: 1000, delay_ms: 5000 }, /could never start/],
  ])('400 for %j, nothing written', async (extra, why) => {
    const before = await b.keys()
    const r = await post('/jobs', { task_type: 't', queue: 'q', ...extra })
    expect(r.statusCode).toBe(400)
    expect(r.json().message).toMatch(why)
    expect(await b.keys()).toEqual(before)
  })
})
