/**
 * What the engine counts for /metrics (ADR 0024), against a real Redis: a failure's error class
 * on the job, on its attempt record and in the failure counts by (type, class); classes capped
 * per queue; DTQ's own dead letters carry a class of their own; the run time per task type;
 * submissions by priority (normal ones derived); completions after a retry; and how they render
 * under the seeds' names. The live scrape by a real Prometheus is prometheus.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { engineMetrics } from '../src/http/metrics.ts'
import { HISTOGRAM_BUCKETS_MS, QUEUE_KEY } from '../src/redis/keys.ts'
import type { JobStore } from '../src/redis/store.ts'
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
