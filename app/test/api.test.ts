/**
 * The REST API through app.inject() against a real Redis: every endpoint, its semantics and
 * its validation errors.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type ApiBundle, apiSetup } from './api-helpers.ts'
import { waitFor } from './helpers.ts'

let b: ApiBundle
beforeEach(async () => {
  b = await apiSetup()
})
afterEach(() => b.cleanup())

const post = (url: string, payload?: unknown, headers: Record<string, string> = {}) =>
  b.app.inject({ method: 'POST', url, payload: payload as never, headers })
const get = (url: string) => b.app.inject({ method: 'GET', url })

describe('health', () => {
  it('live depends on nothing; ready checks Redis and draining', async () => {
    expect((await get('/health/live')).json()).toEqual({ status: 'ok' })
    expect((await get('/health/ready')).json()).toEqual({ status: 'ready', redis: 'ok' })
    expect((await get('/queues')).headers.connection).not.toBe('close')
    b.app.dtq.state.draining = true
    const r = await get('/health/ready')
    expect(r.statusCode).toBe(503)
    expect(r.json()).toEqual({ status: 'draining' })
    // Still serving while draining, but every answer closes its keep-alive connection.
    const q = await get('/queues')
    expect(q.statusCode).toBe(200)
    expect(q.headers.connection).toBe('close')
  })
})

describe('POST /jobs', () => {
  it('creates a job (201 + Location) with every option', async () => {
    const r = await post('/jobs', {
      task_type: 'send_email',
      payload: { to: 'a@b.c' },
      queue: 'emails',
      priority: 'high',
      partition_key: 'tenant-1',
      max_retries: 2,
      delay_ms: 5000,
      timeout_ms: 1000,
      backoff: { initial_ms: 10, multiplier: 3 },
    })
    expect(r.statusCode).toBe(201)
    const job = r.json()
    expect(r.headers.location).toBe(`/jobs/${job.id}?queue=emails`)
    expect(job).toMatchObject({
      queue: 'emails',
      task_type: 'send_email',
      payload: { to: 'a@b.c' },
      state: 'scheduled',
      priority: 'high',
      partition_key: 'tenant-1',
      max_retries: 2,
      timeout_ms: 1000,
      backoff: { initial_ms: 10, multiplier: 3 },
    })
    expect((await get(`/jobs/${job.id}`)).json()).toMatchObject({ id: job.id, logs: [] })
  })

  it('answers 200 with the original job for a repeated idempotency key or job_id, creating nothing', async () => {
    const first = await post('/jobs', { task_type: 'echo', payload: 1, idempotency_key: 'order-7' })
    const again = await post('/jobs', { task_type: 'echo', payload: 2, idempotency_key: 'order-7' })
    expect([first.statusCode, again.statusCode]).toEqual([201, 200])
    expect(again.json().id).toBe(first.json().id)
    expect(again.json().payload).toBe(1)
    const a = await post('/jobs', { task_type: 'echo', job_id: 'mine-1' })
    const c = await post('/jobs', { task_type: 'echo', job_id: 'mine-1' })
    expect([a.statusCode, c.statusCode]).toEqual([201, 200])
    expect((await b.queue.stats()).totals.queued).toBe(2)
    const found = await get('/jobs?idempotency_key=order-7')
    expect(found.json().items.map((j: { id: string }) => j.id)).toEqual([first.json().id])
  })

  it.each([
    ['missing task_type', { payload: 1 }, /task_type/],
    ['unknown field', { task_type: 'echo', colour: 'red' }, /colour is not a known field/],
    ['queue with braces', { task_type: 'echo', queue: 'a{b}' }, /queue/],
    ['queue with a colon', { task_type: 'echo', queue: 'a:b' }, /queue/],
    ['queue with a star', { task_type: 'echo', queue: '*' }, /queue/],
    ['huge queue name', { task_type: 'echo', queue: 'q'.repeat(5000) }, /queue/],
    ['control characters in a key', { task_type: 'echo', idempotency_key: 'a\u0007b' }, /idempotency_key/],
    ['bad priority', { task_type: 'echo', priority: 'urgent' }, /priority/],
    ['negative retries', { task_type: 'echo', max_retries: -1 }, /max_retries/],
    ['string number', { task_type: 'echo', max_retries: '3' }, /max_retries/],
    ['delay and run_at', { task_type: 'echo', delay_ms: 1, run_at: 5 }, /not both/],
    ['task type with spaces', { task_type: 'rm -rf' }, /task_type/],
    ['not an object', [1, 2], /body/],
    ['backoff unknown field', { task_type: 'echo', backoff: { jitter: true } }, /jitter/],
    [
      'a job_id of digits only (DTQ numbers its own)',
      { task_type: 'echo', job_id: '17' },
      /not be all digits/,
    ],
  ])('400 for %s, nothing written', async (_n, body, msg) => {
    const r = await post('/jobs', body)
    expect(r.statusCode).toBe(400)
    expect(r.json()).toMatchObject({ error: 'Bad Request', code: 'VALIDATION' })
    expect(r.json().message).toMatch(msg)
    expect(await b.keys()).toEqual([])
  })
})

describe('POST /jobs/batch', () => {
  it('reports each item on its own', async () => {
    const r = await post('/jobs/batch', {
      jobs: [
        { task_type: 'echo', payload: 1 },
        { task_type: 'echo', queue: 'other', job_id: 'b-1' },
        { task_type: 'echo', job_id: 'b-1', queue: 'other' },
        { task_type: 'echo', delay_ms: 1, run_at: 1 },
      ],
    })
    expect(r.statusCode).toBe(200)
    const body = r.json()
    expect(body).toMatchObject({ created: 2, existing: 1, rejected: 1 })
    expect(body.items.map((i: { status: number }) => i.status)).toEqual([201, 201, 200, 400])
    expect(body.items[3].error.message).toMatch(/not both/)
  })

  it('refuses an empty or too large batch', async () => {
    expect((await post('/jobs/batch', { jobs: [] })).statusCode).toBe(400)
    const big = await apiSetup({ batchMaxJobs: 3 })
    try {
      const r = await big.app.inject({
        method: 'POST',
        url: '/jobs/batch',
        payload: { jobs: Array(4).fill({ task_type: 'echo' }) },
      })
      expect(r.statusCode).toBe(400)
      expect(r.json().message).toMatch(/at most 3/)
      expect(await big.keys()).toEqual([])
    } finally {
      await big.cleanup()
    }
  })
})

describe('reading jobs', () => {
  it('lists with filters and cursor pagination, newest first', async () => {
    for (let i = 0; i < 5; i++) await post('/jobs', { task_type: i % 2 ? 'odd' : 'even', payload: i })
    const page1 = (await get('/jobs?limit=2')).json()
    expect(page1.items.map((j: { payload: number }) => j.payload)).toEqual([4, 3])
    const page2 = (await get(`/jobs?limit=2&cursor=${page1.next_cursor}`)).json()
    expect(page2.items.map((j: { payload: number }) => j.payload)).toEqual([2, 1])
    const odd = (await get('/jobs?task_type=odd&status=queued&queue=default')).json()
    expect(odd.items.map((j: { payload: number }) => j.payload)).toEqual([3, 1])
  })

  it.each([
    ['/jobs?status=done', 400],
    ['/jobs?limit=0', 400],
    ['/jobs?limit=abc', 400],
    ['/jobs?queue=a%7Bb%7D', 400],
    ['/jobs?cursor=%24%24%24', 400],
    ['/jobs?unknown=1', 400],
    ['/jobs/nope', 404],
    ['/jobs/a%3Ab', 400],
    ['/jobs/x?queue=*', 400],
  ])('GET %s → %i', async (url, status) => {
    const r = await get(url)
    expect(r.statusCode).toBe(status)
    expect(r.json().code).toBeTypeOf('string')
  })
})

describe('cancel and retry', () => {
  it('cancels a waiting job (200), 409 once finished, 404 unknown', async () => {
    const id = (await post('/jobs', { task_type: 'echo' })).json().id
    const r = await post(`/jobs/${id}/cancel`)
    expect(r.statusCode).toBe(200)
    expect(r.json()).toMatchObject({ outcome: 'cancelled', job: { state: 'cancelled' } })
    const again = await post(`/jobs/${id}/cancel`)
    expect(again.statusCode).toBe(409)
    expect(again.json()).toMatchObject({
      code: 'INVALID_STATE',
      error: 'Conflict',
      details: { state: 'cancelled' },
    })
    expect(again.json().message).toBe(`job ${id} is cancelled and cannot be cancelled`)
    expect((await post('/jobs/unknown/cancel')).statusCode).toBe(404)
  })

  it('cancels a running job by request (202) and it ends cancelled', async () => {
    const w = b.worker()
    await w.start()
    const id = (await post('/jobs', { task_type: 'sleep', payload: { ms: 30000 } })).json().id
    await waitFor(async () => (await b.queue.getJob(id))?.state === 'active')
    const r = await post(`/jobs/${id}/cancel`)
    expect(r.statusCode).toBe(202)
    expect(r.json().outcome).toBe('requested')
    await waitFor(async () => (await b.queue.getJob(id))?.state === 'cancelled')
  })

  it('retries a cancelled job; 409 for a queued one', async () => {
    const id = (await post('/jobs', { task_type: 'echo' })).json().id
    expect((await post(`/jobs/${id}/retry`)).statusCode).toBe(409)
    await post(`/jobs/${id}/cancel`)
    const r = await post(`/jobs/${id}/retry`)
    expect(r.statusCode).toBe(200)
    expect(r.json().state).toBe('queued')
  })
})

describe('dead letters', () => {
  async function deadLetter(taskType = 'fail', message = 'boom') {
    const id = (await post('/jobs', { task_type: taskType, payload: { message, permanent: true } })).json().id
    await waitFor(async () => (await b.queue.getJob(id))?.state === 'failed')
    return id
  }

  it('lists with filters, retries one, deletes one, purges', async () => {
    const w = b.worker()
    await w.start()
    const a = await deadLetter('fail', 'SMTP timeout')
    const c = await deadLetter('fail', 'disk full')
    const list = (await get('/dlq?error=smtp')).json()
    expect(list.items.map((j: { id: string }) => j.id)).toEqual([a])
    expect(list.items[0]).toMatchObject({ state: 'failed', error: 'SMTP timeout' })
    expect((await get('/dlq?task_type=echo')).json().items).toEqual([])
    expect((await get('/dlq?older_than_days=1')).json().items).toEqual([])
    expect((await get('/dlq?older_than_days=-1')).statusCode).toBe(400)

    const queuedId = (await post('/jobs', { task_type: 'sleep', payload: { ms: 1 }, delay_ms: 60000 })).json()
      .id
    expect((await post(`/dlq/${queuedId}/retry`)).statusCode).toBe(409)
    const r = await post(`/dlq/${a}/retry`)
    expect(r.statusCode).toBe(200)
    await waitFor(async () => (await b.queue.getJob(a))?.state === 'failed')

    expect((await b.app.inject({ method: 'DELETE', url: `/dlq/${c}` })).json()).toEqual({ deleted: 1 })
    expect((await b.app.inject({ method: 'DELETE', url: `/dlq/${c}` })).statusCode).toBe(404)
    expect((await b.app.inject({ method: 'DELETE', url: '/dlq?older_than_days=0' })).json()).toEqual({
      deleted: 1,
    })
    expect((await b.app.inject({ method: 'DELETE', url: '/dlq' })).statusCode).toBe(400)
  })

  it('retries many at a rate, as a job the workers run', async () => {
    const w = b.worker()
    await w.start()
    const ids = []
    for (let i = 0; i < 4; i++) ids.push(await deadLetter('fail', 'flaky downstream'))
    w.handle('fail', () => 'fixed')
    const r = await post('/dlq/retry', { error: 'flaky', rate_per_sec: 50 })
    expect(r.statusCode).toBe(202)
    const jobId = r.json().job.id
    await waitFor(async () => (await b.queue.getJob(jobId))?.state === 'completed')
    expect((await b.queue.getJob(jobId))?.result).toEqual({ requeued: 4 })
    for (const id of ids) await waitFor(async () => (await b.queue.getJob(id))?.state === 'completed')
    expect((await post('/dlq/retry', { rate_per_sec: 0 })).statusCode).toBe(400)
  })
})

describe('queues and workers', () => {
  it('reports queue stats and pauses/resumes', async () => {
    await post('/jobs', { task_type: 'echo', priority: 'high' })
    const q = (await get('/queues')).json().items[0]
    expect(q).toMatchObject({
      queue: 'default',
      paused: false,
      counts: { queued: 1 },
      streams: { high: { lag: 1 } },
    })
    expect((await post('/queues/default/pause')).json()).toEqual({ ok: true })
    expect((await get('/queues')).json().items[0].paused).toBe(true)
    await post('/queues/default/resume')
    expect((await get('/queues')).json().items[0].paused).toBe(false)
    expect((await post('/queues/a:b/pause')).statusCode).toBe(400)
  })

  it('lists workers and sends them commands', async () => {
    const w = b.worker()
    await w.start()
    const list = (await get('/workers')).json().items
    expect(list.map((x: { id: string }) => x.id)).toEqual([w.id])
    expect((await post(`/workers/${w.id}/pause`)).json()).toEqual({ ok: true })
    await waitFor(() => w.state === 'paused')
    expect((await post(`/workers/${w.id}/resume`)).statusCode).toBe(200)
    expect((await post(`/workers/${w.id}/explode`)).statusCode).toBe(400)
    expect((await post('/workers/nobody/pause')).statusCode).toBe(404)
  })
})

describe('stats, metrics, docs, dev', () => {
  it('serves /stats for the console', async () => {
    const w = b.worker()
    await w.start()
    const id = (await post('/jobs', { task_type: 'echo' })).json().id
    await waitFor(async () => (await b.queue.getJob(id))?.state === 'completed')
    const s = (await get('/stats')).json()
    expect(s.totals).toMatchObject({ completed: 1, queued: 0 })
    expect(s.workers).toBe(1)
    expect(s.throughput).toHaveLength(60)
    expect(s.throughput.at(-1).completed).toBe(1)
  })

  it('serves Prometheus text with the engine and HTTP metrics', async () => {
    const w = b.worker()
    await w.start()
    const id = (await post('/jobs', { task_type: 'echo' })).json().id
    await waitFor(async () => (await b.queue.getJob(id))?.state === 'completed')
    const r = await get('/metrics')
    expect(r.headers['content-type']).toMatch(/text\/plain/)
    const text = r.body
    for (const line of [
      'jobs_created_total{queue="default",type="echo"} 1',
      'jobs_completed_total{queue="default",type="echo"} 1',
      'job_run_duration_seconds_count{queue="default"} 1',
      'job_wait_duration_seconds_bucket{queue="default",le="+Inf"} 1',
      'jobs{queue="default",state="completed"} 1',
      'stream_lag{queue="default",priority="normal"} 0',
      'dlq_jobs{queue="default"} 0',
      'workers_live 1',
    ]) {
      expect(text).toContain(line)
    }
    expect(text).toMatch(/oldest_waiting_job_age_seconds\{queue="default"\} 0/)
    expect(text).toMatch(/http_request_duration_seconds_bucket\{.*route="\/jobs"/)
  })

  it('publishes OpenAPI 3 generated from the route schemas', async () => {
    const spec = (await get('/openapi.json')).json()
    expect(spec.openapi).toMatch(/^3\./)
    for (const path of [
      '/jobs',
      '/jobs/batch',
      '/jobs/{id}',
      '/jobs/{id}/cancel',
      '/dlq',
      '/dlq/retry',
      '/queues',
      '/workers',
      '/events',
      '/metrics',
      '/stats',
    ]) {
      expect(spec.paths).toHaveProperty([path])
    }
    expect((await get('/docs')).statusCode).toBeLessThan(400)
  })

  it('generates synthetic jobs in development', async () => {
    const r = await post('/dev/generate-jobs', {
      count: 25,
      partition_key_prefix: 'p-',
      payload_template: { duration_ms: 1 },
    })
    expect(r.statusCode).toBe(201)
    expect(r.json()).toEqual({ created: 25, queue: 'default', task_type: 'synthetic' })
    const jobs = (await get('/jobs?limit=100')).json().items
    expect(new Set(jobs.map((j: { partition_key: string }) => j.partition_key)).size).toBe(25)
    expect(jobs[0].payload).toEqual({ duration_ms: 1 })
    expect((await post('/dev/generate-jobs', { count: 0 })).statusCode).toBe(400)
  })
})
