/**
 * What the engine counts for /metrics (ADR 0024), against a real Redis: a failure's error class
 * on the job, on its attempt record and in the failure counts by (type, class); classes capped
 * per queue; DTQ's own dead letters carry a class of their own; the run time per task type;
 * submissions by priority (normal ones derived); completions after a retry; and how they render
 * under the seeds' names; and that no label of a live /metrics holds a caller's string (job ids,
 * payloads, error messages, partition and dedup keys). The live scrape by a real Prometheus is
 * prometheus.test.ts.
 */
import { randomBytes } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { PermanentJobError } from '../src/errors.ts'
import { engineMetrics } from '../src/http/metrics.ts'
import { STATES } from '../src/queue/job.ts'
import { HISTOGRAM_BUCKETS_MS, QUEUE_KEY } from '../src/redis/keys.ts'
import type { JobStore } from '../src/redis/store.ts'
import { apiSetup } from './api-helpers.ts'
import { type Bundle, FakeClock, setup, waitFor } from './helpers.ts'

const Q = 'default'
let b: Bundle
afterEach(() => b?.cleanup())

const err = (cls?: string, message = 'boom') => ({
  message,
  ...(cls === undefined ? {} : { class: cls }),
  worker: 'w1',
  attempt: 1,
})

async function started(store: JobStore, n = 1) {
  const d = await store.deliver(Q, 'w1', n)
  expect(d.jobs).toHaveLength(n)
  return d.jobs
}

const stats = async () => b.redis.hgetall(b.queue.store.keys.base(Q) + QUEUE_KEY.stats)
const bucketOf = (ms: number) => HISTOGRAM_BUCKETS_MS.findIndex((le) => ms <= le) + 1

