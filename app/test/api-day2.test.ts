/**
 * Day-2 operations through the REST API (ADR 0020): each route's effect, and bad input answered
 * with a clear 4xx that changes nothing.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { BULK_JOBS_TASK } from '../src/queue/system-tasks.ts'
import { type ApiBundle, apiSetup } from './api-helpers.ts'
import { snapshot, waitFor } from './helpers.ts'

const Q = 'ops'
let b: ApiBundle
beforeEach(async () => {
  b = await apiSetup({ workerQueues: [Q] })
})
afterEach(() => b.cleanup())

const call = (method: 'POST' | 'PUT' | 'DELETE' | 'GET', url: string, payload?: unknown) =>
  b.app.inject({ method, url, payload: payload as never })
const add = (opts: Record<string, unknown> = {}, type = 'work') =>
  b.queue.add(type, { n: 1 }, { queue: Q, ...opts }).then((r) => r.job)

/** Each request answers `status` with `code`, and the data is as it was. */
async function refused(reqs: Array<[Parameters<typeof call>, number, string]>) {
  const before = await snapshot(b)
  for (const [args, status, code] of reqs) {
    const r = await call(...args)
    expect({ url: args[1], status: r.statusCode, code: r.json().code }).toEqual({
      url: args[1],
      status,
      code,
    })
    expect(r.json().message).toBeTruthy()
  }
  expect(await snapshot(b)).toEqual(before)
}

describe('jobs', () => {
  it('POST /jobs/{id}/promote runs a scheduled job now', async () => {
    const job = await add({ delay_ms: 60_000 })
    const r = await call('POST', `/jobs/${job.id}/promote?queue=${Q}`)
    expect(r.statusCode).toBe(200)
    expect(r.json().state).toBe('queued')
    await refused([
      [['POST', `/jobs/${job.id}/promote?queue=${Q}`], 409, 'INVALID_STATE'],
      [['POST', `/jobs/nope/promote?queue=${Q}`], 404, 'NOT_FOUND'],
      [['POST', `/jobs/${job.id}/promote?queue=bad%20name`], 400, 'VALIDATION'],
    ])
  })

  it('POST /jobs/{id}/priority moves a queued job to its new stream', async () => {
    const job = await add()
    const r = await call('POST', `/jobs/${job.id}/priority?queue=${Q}`, { priority: 'low' })
    expect(r.statusCode).toBe(200)
    expect(r.json().priority).toBe('low')
    expect(await b.redis.xlen(b.queue.store.keys.stream(Q, 'normal'))).toBe(0)
    expect(await b.redis.xlen(b.queue.store.keys.stream(Q, 'low'))).toBe(1)
    await b.queue.store.deliver(Q, 'c1', 1)
    await refused([
      [['POST', `/jobs/${job.id}/priority?queue=${Q}`, { priority: 'urgent' }], 400, 'VALIDATION'],
      [['POST', `/jobs/${job.id}/priority?queue=${Q}`, {}], 400, 'VALIDATION'],
      [['POST', `/jobs/${job.id}/priority?queue=${Q}`, { priority: 'high' }], 409, 'INVALID_STATE'],
    ])
  })

  it('PUT /jobs/{id}/payload edits a waiting job, recorded in the job view', async () => {
    const job = await add({ delay_ms: 60_000 })
    const r = await call('PUT', `/jobs/${job.id}/payload?queue=${Q}`, {
      payload: { n: 2 },
      edited_by: 'alice',
    })
    expect(r.statusCode).toBe(200)
    expect(r.json()).toMatchObject({ payload: { n: 2 }, edits: { count: 1, by: 'alice' } })
    const view = (await call('GET', `/jobs/${job.id}?queue=${Q}`)).json()
    expect(view.edits).toMatchObject({ count: 1, by: 'alice' })
    expect(view.edits.previous_sha1).toMatch(/^[0-9a-f]{40}$/)
    const again = await call('PUT', `/jobs/${job.id}/payload?queue=${Q}`, { payload: null })
    expect(again.json().edits).toMatchObject({ count: 2, by: 'api' })
    await b.queue.runNow(job.id, Q)
    await b.queue.store.deliver(Q, 'c1', 1)
    await refused([
      [['PUT', `/jobs/${job.id}/payload?queue=${Q}`, { payload: 1 }], 409, 'INVALID_STATE'],
      [['PUT', `/jobs/${job.id}/payload?queue=${Q}`, {}], 400, 'VALIDATION'],
      [['PUT', `/jobs/${job.id}/payload?queue=${Q}`, { payload: 1, extra: 1 }], 400, 'VALIDATION'],
      [
        ['PUT', `/jobs/${job.id}/payload?queue=${Q}`, { payload: 'x'.repeat(b.config.maxPayloadBytes + 1) }],
        400,
        'VALIDATION',
      ],
    ])
  })

  it('DELETE /jobs/{id} deletes a running job: its worker completion is rejected as stale', async () => {
    const job = await add()
    const [got] = (await b.queue.store.deliver(Q, 'c1', 1)).jobs
    const r = await call('DELETE', `/jobs/${job.id}?queue=${Q}`)
    expect(r.statusCode).toBe(200)
    expect(r.json()).toEqual({ deleted: 1, id: job.id, queue: Q, state: 'active' })
    expect(await b.queue.store.complete(Q, [{ id: job.id, epoch: got!.epoch, result: '1' }])).toEqual([0])
    expect((await call('GET', `/jobs/${job.id}?queue=${Q}`)).statusCode).toBe(404)
    const { flow } = await b.queue.addFlow({
      nodes: [
        { key: 'a', task_type: 'work', queue: Q },
        { key: 'b', task_type: 'work', queue: Q, depends_on: ['a'] },
      ],
    })
    await refused([
      [['DELETE', `/jobs/${job.id}?queue=${Q}`], 404, 'NOT_FOUND'],
      [['DELETE', `/jobs/${flow.nodes[1]!.job_id}?queue=${Q}`], 409, 'INVALID_STATE'],
    ])
  })

  it('POST /jobs/bulk retries failed jobs by error text as a system job', async () => {
    for (let i = 0; i < 4; i++) {
      const j = await add({ max_retries: 0 })
      const [got] = (await b.queue.store.deliver(Q, 'c1', 1)).jobs
      await b.queue.store.fail(
        Q,
        j.id,
        got!.epoch,
        'permanent',
        { message: i < 3 ? 'timeout' : 'bad', worker: 'c1', attempt: 1 },
        0,
      )
    }
    const r = await call('POST', '/jobs/bulk', {
      action: 'retry',
      queue: Q,
      error_contains: 'timeout',
      rate_per_sec: 50,
    })
    expect(r.statusCode).toBe(202)
    expect(r.json().job.task_type).toBe(BULK_JOBS_TASK)
    const w = b.worker({ workerQueues: [Q] })
    await w.start()
    const done = await waitFor(async () => {
      const j = (await call('GET', `/jobs/${r.json().job.id}?queue=${Q}`)).json()
      return j.state === 'completed' ? j : null
    })
    expect(done.result).toMatchObject({ action: 'retry', done: 3 })
    expect(done.logs.at(-1)).toMatch(/retried 3 of \d+ examined/)
    await w.close()
    await refused([
      [['POST', '/jobs/bulk', { action: 'delete' }], 400, 'VALIDATION'],
      [['POST', '/jobs/bulk', { action: 'retry', state: 'queued' }], 400, 'VALIDATION'],
      [['POST', '/jobs/bulk', { action: 'cancel', rate_per_sec: 0 }], 400, 'VALIDATION'],
      [['POST', '/jobs/bulk', { action: 'cancel', queue: '..' }], 400, 'VALIDATION'],
    ])
  })
})

