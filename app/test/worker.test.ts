/**
 * The worker pool in-process against a real redis-server: handlers, retries, timeouts,
 * cancel, control commands, leases (with their negative control) and graceful shutdown.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { JobAbortedError, PermanentJobError, RetryJobError } from '../src/errors.ts'
import type { Job } from '../src/queue/job.ts'
import { type Bundle, setup, waitFor } from './helpers.ts'

let b: Bundle
beforeEach(async () => {
  b = await setup()
})
afterEach(() => b.cleanup())

const stateOf = async (id: string) => (await b.queue.getJob(id))?.state
const until = (id: string, state: string, timeoutMs = 15_000) =>
  waitFor(async () => (await stateOf(id)) === state, { timeoutMs, what: `job ${id} ${state}` })

describe('worker', () => {
  it('runs jobs to completion and registers itself', async () => {
    const w = b.worker()
    await w.start()
    const { job } = await b.queue.add('echo', { hi: 1 })
    await until(job.id, 'completed')
    const done = await b.queue.getJob(job.id)
    expect(done).toMatchObject({ result: { hi: 1 }, attempts: 1, worker: w.id })
    const workers = await waitFor(async () => {
      const ws = await b.queue.workers()
      return ws.find((x) => x.id === w.id && x.processed === 1) ? ws : null
    })
    expect(workers[0]).toMatchObject({
      id: w.id,
      pid: process.pid,
      queues: ['default'],
      concurrency: 4,
      state: 'running',
    })
  })

  it('never runs more than its concurrency at once', async () => {
    let now = 0
    let peak = 0
    const w = b.worker({ workerConcurrency: 3 }).handle('track', async () => {
      now++
      peak = Math.max(peak, now)
      await new Promise((r) => setTimeout(r, 30))
      now--
    })
    await w.start()
    await b.queue.addBulk(Array.from({ length: 20 }, () => ({ task_type: 'track' })))
    await waitFor(async () => (await b.queue.stats()).totals.completed === 20)
    expect(peak).toBe(3)
  })

  it('takes high priority jobs first', async () => {
    const order: unknown[] = []
    await b.queue.addBulk([
      { task_type: 'rec', payload: 'low', priority: 'low' },
      { task_type: 'rec', payload: 'normal' },
      { task_type: 'rec', payload: 'high', priority: 'high' },
    ])
    const w = b.worker({ workerConcurrency: 1 }).handle('rec', (job) => {
      order.push(job.payload)
    })
    await w.start()
    await waitFor(() => order.length === 3)
    expect(order).toEqual(['high', 'normal', 'low'])
  })

  it('retries with backoff, keeps every error, then dead-letters', async () => {
    const w = b.worker()
    await w.start()
    const { job } = await b.queue.add('fail', { message: 'nope' }, { max_retries: 2 })
    await until(job.id, 'failed')
    const j = (await b.queue.getJob(job.id))!
    expect(j).toMatchObject({ attempts: 3, failures: 3, error: 'nope' })
    expect(j.errors.map((e) => [e.attempt, e.message, e.worker])).toEqual([
      [1, 'nope', w.id],
      [2, 'nope', w.id],
      [3, 'nope', w.id],
    ])
    expect(j.errors[0]?.stack).toMatch(/Error: nope/)
    expect((await b.queue.listDlq()).items.map((x) => x.id)).toEqual([job.id])
  })

  it('succeeds after N failures and honours retry-after and permanent failures', async () => {
    const w = b.worker()
    w.handle('later', (_job, ctx) => {
      if (ctx.attempt === 1) throw new RetryJobError('try later', 700)
      return 'ok'
    })
    w.handle('never', () => {
      throw new PermanentJobError('bad input')
    })
    await w.start()
    const a = await b.queue.add('fail', { times: 2 }, { max_retries: 3 })
    const c = await b.queue.add('later', {})
    const d = await b.queue.add('never', {}, { max_retries: 5 })
    await until(a.job.id, 'completed')
    expect((await b.queue.getJob(a.job.id))?.attempts).toBe(3)
    await until(c.job.id, 'retrying')
    const r = (await b.queue.getJob(c.job.id))!
    expect(r.run_at! - r.updated_at).toBe(700)
    await until(c.job.id, 'completed')
    await until(d.job.id, 'failed')
    expect(await b.queue.getJob(d.job.id)).toMatchObject({ attempts: 1, error: 'bad input' })
  })

  it('dead-letters a job of an unknown type at once', async () => {
    await b.worker().start()
    const { job } = await b.queue.add('no_such_type', {}, { max_retries: 5 })
    await until(job.id, 'failed')
    expect((await b.queue.getJob(job.id))?.error).toMatch(/no handler for task type "no_such_type"/)
  })

  it('aborts a job at its timeout, then fails the attempt', async () => {
    let aborted: unknown
    const w = b.worker().handle('slow', async (_job, ctx) => {
      ctx.signal.addEventListener('abort', () => {
        aborted = ctx.signal.reason
      })
      await new Promise(() => {}) // ignores its signal: the worker must not wait for it
    })
    await w.start()
    const { job } = await b.queue.add('slow', {}, { timeout_ms: 150, max_retries: 0 })
    await until(job.id, 'failed')
    expect((await b.queue.getJob(job.id))?.error).toBe('timed out after 150 ms')
    expect(aborted).toBeInstanceOf(JobAbortedError)
    // The outcome is in Redis before the worker hears back and lets go of the run.
    await waitFor(() => w.active === 0, { timeoutMs: 2000, what: 'the run released' })
  })

  it('gives a handler that first reads ctx.signal after its timeout an aborted signal, with the reason', async () => {
    // The signal is made when a handler first reads it (most never do): one read after the
    // run was told to stop must still see it stopped, as a listener added before would have.
    const seen: Array<{ aborted: boolean; reason: unknown }> = []
    const w = b.worker().handle('late', async (_job, ctx) => {
      await new Promise((r) => setTimeout(r, 300))
      seen.push({ aborted: ctx.signal.aborted, reason: ctx.signal.reason })
      await new Promise(() => {})
    })
    await w.start()
    const { job } = await b.queue.add('late', {}, { timeout_ms: 100, max_retries: 0 })
    await until(job.id, 'failed')
    await waitFor(() => seen.length === 1, { timeoutMs: 2000, what: 'the handler read its signal' })
    expect(seen[0]!.aborted).toBe(true)
    expect(seen[0]!.reason).toBeInstanceOf(JobAbortedError)
    expect((seen[0]!.reason as JobAbortedError).reason).toBe('timeout')
    await waitFor(() => w.active === 0, { timeoutMs: 2000, what: 'the run released' })
  })

  it('cancels a running job from another process: signal aborts, job ends cancelled', async () => {
    const w = b.worker()
    await w.start()
    const { job } = await b.queue.add('sleep', { ms: 30_000 })
    await until(job.id, 'active')
    const t0 = Date.now()
    expect((await b.queue.cancel(job.id)).outcome).toBe('requested')
    await until(job.id, 'cancelled', 3000)
    expect(Date.now() - t0).toBeLessThan(2000)
    await waitFor(() => w.active === 0, { timeoutMs: 2000, what: 'the run released' })
  })

  it('records progress and log lines', async () => {
    const w = b.worker().handle('report', async (_job, ctx) => {
      await ctx.progress(50)
      await ctx.log('half way')
      await ctx.progress(100)
      return 1
    })
    await w.start()
    const { job } = await b.queue.add('report', {})
    await until(job.id, 'completed')
    expect((await b.queue.getJob(job.id))?.progress).toBe(100)
    expect(await b.queue.jobLogs(job.id)).toEqual(['half way'])
  })

  it('pauses, resumes and drains on command', async () => {
    const w = b.worker()
    await w.start()
    await b.queue.commandWorker(w.id, 'pause')
    await waitFor(() => w.state === 'paused')
    const { job } = await b.queue.add('echo', {})
    await waitFor(async () => (await b.queue.workers()).some((x) => x.state === 'paused'))
    expect(await stateOf(job.id)).toBe('queued')
    await b.queue.commandWorker(w.id, 'resume')
    await until(job.id, 'completed')
    await b.queue.commandWorker(w.id, 'drain')
    await w.stopped
    expect(w.state).toBe('stopped')
    expect(await b.queue.workers()).toEqual([])
    await expect(b.queue.commandWorker(w.id, 'pause')).rejects.toMatchObject({ code: 'NOT_FOUND' })
  })

  it('leaves a paused queue alone', async () => {
    await b.queue.pauseQueue('default')
    const w = b.worker()
    await w.start()
    const { job } = await b.queue.add('echo', {})
    await new Promise((r) => setTimeout(r, 300))
    expect(await stateOf(job.id)).toBe('queued')
    await b.queue.resumeQueue('default')
    await until(job.id, 'completed')
  })

  it('runs delayed jobs when due', async () => {
    await b.worker().start()
    const { job } = await b.queue.add('echo', {}, { delay_ms: 300 })
    expect(job.state).toBe('scheduled')
    await until(job.id, 'completed')
    const j = (await b.queue.getJob(job.id))!
    expect(j.started_at!).toBeGreaterThanOrEqual(j.run_at!)
    expect(j.run_at! - j.created_at).toBe(300)
  })
})

describe('leases', () => {
  const runs = new Map<string, number>()
  const longJob = (ms: number) => async (job: Job) => {
    runs.set(job.id, (runs.get(job.id) ?? 0) + 1)
    await new Promise((r) => setTimeout(r, ms))
    return 'done'
  }

  it('a job running 3x longer than CLAIM_IDLE_MS runs once', async () => {
    const w1 = b.worker().handle('long', longJob(3000))
    const w2 = b.worker().handle('long', longJob(3000))
    await w1.start()
    await w2.start()
    const { job } = await b.queue.add('long', {})
    await until(job.id, 'completed', 20_000)
    await new Promise((r) => setTimeout(r, 300))
    expect(runs.get(job.id)).toBe(1)
    expect((await b.queue.getJob(job.id))?.stalls).toBe(0)
  })

  it('negative control: with lease renewal off the same job runs twice', async () => {
    const w1 = b.worker({}, { unsafe: { noLeaseRenewal: true } }).handle('long', longJob(3000))
    const w2 = b.worker({}, { unsafe: { noLeaseRenewal: true } }).handle('long', longJob(3000))
    await w1.start()
    await w2.start()
    const { job } = await b.queue.add('long', {})
    await waitFor(() => (runs.get(job.id) ?? 0) >= 2, { timeoutMs: 20_000, what: 'a second run' })
    expect(runs.get(job.id)).toBeGreaterThanOrEqual(2)
  })

  it('a handler that blocks the event loop past CLAIM_IDLE_MS keeps its lease (renewed from a thread)', async () => {
    // The handler blocks this very process (test included): give its own commands time.
    await b.cleanup()
    b = await setup({ config: { redisCommandTimeoutMs: 10_000 } })
    const w1 = b.worker()
    const w2 = b.worker()
    await w1.start()
    await w2.start()
    const { job } = await b.queue.add('cpu', { ms: 2500 })
    await until(job.id, 'completed', 20_000)
    expect(await b.queue.getJob(job.id)).toMatchObject({ attempts: 1, stalls: 0 })
  })
})

describe('graceful shutdown', () => {
  it('lets running jobs finish within the budget', async () => {
    const w = b.worker()
    await w.start()
    const { job } = await b.queue.add('sleep', { ms: 300 })
    await until(job.id, 'active')
    await w.close(5000)
    expect(await stateOf(job.id)).toBe('completed')
  })

  it('hands back what is unfinished at the deadline for immediate redelivery', async () => {
    const w1 = b.worker()
    await w1.start()
    const { job } = await b.queue.add('sleep', { ms: 60_000 })
    await until(job.id, 'active')
    const t0 = Date.now()
    await w1.close(300)
    expect(Date.now() - t0).toBeLessThan(3000)
    expect(await b.queue.getJob(job.id)).toMatchObject({ state: 'queued', stalls: 0 })
    const pending = (await b.redis.xpending(b.queue.store.keys.stream('default', 'normal'), 'workers')) as [
      number,
    ]
    expect(pending[0]).toBe(0)
    // A new worker picks it up at once (not after CLAIM_IDLE_MS).
    const w2 = b.worker()
    await w2.start()
    await until(job.id, 'active', 900)
    expect((await b.queue.getJob(job.id))?.worker).toBe(w2.id)
  })
})