describe('error classes', () => {
  it('a failure keeps its class on the job and on the attempt, counted by task type and class', async () => {
    const clock = new FakeClock()
    b = await setup({ clock })
    const store = b.queue.store
    const { job } = await b.queue.add('mail', {}, { max_retries: 1 })
    let [j] = await started(store)
    expect(await store.fail(Q, j!.id, j!.epoch, 'retry', err('ETIMEDOUT'), 0)).toBe('retrying')
    expect((await store.getJob(Q, job.id))?.error_class).toBe('ETIMEDOUT')
    await store.promote(Q)
    ;[j] = await started(store)
    expect(await store.fail(Q, j!.id, j!.epoch, 'retry', err('TypeError'), 0)).toBe('failed')
    const cur = await store.getJob(Q, job.id)
    expect(cur).toMatchObject({ state: 'failed', error_class: 'TypeError' })
    expect(cur?.errors.map((e) => e.class)).toEqual(['ETIMEDOUT', 'TypeError'])
    const s = await stats()
    expect(s['ef|mail|ETIMEDOUT']).toBe('1')
    expect(s['ef|mail|TypeError']).toBe('1')
    expect(s['dp|mail|normal']).toBe('1')
    expect((await b.redis.smembers(store.keys.base(Q) + QUEUE_KEY.classes)).sort()).toEqual([
      'ETIMEDOUT',
      'TypeError',
    ])
  })

  it('a failure without a class (an older worker) counts as Error; a malformed class is refused and writes nothing', async () => {
    b = await setup({ clock: new FakeClock() })
    const store = b.queue.store
    await b.queue.add('mail', {}, { max_retries: 0 })
    await b.queue.add('mail', {}, { max_retries: 0 })
    const [a, c] = await started(store, 2)
    expect(await store.fail(Q, a!.id, a!.epoch, 'retry', err(), 0)).toBe('failed')
    expect((await store.getJob(Q, a!.id))?.error_class).toBe('Error')
    expect((await stats())['ef|mail|Error']).toBe('1')

    const before = [await b.redis.hgetall(store.keys.job(Q, c!.id)), await stats()]
    for (const bad of ['has space', 'x'.repeat(65), '', 'quote"d', 42 as unknown as string]) {
      await expect(store.fail(Q, c!.id, c!.epoch, 'retry', err(bad), 0), String(bad)).rejects.toThrow(
        /DTQ_BAD_ARG error class/,
      )
    }
    expect([await b.redis.hgetall(store.keys.job(Q, c!.id)), await stats()]).toEqual(before)
  })

  it('keeps at most 50 classes per queue; later ones count as _other (the job keeps its own)', async () => {
    b = await setup({ clock: new FakeClock() })
    const store = b.queue.store
    const n = 53
    await b.queue.addBulk(
      Array.from({ length: n }, () => ({ task_type: 'mail', payload: {}, max_retries: 0 })),
    )
    const jobs = await started(store, n)
    for (const [i, j] of jobs.entries())
      expect(await store.fail(Q, j.id, j.epoch, 'permanent', err(`Class${i}`), 0)).toBe('failed')
    const s = await stats()
    expect(await b.redis.scard(store.keys.base(Q) + QUEUE_KEY.classes)).toBe(50)
    expect(s['ef|mail|_other']).toBe('3')
    expect(Object.keys(s).filter((k) => k.startsWith('ef|'))).toHaveLength(51)
    expect((await store.getJob(Q, jobs[n - 1]!.id))?.error_class).toBe(`Class${n - 1}`)
  })

  it("DTQ's own dead letters carry a class of their own (a snooze past the limit: SnoozeLimit)", async () => {
    const clock = new FakeClock()
    b = await setup({ clock })
    const store = b.queue.store
    const { job } = await b.queue.add('mail', {})
    let [j] = await started(store)
    expect(await store.snooze(Q, j!.id, j!.epoch, 10, 1)).toBe('snoozed')
    clock.advance(10)
    await store.promote(Q)
    ;[j] = await started(store)
    expect(await store.snooze(Q, j!.id, j!.epoch, 10, 1)).toBe('failed')
    expect((await store.getJob(Q, job.id))?.error_class).toBe('SnoozeLimit')
    expect((await stats())['ef|mail|SnoozeLimit']).toBe('1')
  })

  it('a worker records a thrown error by its class, and a timeout as Timeout', async () => {
    b = await setup()
    const w = b
      .worker()
      .handle('bad', () => {
        throw new RangeError('out of range 17')
      })
      .handle('slow', async (_job, ctx) => {
        await new Promise((_r, rej) => ctx.signal.addEventListener('abort', () => rej(ctx.signal.reason)))
      })
    const bad = (await b.queue.add('bad', {}, { max_retries: 0 })).job
    const slow = (await b.queue.add('slow', {}, { max_retries: 0, timeout_ms: 50 })).job
    await w.start()
    const ended = await waitFor(
      async () => {
        const xs = await Promise.all([b.queue.getJob(bad.id), b.queue.getJob(slow.id)])
        return xs.every((x) => x?.state === 'failed') ? xs : null
      },
      { what: 'both jobs failed' },
    )
    expect(ended.map((x) => x?.error_class)).toEqual(['RangeError', 'Timeout'])
    expect(ended.map((x) => x?.errors[0]?.class)).toEqual(['RangeError', 'Timeout'])
    const s = await stats()
    expect(s['ef|bad|RangeError']).toBe('1')
    expect(s['ef|slow|Timeout']).toBe('1')
    // Published by the worker's next heartbeat (worker_errors_total reads it from the registry).
    await waitFor(
      async () => JSON.stringify((await b.queue.workers())[0]?.failed_by_type) === '{"bad":1,"slow":1}',
      {
        what: 'failed_by_type in the registry',
      },
    )
  })
})

