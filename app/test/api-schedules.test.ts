/**
 * The schedules endpoints (ADR 0018) through app.inject(): upsert, read with next runs and
 * history, list, preview, pause/resume, trigger, delete; roles; bad input is a 400 with the
 * usual error shape and writes nothing.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type ApiBundle, apiSetup, bearer, TOKEN_SETTING } from './api-helpers.ts'
import { FakeClock } from './helpers.ts'

let b: ApiBundle
let clock: FakeClock
beforeEach(async () => {
  clock = new FakeClock(Date.UTC(2026, 2, 28, 12))
  b = await apiSetup({}, { clock })
})
afterEach(() => b.cleanup())

const call = (method: 'GET' | 'PUT' | 'POST' | 'DELETE', url: string, payload?: unknown, headers = {}) =>
  b.app.inject({ method, url, payload: payload as never, headers })
const body = {
  cron: '0 30 2 * * *',
  tz: 'Europe/Berlin',
  job: { task_type: 'report', queue: 'reports', payload: { x: 1 } },
}

describe('/schedules', () => {
  it('upserts, lists, reads, previews, pauses, resumes, triggers and deletes', async () => {
    const put = await call('PUT', '/schedules/nightly', body)
    expect(put.statusCode).toBe(200)
    expect(put.json()).toMatchObject({
      name: 'nightly',
      queue: 'reports',
      tz: 'Europe/Berlin',
      paused: false,
    })
    // The DST night: 02:30 does not exist on 29 March in Berlin, so it fires at 03:00 CEST.
    expect(
      put
        .json()
        .next_runs.slice(0, 2)
        .map((t: number) => new Date(t).toISOString()),
    ).toEqual(['2026-03-29T01:00:00.000Z', '2026-03-30T00:30:00.000Z'])
    expect((await call('GET', '/schedules')).json().items).toMatchObject([
      { name: 'nightly', last_outcome: null },
    ])
    const pv = await call(
      'GET',
      `/schedules/preview?cron=${encodeURIComponent('0 0 9 * * 1-5')}&tz=America/New_York`,
    )
    expect(pv.statusCode).toBe(200)
    expect(pv.json().times).toHaveLength(5)
    expect((await call('POST', '/schedules/nightly/pause')).json()).toMatchObject({ paused: true })
    expect((await call('POST', '/schedules/nightly/resume')).json()).toMatchObject({ paused: false })
    const t = await call('POST', '/schedules/nightly/trigger')
    expect(t.statusCode).toBe(201)
    const jobId = t.json().job_id
    expect(t.json().schedule.history[0]).toMatchObject({
      job_id: jobId,
      outcome: 'triggered',
      job_state: 'queued',
    })
    const job = await call('GET', `/jobs/${jobId}?queue=reports`)
    expect(job.json()).toMatchObject({ id: jobId, queue: 'reports', schedule: 'nightly', payload: { x: 1 } })
    expect((await call('GET', '/schedules/nightly')).json()).toMatchObject({
      last_job: jobId,
      last_outcome: 'queued',
    })
    expect((await call('DELETE', '/schedules/nightly')).json()).toEqual({ ok: true })
    const gone = await call('GET', '/schedules/nightly')
    expect(gone.statusCode).toBe(404)
    expect(gone.json()).toMatchObject({ code: 'NOT_FOUND' })
  })

  it('bad input: 400 with the reason, nothing written', async () => {
    const cases: Array<[string, unknown, RegExp]> = [
      ['/schedules/a', { ...body, cron: 'often' }, /cron/],
      ['/schedules/a', { ...body, tz: 'Moon/Base' }, /IANA/],
      ['/schedules/a', { every_ms: 10, job: body.job }, /every_ms/],
      ['/schedules/a', { ...body, colour: 'red' }, /colour|additional/i],
      [
        '/schedules/a',
        { ...body, job: { ...body.job, idempotency_key: 'k' } },
        /idempotency_key|additional/i,
      ],
      [
        '/schedules/a',
        { ...body, start_at: '2026-05-01T00:00:00Z', end_at: '2026-04-01T00:00:00Z' },
        /end_at/,
      ],
      ['/schedules/a:b', body, /name|pattern/i],
    ]
    for (const [url, payload, why] of cases) {
      const r = await call('PUT', url, payload)
      expect(r.statusCode, url + JSON.stringify(payload)).toBe(400)
      expect(r.json()).toMatchObject({ code: 'VALIDATION' })
      expect(JSON.stringify(r.json())).toMatch(why)
    }
    const pv = await call('GET', '/schedules/preview?cron=nope')
    expect(pv.statusCode).toBe(400)
    expect(await b.keys()).toEqual([])
  })

  it('roles: read may look, write may upsert and trigger, admin may delete', async () => {
    const t = await apiSetup({ apiTokens: TOKEN_SETTING }, { clock })
    try {
      const c = (
        method: 'GET' | 'PUT' | 'POST' | 'DELETE',
        url: string,
        role: 'read' | 'write' | 'admin',
        p?: unknown,
      ) => t.app.inject({ method, url, payload: p as never, headers: bearer(role) })
      expect((await c('PUT', '/schedules/r', 'read', body)).statusCode).toBe(403)
      expect((await c('PUT', '/schedules/r', 'write', body)).statusCode).toBe(200)
      expect((await c('GET', '/schedules/r', 'read')).statusCode).toBe(200)
      expect((await c('POST', '/schedules/r/trigger', 'read')).statusCode).toBe(403)
      expect((await c('DELETE', '/schedules/r', 'write')).statusCode).toBe(403)
      expect((await c('DELETE', '/schedules/r', 'admin')).statusCode).toBe(200)
    } finally {
      await t.cleanup()
    }
  })
})
