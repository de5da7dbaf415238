/**
 * GET /workers/{id}: a live worker with what it runs now, its outcomes per minute and its latest
 * failures, as its heartbeat wrote them; 404 for an id no live worker has; read role.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { WorkerDetailDto } from '../src/http/schemas.ts'
import { FAILURES_KEPT, WorkerActivity } from '../src/worker/activity.ts'
import { type ApiBundle, apiSetup, bearer, TOKEN_SETTING } from './api-helpers.ts'
import { waitFor } from './helpers.ts'

const Q = 'wd'
let b: ApiBundle
beforeEach(async () => {
  b = await apiSetup({ workerQueues: [Q], apiTokens: TOKEN_SETTING })
})
afterEach(() => b.cleanup())

const get = (url: string, role: 'read' | 'write' | 'admin' = 'read') =>
  b.app.inject({ method: 'GET', url, headers: bearer(role) })

describe('GET /workers/{id}', () => {
  it('shows the jobs it runs, its outcomes per minute and its latest failures', async () => {
    let release!: () => void
    const gate = new Promise<void>((r) => {
      release = r
    })
    const w = b
      .worker({ workerConcurrency: 4 })
      .handle('ok', async () => 'done')
      .handle('boom', async () => {
        throw new Error('the printer is on fire')
      })
      .handle('hold', () => gate)
    await w.start()
    for (let i = 0; i < 3; i++) await b.queue.add('ok', {}, { queue: Q })
    await b.queue.add('boom', {}, { queue: Q, max_retries: 0 })
    const held = (await b.queue.add('hold', {}, { queue: Q })).job
    const detail = async () => (await get(`/workers/${w.id}`)).json() as WorkerDetailDto
    await waitFor(async () => {
      const d = await detail()
      return d.running.length === 1 && d.recent_failures.length === 1 && d.processed === 3
    })
    const d = await detail()
    expect(d.id).toBe(w.id)
    expect(d.running).toEqual([
      { id: held.id, queue: Q, task_type: 'hold', attempt: 1, started_at: expect.any(Number) },
    ])
    expect(d.running[0]!.started_at).toBeLessThanOrEqual(Date.now())
    expect(d.recent_failures[0]).toMatchObject({
      queue: Q,
      task_type: 'boom',
      error: 'the printer is on fire',
      error_class: 'Error',
      outcome: 'failed',
    })
    const sum = d.rates.reduce((a, m) => ({ c: a.c + m.completed, f: a.f + m.failed }), { c: 0, f: 0 })
    expect(sum).toEqual({ c: 3, f: 1 })
    // The list stays as it was: no activity in it.
    const listed = (await get('/workers')).json().items[0]
    expect(listed.id).toBe(w.id)
    expect(listed.running).toBeUndefined()
    release()
    await waitFor(async () => (await detail()).running.length === 0)
  })

  it('answers 404 for an id no live worker has, 400 for a bad id, 401 without a token', async () => {
    expect((await get('/workers/nobody')).statusCode).toBe(404)
    expect((await get('/workers/nobody')).json().code).toBe('NOT_FOUND')
    expect((await get('/workers/bad%20id')).statusCode).toBe(400)
    expect((await b.app.inject({ method: 'GET', url: '/workers/nobody' })).statusCode).toBe(401)
    // Negative control: a live worker is found with the read role.
    const w = b.worker()
    await w.start()
    await waitFor(async () => (await get(`/workers/${w.id}`)).statusCode === 200)
  })
})

describe('WorkerActivity', () => {
  it('keeps 15 minutes of outcomes and the latest failures, bounded', () => {
    let now = 10 * 60_000
    const a = new WorkerActivity(() => now)
    const fail = (i: number) => ({
      id: String(i),
      queue: 'q',
      task_type: 't',
      attempt: 1,
      error: 'x'.repeat(1000),
      error_class: 'Error',
    })
    for (let i = 0; i < 40; i++) {
      a.record('completed')
      a.record('retrying', fail(i))
      now += 60_000
    }
    const rates = a.rates()
    expect(rates.length).toBe(14) // the current minute has none yet
    expect(rates.every((m) => m.completed === 1 && m.failed === 1)).toBe(true)
    const f = a.recentFailures()
    expect(f.length).toBe(FAILURES_KEPT)
    expect(f[0]!.id).toBe('39')
    expect(f[0]!.error.length).toBe(500)
  })
})