describe('run time per task type, submissions by priority, retry successes', () => {
  it('counts them per call and renders them under the seeds names', async () => {
    const clock = new FakeClock()
    b = await setup({ clock })
    const store = b.queue.store
    await b.queue.add('a', {}, { priority: 'high' })
    await b.queue.add('a', {}, { priority: 'high' })
    await b.queue.add('a', {})
    await b.queue.add('b', {}, { priority: 'low', max_retries: 2 })
    const jobs = await started(store, 4)
    clock.advance(30)
    const b1 = jobs.find((j) => j.task_type === 'b')!
    const as = jobs.filter((j) => j.task_type === 'a')
    expect(
      await store.complete(
        Q,
        as.map((j) => ({ id: j.id, epoch: j.epoch, result: 'null' })),
      ),
    ).toEqual([1, 1, 1])
    expect(await store.fail(Q, b1.id, b1.epoch, 'retry', err('EPIPE'), 0)).toBe('retrying')
    await store.promote(Q)
    const [again] = await started(store)
    clock.advance(2000)
    expect(await store.complete(Q, [{ id: again!.id, epoch: again!.epoch, result: 'null' }])).toEqual([1])

    const s = await stats()
    expect(s['cp|a|high']).toBe('2')
    expect(s['cp|a|normal']).toBeUndefined() // normal ones are derived: the plain path pays nothing
    expect(s['cp|b|low']).toBe('1')
    expect(s[`hr|a|${bucketOf(30)}`]).toBe('3')
    expect(s['hr|a|sum_ms']).toBe('90')
    expect(s[`hr|b|${bucketOf(30)}`]).toBe('1') // the failed attempt
    expect(s[`hr|b|${bucketOf(2000)}`]).toBe('1')
    expect(s['retry_ok|b']).toBe('1')
    expect(s['retry_ok|a']).toBeUndefined()

    const text = engineMetrics((await b.queue.stats()).queues, await b.queue.workers())
    const lines = new Set(text.split('\n'))
    for (const line of [
      'task_submissions_total{queue="default",priority="high",type="a"} 2',
      'task_submissions_total{queue="default",priority="normal",type="a"} 1',
      'task_submissions_total{queue="default",priority="low",type="b"} 1',
      'task_submissions_total{queue="default",priority="normal",type="b"} 0',
      'task_completions_total{queue="default",type="a",status="completed"} 3',
      'task_duration_seconds_bucket{queue="default",type="a",le="0.05"} 3',
      'task_duration_seconds_bucket{queue="default",type="a",le="0.025"} 0',
      'task_duration_seconds_count{queue="default",type="b"} 2',
      'task_duration_seconds_sum{queue="default",type="a"} 0.09',
      'task_failures_total{queue="default",type="b",error_class="EPIPE"} 1',
      'task_retries_total{queue="default",type="b"} 1',
      'task_retry_attempts_total{queue="default",type="b"} 1',
      'task_retry_success_total{queue="default",type="b"} 1',
      'active_workers_total{queue="default"} 0',
      'pending_tasks_total{queue="default",priority="high"} 0',
      'tasks_in_dlq_total{queue="default"} 0',
      'retry_tasks_total{queue="default"} 0',
      'dlq_items_total{queue="default",priority="normal"} 0',
    ])
      expect(lines, line).toContain(line)
    for (const name of [
      'task_submissions_total counter',
      'task_completions_total counter',
      'task_duration_seconds histogram',
      'task_retries_total counter',
      'tasks_in_dlq_total gauge',
      'active_workers_total gauge',
      'pending_tasks_total gauge',
      'retry_tasks_total gauge',
      'task_failures_total counter',
      'worker_errors_total counter',
      'dlq_items_total counter',
      'task_retry_success_total counter',
      'task_retry_attempts_total counter',
      'jobs_created_total counter',
      'jobs_completed_total counter',
    ])
      expect(lines, name).toContain(`# TYPE ${name}`)
  })
})

