/**
 * Start deadlines and snooze (ADR 0021). Deadlines on a fake clock: a job not started by its
 * `start_by` ends `cancelled` with `expired: true` and an error that says when -- at the
 * delivery that finds it late (no attempt counted), or by the promote call's sweep while it
 * still waits (queued, scheduled, retrying, waiting on parents); a job started in time is never
 * touched; an operator's retry runs it. Snooze: a handler puts its job off without using an
 * attempt, fenced by the delivery's epoch, bounded by MAX_SNOOZES. Bad arguments are refused
 * before the first write.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { DtqError, SnoozeJob } from '../src/errors.ts'
import { F } from '../src/queue/job.ts'
import type { JobStore } from '../src/redis/store.ts'
import { type Bundle, FakeClock, plainRecord, setup, waitFor } from './helpers.ts'

const Q = 'dl'
let b: Bundle
let clock: FakeClock
let store: JobStore

async function fake(): Promise<void> {
  clock = new FakeClock()
  b = await setup({ clock })
  store = b.queue.store
}
afterEach(async () => {
  await b.cleanup()
})

const iso = (ms: number) => new Date(ms).toISOString()

describe('deadlines', () => {
  it('a job delivered after its deadline ends cancelled, expired, without an attempt', async () => {
    await fake()
    const t0 = clock.now()
    const { job } = await b.queue.add('late', { a: 1 }, { queue: Q, expires_in_ms: 1000 })
    expect(job.start_by).toBe(t0 + 1000)
    clock.advance(1001)
    const got = await store.deliver(Q, 'w1', 5)
    expect(got.jobs).toEqual([])
    const j = await b.queue.getJob(job.id, Q)
    expect(j).toMatchObject({
      state: 'cancelled',
      expired: true,
      attempts: 0,
      error: `expired: not started by ${iso(t0 + 1000)}`,
    })
    expect(await store.queuedCount(Q)).toBe(0)
    const stats = await b.redis.hgetall(store.keys.stats(Q))
    expect(stats).toMatchObject({ expired: '1', 'expired|late': '1', cancelled: '1' })
  })

  it('one started in time is never touched: it completes past its deadline', async () => {
    await fake()
    const { job } = await b.queue.add('t', {}, { queue: Q, start_by: iso(clock.now() + 1000) })
    const [j] = (await store.deliver(Q, 'w1', 1)).jobs
    clock.advance(5000)
    await store.promote(Q) // the sweep
    expect((await b.queue.getJob(job.id, Q))?.state).toBe('active')
    expect(await store.complete(Q, [{ id: j!.id, epoch: j!.epoch, result: '1' }])).toEqual([1])
  })

  it('the sweep ends queued, scheduled and waiting jobs once their deadline passes', async () => {
    await fake()
    const queued = await b.queue.add('q', {}, { queue: Q, expires_in_ms: 500 })
    const scheduled = await b.queue.add('s', {}, { queue: Q, delay_ms: 400, expires_in_ms: 500 })
    const far = await b.queue.add('s', {}, { queue: Q, delay_ms: 60_000, expires_in_ms: 120_000 })
    const parent = await b.queue.add('p', {}, { queue: Q, delay_ms: 60_000 })
    const waiting = await b.queue.add('w', {}, { queue: Q, depends_on: [parent.job.id], expires_in_ms: 500 })
    expect(waiting.job.state).toBe('waiting')
    clock.advance(499)
    await store.promote(Q)
    expect((await b.queue.getJob(scheduled.job.id, Q))?.state).toBe('queued')
    clock.advance(2)
    await store.promote(Q)
    for (const id of [queued.job.id, scheduled.job.id, waiting.job.id]) {
      expect(await b.queue.getJob(id, Q)).toMatchObject({ state: 'cancelled', expired: true, attempts: 0 })
    }
    expect(await store.queuedCount(Q)).toBe(0)
    expect((await b.queue.getJob(far.job.id, Q))?.state).toBe('scheduled')
    // Only the far job's deadline is left in the set.
    expect(await b.redis.zrange(`${store.keys.base(Q)}:deadlines`, 0, -1)).toEqual([far.job.id])
  })

  it('a retry due after the deadline is ended at its delivery; an operator retry runs it', async () => {
    await fake()
    const { job } = await b.queue.add('r', {}, { queue: Q, expires_in_ms: 1000, max_retries: 3 })
    const [j] = (await store.deliver(Q, 'w1', 1)).jobs
    expect(
      await store.fail(Q, j!.id, j!.epoch, 'retry', { message: 'boom', worker: 'w1', attempt: 1 }, 5000),
    ).toBe('retrying')
    clock.advance(5001)
    await store.promote(Q)
    expect((await store.deliver(Q, 'w1', 1)).jobs).toEqual([])
    expect(await b.queue.getJob(job.id, Q)).toMatchObject({ state: 'cancelled', expired: true, attempts: 1 })
    const again = await b.queue.retry(job.id, Q)
    expect(again).toMatchObject({ state: 'queued', start_by: null, expired: false })
    expect((await store.deliver(Q, 'w1', 1)).jobs.map((x) => x.id)).toEqual([job.id])
  })

  it.each([
    [{ start_by: 1 }, /start_by must be a time ahead of now/],
    [{ start_by: '2020-01-01T00:00:00Z' }, /start_by must be a time ahead of now/],
    [{ start_by: 'tomorrow' }, /start_by must be/],
    [{ expires_in_ms: 0 }, /expires_in_ms/],
    [{ expires_in_ms: 10, start_by: Date.UTC(2027, 0, 1) }, /not both/],
    [{ expires_in_ms: 1000, delay_ms: 2000 }, /could never start/],
  ])('the library refuses %j, writing nothing', async (opts, why) => {
    await fake()
    const before = await b.keys()
    const err = await b.queue.add('t', {}, { queue: Q, ...(opts as object) }).catch((e) => e)
    expect(err).toBeInstanceOf(DtqError)
    expect((err as DtqError).message).toMatch(why)
    expect(await b.keys()).toEqual(before)
  })

  it.each([['abc'], ['0'], ['-5'], ['1e12'], ['12345678901234567']])(
    'the enqueue function refuses a stored start_by of %j before its first write',
    async (sb) => {
      await fake()
      await b.queue.add('warm', {}, { queue: Q })
      const before = await b.keys()
      const rec = plainRecord('x1', { [F.start_by]: sb })
      await expect(store.enqueue(Q, [rec])).rejects.toThrow(/start_by must be/)
      expect(await b.keys()).toEqual(before)
    },
  )
})

describe('snooze', () => {
  it('ctx.snooze and SnoozeJob put the job off without using an attempt', async () => {
    b = await setup()
    const seen: number[] = []
    const w = b
      .worker()
      .handle('poll', async (job, ctx) => {
        seen.push(ctx.attempt)
        if (job.snoozes < 2) ctx.snooze(30)
        return 'ready'
      })
      .handle('poll2', async (job) => {
        if (job.snoozes < 1) throw new SnoozeJob(30)
        return 'ready'
      })
    await w.start()
    const a = await b.queue.add('poll', {})
    const c = await b.queue.add('poll2', {})
    const done = await waitFor(async () => {
      const js = await Promise.all([b.queue.getJob(a.job.id), b.queue.getJob(c.job.id)])
      return js.every((j) => j?.state === 'completed') ? js : null
    })
    expect(done[0]).toMatchObject({ attempts: 1, snoozes: 2, failures: 0, errors: [], result: 'ready' })
    expect(done[1]).toMatchObject({ attempts: 1, snoozes: 1, failures: 0, result: 'ready' })
    expect(seen).toEqual([1, 1, 1])
  })

  it('is fenced, honours a cancel request and the most snoozes, and refuses bad arguments', async () => {
    await fake()
    const { job } = await b.queue.add('t', {}, { queue: Q })
    const [j] = (await store.deliver(Q, 'w1', 1)).jobs
    // A stale delivery's snooze is rejected and changes nothing.
    const before = await b.redis.hgetall(store.keys.job(Q, job.id))
    expect(await store.snooze(Q, job.id, j!.epoch - 1, 1000, 0)).toBe('stale')
    expect(await b.redis.hgetall(store.keys.job(Q, job.id))).toEqual(before)
    // Bad arguments: refused, nothing written.
    const keys = await b.keys()
    for (const [delay, max] of [
      [Number.NaN, 0],
      [-1, 0],
      [1e15, 0],
      [10, -1],
      [10, 1.5],
    ] as const) {
      await expect(store.snooze(Q, job.id, j!.epoch, delay, max)).rejects.toThrow(/DTQ_BAD_ARG/)
    }
    expect(await b.keys()).toEqual(keys)
    expect(await b.redis.hgetall(store.keys.job(Q, job.id))).toEqual(before)
    // The owner's snooze: scheduled, the attempt taken back.
    expect(await store.snooze(Q, job.id, j!.epoch, 1000, 1)).toBe('snoozed')
    expect(await b.queue.getJob(job.id, Q)).toMatchObject({
      state: 'scheduled',
      attempts: 0,
      snoozes: 1,
      run_at: clock.now() + 1000,
    })
    clock.advance(1000)
    await store.promote(Q)
    const [k] = (await store.deliver(Q, 'w1', 1)).jobs
    expect(k).toMatchObject({ id: job.id, attempts: 1 })
    // One more than the limit of 1: dead-lettered.
    expect(await store.snooze(Q, job.id, k!.epoch, 1000, 1)).toBe('failed')
    expect(await b.queue.getJob(job.id, Q)).toMatchObject({
      state: 'failed',
      error: 'snoozed more than 1 times',
    })
    // A cancel request wins over a snooze.
    const c = await b.queue.add('t', {}, { queue: Q })
    const [m] = (await store.deliver(Q, 'w1', 1)).jobs
    await b.queue.cancel(c.job.id, Q)
    expect(await store.snooze(Q, c.job.id, m!.epoch, 1000, 0)).toBe('cancelled')
  })
})