describe('queues', () => {
  it('POST /queues/{q}/empty removes waiting jobs in bounded calls', async () => {
    for (let i = 0; i < 5; i++) await add()
    await add({ delay_ms: 60_000 })
    const r1 = await call('POST', `/queues/${Q}/empty`, { limit: 4 })
    expect(r1.json()).toEqual({ queue: Q, removed: 4, cancelled: 0, more: true })
    const r2 = await call('POST', `/queues/${Q}/empty`, {})
    expect(r2.json()).toEqual({ queue: Q, removed: 2, cancelled: 0, more: false })
    await refused([
      [['POST', `/queues/${Q}/empty`, { limit: 0 }], 400, 'VALIDATION'],
      [['POST', `/queues/${Q}/empty`, { limit: 20_000 }], 400, 'VALIDATION'],
    ])
  })

  it('DELETE /queues/{q} refuses while jobs run (409) unless force=true, then removes every key', async () => {
    await add()
    await add()
    await b.queue.store.deliver(Q, 'c1', 1)
    await refused([
      [['DELETE', `/queues/${Q}`], 409, 'INVALID_STATE'],
      [['DELETE', `/queues/${Q}?force=maybe`], 400, 'VALIDATION'],
      [['DELETE', '/queues/unknown'], 404, 'NOT_FOUND'],
    ])
    const r = await call('DELETE', `/queues/${Q}?force=true`)
    expect(r.statusCode).toBe(200)
    expect(r.json().keys).toBeGreaterThan(0)
    expect((await b.keys()).filter((k) => k.includes(`{${Q}}`))).toEqual([])
    expect((await call('GET', '/queues')).json().items.map((q: { queue: string }) => q.queue)).not.toContain(
      Q,
    )
  })
})

describe('workers', () => {
  it('POST /workers/{id}/concurrency changes it at runtime', async () => {
    const w = b.worker({ workerQueues: [Q], workerConcurrency: 2 })
    await w.start()
    const r = await call('POST', `/workers/${w.id}/concurrency`, { concurrency: 7 })
    expect(r.statusCode).toBe(200)
    await waitFor(async () => (await call('GET', '/workers')).json().items[0]?.concurrency === 7)
    // The worker rewrites its registry entry on each beat, so no snapshot here: the value stays.
    for (const [body, id, status] of [
      [{ concurrency: 0 }, w.id, 400],
      [{ concurrency: 'many' }, w.id, 400],
      [{ concurrency: 3, extra: 1 }, w.id, 400],
      [{ concurrency: 3 }, 'nobody', 404],
    ] as const) {
      expect((await call('POST', `/workers/${id}/concurrency`, body)).statusCode).toBe(status)
    }
    await new Promise((r) => setTimeout(r, 500)) // a heartbeat or two (200 ms)
    expect((await call('GET', '/workers')).json().items[0].concurrency).toBe(7)
  })
})