describe('labels are bounded', () => {
  /** Every sample of a Prometheus text body: its name and its labels (escapes undone). */
  function samples(body: string) {
    const out: Array<{ name: string; labels: Record<string, string> }> = []
    for (const line of body.split('\n')) {
      if (line === '' || line.startsWith('#')) continue
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+$/.exec(line)
      expect(m, `a sample line that does not parse: ${line}`).not.toBeNull()
      const labels: Record<string, string> = {}
      const inner = m![2] ?? ''
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/gy
      let at = 0
      for (let l = re.exec(inner); l; l = re.exec(inner)) {
        labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c))
        at = re.lastIndex
      }
      expect(at, `labels that do not parse: ${line}`).toBe(inner.length)
      out.push({ name: m![1]!, labels })
    }
    return out
  }

  it('no label of /metrics holds a job id, payload, error message, partition, idempotency or dedup key; the bounded labels hold only their own values', async () => {
    const api = await apiSetup()
    b = api
    // Every caller-chosen string carries a marker no label may ever show.
    const secrets: string[] = []
    const s = (what: string) => {
      const x = `ZZSECRET${what}${randomBytes(6).toString('hex')}`
      secrets.push(x)
      return x
    }
    const LQ = 'lq'
    const PQ = 'pq'
    await b.queue.setPartitions(PQ, 3)
    // Limits with a per-key list (summed, never a label), a type's concurrency and breaker.
    await b.queue.setLimits(LQ, {
      key_concurrency: 1,
      types: { flaky: { concurrency: 2, breaker: { failures: 100, cooldown_ms: 60_000 } } },
    })
    const seen = new Set<string>()
    const w = b
      .worker({ workerQueues: [LQ, PQ] })
      .handle('ok', async (job, ctx) => {
        await ctx.progress(50)
        await ctx.log(`working on ${JSON.stringify(job.payload)}`)
        return { echo: job.payload }
      })
      .handle('flaky', (job) => {
        // Fails its first attempt, then completes (a retry that succeeds).
        if (!seen.has(job.id)) {
          seen.add(job.id)
          throw new Error(`upstream refused ${(job.payload as { s: string }).s} for job ${job.id}`)
        }
        return 'ok'
      })
      .handle('bad', (job) => {
        throw new Error(`bad input ${(job.payload as { s: string }).s}`)
      })
      .handle('perm', (job) => {
        throw new PermanentJobError(`no such account ${(job.payload as { s: string }).s}`)
      })
      .handle('typed', (job) => {
        throw new TypeError(`cannot read ${(job.payload as { s: string }).s}`)
      })
      .handle('coded', (job) => {
        throw Object.assign(new Error(`refused ${(job.payload as { s: string }).s}`), { code: 'EREFUSED' })
      })
      .handle('prefixed', (job) => {
        // A message naming its kind ("UpstreamError: ..."): the class is that name, not the rest.
        throw new Error(`UpstreamError: ${(job.payload as { s: string }).s} gone`)
      })
      .handle('tenant', (job) => {
        // A prefix that is no kind, the caller's own text: never a label.
        throw new Error(`${(job.payload as { s: string }).s}: quota exceeded`)
      })
      .handle('hang', async (_job, ctx) => {
        await new Promise((_r, rej) => ctx.signal.addEventListener('abort', () => rej(ctx.signal.reason)))
      })

    // Jobs with caller-chosen ids, payloads, partition, idempotency and dedup keys, in a plain
    // queue with limits and a partitioned one.
    const TYPES = ['ok', 'flaky', 'bad', 'perm', 'typed', 'coded', 'prefixed', 'tenant', 'hang']
    const ids: Record<string, string[]> = Object.fromEntries(TYPES.map((t) => [t, []]))
    const add = async (type: string, queue: string, opts: Record<string, unknown> = {}) => {
      const secret = s('payload')
      const { job } = await b.queue.add(
        type,
        { s: secret, nested: { [s('key')]: secret } },
        { queue, id: s('id'), partition_key: s('pk'), ...opts },
      )
      ids[type]!.push(job.id)
      return job
    }
    for (const queue of [LQ, PQ]) {
      await add('ok', queue, { idempotency_key: s('idem') })
      await add('ok', queue, { dedup: { mode: 'unique', key: s('dedup') } })
      await add('ok', queue, { dedup: { mode: 'throttle', ttl_ms: 60_000 }, priority: 'high' })
      await add('flaky', queue, { max_retries: 2, priority: 'low' })
      await add('bad', queue, { max_retries: 1 })
      await add('perm', queue, { max_retries: 3 })
      await add('typed', queue, { max_retries: 0 })
      await add('coded', queue, { max_retries: 0 })
      await add('prefixed', queue, { max_retries: 0 })
      await add('tenant', queue, { max_retries: 0 })
      await add('hang', queue, { max_retries: 0, timeout_ms: 50 }) // Timeout
    }
    // The same idempotency and dedup keys again: answered by the first jobs.
    const idem = s('idem')
    const dk = s('dedup')
    for (let i = 0; i < 2; i++) {
      await b.queue.add('ok', { s: s('payload') }, { queue: LQ, idempotency_key: idem })
      await b.queue.add('ok', { s: s('payload') }, { queue: LQ, dedup: { mode: 'unique', key: dk } })
    }
    // Through the API too: a caller's id in the path of every route that takes one.
    const post = (url: string, payload?: object) =>
      api.app.inject({ method: 'POST', url, payload: payload as never })
    const viaApi = s('id')
    expect(
      (
        await post('/jobs', {
          task_type: 'ok',
          queue: PQ,
          job_id: viaApi,
          partition_key: s('pk'),
          payload: { s: s('payload') },
        })
      ).statusCode,
    ).toBe(201)
    ids.ok!.push(viaApi)
    // A delayed job cancelled while it waits; a running one cancelled by request.
    const later = await add('ok', LQ, { delay_ms: 60_000 })
    expect((await post(`/jobs/${later.id}/cancel`)).statusCode).toBe(200)
    const running = await add('hang', PQ, { max_retries: 0 })

    await w.start()
    await waitFor(async () => (await b.queue.getJob(running.id))?.state === 'active', {
      what: 'the hanging job running',
    })
    expect((await post(`/jobs/${running.id}/cancel`)).json().outcome).toBe('requested')
    const ended = async (id: string) => {
      const st = (await b.queue.getJob(id))?.state
      return st === 'completed' || st === 'failed' || st === 'cancelled'
    }
    const all = Object.values(ids).flat()
    await waitFor(async () => (await Promise.all(all.map(ended))).every(Boolean), {
      what: 'every job ended',
    })
    // A dead letter retried out of the DLQ (it fails again), and reads by id and by key.
    const dead = ids.perm![0]!
    expect((await post(`/jobs/${dead}/retry`)).statusCode).toBe(200)
    await waitFor(
      async () =>
        (await b.queue.getJob(dead))?.state === 'failed' && (await b.queue.getJob(dead))!.attempts === 2,
      { what: 'the retried dead letter failed again' },
    )
    for (const url of [
      `/jobs/${viaApi}?queue=${PQ}`,
      `/jobs/${s('id')}`,
      `/jobs?idempotency_key=${idem}&queue=${LQ}`,
      `/no-such-route/${s('id')}`,
    ])
      await api.app.inject({ method: 'GET', url })
    // worker_errors_total comes from the live workers' registry (published by their heartbeats).
    const body = await waitFor(
      async () => {
        const res = await api.app.inject({ method: 'GET', url: '/metrics' })
        expect(res.statusCode).toBe(200)
        const n = res.body.split('\n').filter((l) => l.startsWith('worker_errors_total{')).length
        return n === 8 ? res.body : null
      },
      { what: 'worker_errors_total for each failing type' },
    )
    const series = samples(body)
    // No label value (nor anything else in the body) holds a caller's string.
    for (const x of series)
      for (const [k, v] of Object.entries(x.labels))
        for (const secret of secrets) expect(v, `${x.name} ${k}`).not.toContain(secret)
    expect(body).not.toContain('ZZSECRET')

    // The scrape carries what the jobs did (so the labels checked are the ones they made).
    const has = (name: string, l: Record<string, string>) =>
      series.some((x) => x.name === name && Object.entries(l).every(([k, v]) => x.labels[k] === v))
    for (const cls of ['Error', 'PermanentJobError', 'TypeError', 'EREFUSED', 'UpstreamError', 'Timeout'])
      expect(has('task_failures_total', { error_class: cls }), cls).toBe(true)
    expect(has('task_completions_total', { queue: PQ, type: 'hang', status: 'cancelled' })).toBe(true)
    expect(has('task_retry_success_total', { queue: LQ, type: 'flaky' })).toBe(true)
    expect(has('limit_held_jobs', { queue: LQ, reason: 'key' })).toBe(true)
    expect(has('worker_errors_total', { worker: w.id, type: 'bad' })).toBe(true)
    expect(has('http_request_duration_seconds_count', { route: '/jobs/:id', status: '404' })).toBe(true)
    expect(has('http_request_duration_seconds_count', { route: '/jobs/:id/cancel' })).toBe(true)
    expect(has('http_request_duration_seconds_count', { route: 'unknown', status: '404' })).toBe(true)

    // The bounded labels hold only their own values. The process metrics (prom-client's
    // defaults: nodejs_*, process_*) carry prom-client's own labels and are left out.
    const allowed: Record<string, (v: string) => boolean> = {
      queue: (v) => v === LQ || v === PQ,
      type: (v) => TYPES.includes(v),
      task_type: (v) => v === '' || TYPES.includes(v),
      error_class: (v) =>
        [
          'Error',
          'PermanentJobError',
          'TypeError',
          'EREFUSED',
          'UpstreamError',
          'Timeout',
          '_other',
        ].includes(v),
      state: (v) => (STATES as readonly string[]).includes(v),
      priority: (v) => ['high', 'normal', 'low'].includes(v),
      le: (v) => v === '+Inf' || Number.isFinite(Number(v)),
      scope: (v) => v === 'queue' || v === 'type',
      reason: (v) => v === 'concurrency' || v === 'key',
      severity: (v) => ['critical', 'warning', 'info'].includes(v),
      channel: (v) => ['webhook', 'slack', 'email'].includes(v),
      outcome: (v) => ['sent', 'retried', 'failed'].includes(v),
      worker: (v) => v === w.id,
      method: (v) => ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'].includes(v),
      route: (v) => v === 'unknown' || /^\/[A-Za-z0-9_/:.*-]*$/.test(v),
    }
    for (const x of series) {
      if (/^(nodejs|process)_/.test(x.name)) continue
      for (const [k, v] of Object.entries(x.labels)) {
        if (x.name === 'task_completions_total' && k === 'status') {
          expect(['completed', 'failed', 'cancelled'], x.name).toContain(v)
          continue
        }
        if (x.name.startsWith('http_request_duration_seconds') && k === 'status') {
          expect(v, x.name).toMatch(/^[1-5][0-9][0-9]$/)
          continue
        }
        expect(allowed[k], `an unexpected label ${k} on ${x.name}`).toBeDefined()
        expect(allowed[k]!(v), `${x.name} ${k}="${v}"`).toBe(true)
      }
    }
  })
})
