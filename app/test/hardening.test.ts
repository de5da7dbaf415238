/**
 * Regression tests for the holes a review found in the delivery guarantee (issue 14), each
 * against a real redis-server: refused arguments never half-apply a state change, a cancel
 * request is final, stale writes of every kind are counted, a job whose stream entry was
 * deleted is repaired, a dead lease thread is restarted, and a run that finished at the
 * shutdown deadline is not handed back.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { RetryJobError } from '../src/errors.ts'
import { F } from '../src/queue/job.ts'
import { hashIdempotencyKey } from '../src/queue/queue.ts'
import { MAX_DELAY_MS } from '../src/queue/validate.ts'
import { GROUP } from '../src/redis/keys.ts'
import { functions, type ScriptName } from '../src/redis/scripts.ts'
import type { JobStore } from '../src/redis/store.ts'
import { type Bundle, FakeClock, setup, waitFor } from './helpers.ts'

const Q = 'default'
let b: Bundle
afterEach(() => b.cleanup())

const err = { message: 'boom', worker: 'w1', attempt: 1 }

async function stats(store: JobStore): Promise<Record<string, string>> {
  return b.redis.hgetall(store.keys.stats(Q))
}

describe('scripts refuse bad arguments before their first write', () => {
  let clock: FakeClock
  let store: JobStore
  beforeEach(async () => {
    clock = new FakeClock()
    b = await setup({ clock })
    store = b.queue.store
  })

  it.each([
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['1e15', 1e15],
  ])('a retry delay of %s is refused and the job is untouched', async (_name, delay) => {
    const { job } = await b.queue.add('echo', {}, { max_retries: 3 })
    const [j] = (await store.deliver(Q, 'w1', 1)).jobs
    const before = await b.redis.hgetall(store.keys.job(Q, job.id))
    // Past the library's own checks: the script is the last line of defence.
    const call = store.fail(Q, j!.id, j!.epoch, 'retry', err, delay)
    await expect(call).rejects.toThrow(/DTQ_BAD_ARG retry delay/)
    expect(await b.redis.hgetall(store.keys.job(Q, job.id))).toEqual(before)
    expect(await b.redis.zcard(store.keys.delayed(Q))).toBe(0)
    // Still active and owned: the worker can record a valid outcome.
    expect(await store.fail(Q, j!.id, j!.epoch, 'retry', err, 10)).toBe('retrying')
  })

  it('progress, heartbeat, hand-back and fetch refuse malformed numbers, writing nothing', async () => {
    const { job } = await b.queue.add('echo', {})
    const [j] = (await store.deliver(Q, 'w1', 1)).jobs
    const keysBefore = await b.keys()
    const hashBefore = await b.redis.hgetall(store.keys.job(Q, job.id))
    await expect(store.progress(Q, j!.id, j!.epoch, Number.POSITIVE_INFINITY, null)).rejects.toThrow(
      /DTQ_BAD_ARG/,
    )
    await expect(
      store.fetch(Q, 'w1', Number.NaN, [{ id: j!.id, epoch: j!.epoch, result: '1' }]),
    ).rejects.toThrow(/DTQ_BAD_ARG count/)
    expect(await b.keys()).toEqual(keysBefore)
    expect(await b.redis.hgetall(store.keys.job(Q, job.id))).toEqual(hashBefore)
  })

  it('a call announcing more or fewer groups than it sends is refused before its first write', async () => {
    // Two running jobs, one completed and pruned long ago (complete prunes before its groups),
    // one failed: every script below would have had something to write.
    await b.queue.add('echo', {})
    const [old] = (await store.deliver(Q, 'w1', 1)).jobs
    await store.complete(Q, [{ id: old!.id, epoch: old!.epoch, result: '1' }])
    clock.advance(10 * 86_400_000)
    for (const p of [{}, {}]) await b.queue.add('echo', p)
    await b.queue.add('echo', {}, { max_retries: 0 })
    const [j1, j2, j3] = (await store.deliver(Q, 'w1', 3)).jobs
    await store.fail(Q, j3!.id, j3!.epoch, 'permanent', err, 0)
    const dump = async () => {
      const keys = (await b.keys()).sort()
      return Promise.all(keys.map(async (k) => [k, await b.redis.call('DUMP', k)]))
    }
    const before = await dump()
    const head = (more: string[]) => [String(clock.now()), '1000', '3600', '3600', ...more]
    const group = (j: { id: string; epoch: number }) => [
      j.id,
      String(j.epoch),
      '1',
      '',
      '0',
      '',
      '',
      '',
      '',
      '',
    ]
    const fn = functions()
    const calls: Array<[ScriptName, string[]]> = [
      ['complete', head(['2', ...group(j1!)])], // two announced, one sent
      ['complete', head(['1', ...group(j1!), ...group(j2!)])], // one announced, two sent
      ['fetch', head(['w1', '5', '2', ...group(j1!)])],
      ['handback', head(['2', j1!.id, String(j1!.epoch)])],
      ['heartbeat', head(['w1', '2', j1!.id, String(j1!.epoch), j2!.id])],
      ['repair', head(['3', j1!.id, j2!.id])],
      ['requeue', head(['2', j3!.id])],
      ['complete', ['1', '1000', 'soon', '3600', '1', ...group(j1!)]], // a retention that is no number
    ]
    for (const [name, args] of calls)
      await expect(fn.call(b.redis, name, store.keys.base(Q), args), name).rejects.toThrow(/DTQ_BAD_ARG/)
    expect(await dump()).toEqual(before)
  })
})

describe('a retry delay from a handler', () => {
  beforeEach(async () => {
    b = await setup()
  })

  it.each([
    ['NaN (a missing Retry-After)', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
  ])('of %s falls back to the backoff: the job is retried and completes', async (_name, delay) => {
    let calls = 0
    const w = b.worker().handle('flaky', () => {
      if (++calls === 1) throw new RetryJobError('rate limited', delay)
      return 'ok'
    })
    await w.start()
    const { job } = await b.queue.add('flaky', {}, { max_retries: 2 })
    await waitFor(async () => (await b.queue.getJob(job.id))?.state === 'completed', { what: 'completed' })
    expect(await b.queue.getJob(job.id)).toMatchObject({ attempts: 2, failures: 1, result: 'ok' })
  })

  it('of 1e15 ms is capped at the longest delay DTQ accepts (a year), never forever', async () => {
    const w = b.worker().handle('later', () => {
      throw new RetryJobError('come back much later', 1e15)
    })
    await w.start()
    const { job } = await b.queue.add('later', {}, { max_retries: 2 })
    const j = await waitFor(async () => {
      const x = await b.queue.getJob(job.id)
      return x?.state === 'retrying' ? x : null
    })
    expect(j.run_at! - j.updated_at).toBeLessThanOrEqual(MAX_DELAY_MS)
    expect(j.run_at! - j.updated_at).toBeGreaterThan(MAX_DELAY_MS - 60_000)
  })
})

describe('a cancel request is final', () => {
  let store: JobStore
  beforeEach(async () => {
    b = await setup({ clock: new FakeClock() })
    store = b.queue.store
  })

  async function deliverCancelled() {
    const { job } = await b.queue.add('echo', {}, { max_retries: 5 })
    const [j] = (await store.deliver(Q, 'w1', 1)).jobs
    expect((await b.queue.cancel(job.id)).outcome).toBe('requested')
    return j!
  }

  it.each(['retry', 'permanent'] as const)('a %s failure after the request ends cancelled', async (mode) => {
    const j = await deliverCancelled()
    expect(await store.fail(Q, j.id, j.epoch, mode, err, 10)).toBe('cancelled')
    const job = await store.getJob(Q, j.id)
    expect(job).toMatchObject({ state: 'cancelled', cancel_requested: false, error: 'boom' })
    expect(await b.redis.zcard(store.keys.delayed(Q))).toBe(0)
    expect(await b.redis.xlen(store.keys.dlq(Q))).toBe(0)
  })

  it('a completion after the request ends cancelled, keeping the result', async () => {
    const j = await deliverCancelled()
    expect(await store.complete(Q, [{ id: j.id, epoch: j.epoch, result: '"done"' }])).toEqual([2])
    expect(await store.getJob(Q, j.id)).toMatchObject({ state: 'cancelled', result: 'done' })
    expect(await b.redis.xlen(store.keys.stream(Q, 'normal'))).toBe(0)
    expect(await b.redis.zrange(store.keys.index(Q, 'cancelled'), 0, -1)).toEqual([j.id])
  })

  it('a job that comes back to a stream with a request never runs again', async () => {
    const { job } = await b.queue.add('echo', {})
    // As left by an older version, or any path that requeues without looking at the flag.
    await b.redis.hset(store.keys.job(Q, job.id), F.cancel_requested, '1')
    expect((await store.deliver(Q, 'w1', 5)).jobs).toEqual([])
    expect(await store.getJob(Q, job.id)).toMatchObject({ state: 'cancelled' })
    const pending = (await b.redis.xpending(store.keys.stream(Q, 'normal'), GROUP)) as [number]
    expect(pending[0]).toBe(0)
  })

  it('a handler that fails right after the request, before any notice reaches it, ends cancelled', async () => {
    b.cleanup()
    b = await setup()
    let fail: (e: Error) => void = () => {}
    let started = false
    const w = b.worker().handle('stubborn', () => {
      started = true
      return new Promise((_, reject) => (fail = reject)) // never looks at ctx.signal
    })
    await w.start()
    // The pub/sub notice never arrives (and the next heartbeat comes too late to matter).
    ;(w as unknown as { subscriber: { disconnect(): void } }).subscriber.disconnect()
    for (let i = 0; i < 6; i++) {
      started = false
      const { job } = await b.queue.add('stubborn', {}, { max_retries: 5 })
      await waitFor(() => started)
      await b.queue.cancel(job.id)
      fail(new Error('downstream error'))
      await waitFor(async () => (await b.queue.getJob(job.id))?.state === 'cancelled', {
        what: `job ${job.id} cancelled`,
      })
      expect(await b.queue.getJob(job.id)).toMatchObject({ attempts: 1 })
    }
  })
})

describe('idempotency outlives retention', () => {
  let clock: FakeClock
  let store: JobStore
  beforeEach(async () => {
    clock = new FakeClock()
    b = await setup({ clock, config: { completedRetentionS: 60 } })
    store = b.queue.store
  })

  async function finish(how: 'completed' | 'failed' | 'cancelled', key: string) {
    const { job } = await b.queue.add('echo', { n: 1 }, { idempotency_key: key, max_retries: 0 })
    if (how === 'cancelled') {
      await b.queue.cancel(job.id)
      return job.id
    }
    const [j] = (await store.deliver(Q, 'w1', 1)).jobs
    // A worker passes the key's hash with the completion of a keyed job (it has the job).
    if (how === 'completed')
      await store.complete(Q, [
        { id: j!.id, epoch: j!.epoch, result: '1', idemHash: hashIdempotencyKey(key) },
      ])
    else await store.fail(Q, j!.id, j!.epoch, 'permanent', err, 0)
    return job.id
  }

  it.each(['completed', 'failed', 'cancelled'] as const)(
    'a repeat after a %s job was removed answers with the original job, never a second one',
    async (how) => {
      const id = await finish(how, `key-${how}`)
      const finishedAt = clock.now()
      // Retention passes and the record goes (pruned, purged from the DLQ, expired).
      clock.advance(61_000)
      if (how === 'completed') expect(await store.pruneCompleted(Q)).toBe(1)
      else await b.redis.del(store.keys.job(Q, id))
      expect(await store.getJob(Q, id)).toBeNull()
      const again = await b.queue.add('echo', { n: 2 }, { idempotency_key: `key-${how}` })
      expect(again.created).toBe(false)
      expect(again.job).toMatchObject({ id, state: how, finished_at: finishedAt, removed: true })
      expect(await b.queue.findByIdempotencyKey(`key-${how}`)).toMatchObject({
        id,
        state: how,
        removed: true,
      })
      expect(await b.queue.findByIdempotencyKey(`key-${how}`, Q)).toMatchObject({
        id,
        state: how,
        removed: true,
      })
      // Nothing was written for the repeat.
      expect(await b.redis.hget(store.keys.stats(Q), 'created')).toBe('1')
    },
  )

  it.each(['completed', 'failed', 'cancelled'] as const)(
    'an idempotency key expires: written with IDEMPOTENCY_TTL_S, its TTL kept when its %s job finishes (invariant 14)',
    async (how) => {
      const key = store.keys.idempotency(Q, hashIdempotencyKey(`ttl-${how}`))
      const ttlS = b.config.idempotencyTtlS
      await finish(how, `ttl-${how}`)
      const left = await b.redis.ttl(key)
      expect(left).toBeGreaterThan(ttlS - 60)
      expect(left).toBeLessThanOrEqual(ttlS)
      expect(await b.redis.get(key)).toMatch(new RegExp(`^\\S+ ${how} `)) // the outcome, appended
    },
  )

  it('once IDEMPOTENCY_TTL_S has passed, the key is free again', async () => {
    const id = await finish('completed', 'short-lived')
    await b.redis.del(
      store.keys.idempotency(Q, (await import('../src/queue/queue.ts')).hashIdempotencyKey('short-lived')),
    )
    clock.advance(61_000)
    await store.pruneCompleted(Q)
    const again = await b.queue.add('echo', {}, { idempotency_key: 'short-lived' })
    expect(again.created).toBe(true)
    expect(again.job.id).not.toBe(id)
  })

  it('a caller-chosen job_id names a job only while it exists: after retention the id may be used again', async () => {
    const { job } = await b.queue.add('echo', {}, { id: 'order-17' })
    const [j] = (await store.deliver(Q, 'w1', 1)).jobs
    await store.complete(Q, [{ id: j!.id, epoch: j!.epoch, result: '1' }])
    expect((await b.queue.add('echo', {}, { id: 'order-17' })).created).toBe(false)
    clock.advance(61_000)
    await store.pruneCompleted(Q)
    const again = await b.queue.add('echo', {}, { id: 'order-17' })
    expect(again).toMatchObject({ created: true, job: { id: job.id, state: 'queued' } })
  })

  it("a key whose job's id was used again answers its own job's outcome, not the new job", async () => {
    const key = 'order-9-key'
    await b.queue.add('echo', { v: 1 }, { id: 'order-9', idempotency_key: key })
    const [j] = (await store.deliver(Q, 'w1', 1)).jobs
    await store.complete(Q, [{ id: j!.id, epoch: j!.epoch, result: '1', idemHash: hashIdempotencyKey(key) }])
    const finishedAt = (await b.queue.getJob('order-9'))!.finished_at
    clock.advance(61_000)
    await store.pruneCompleted(Q)
    const other = await b.queue.add('other', { v: 2 }, { id: 'order-9' })
    expect(other.created).toBe(true)
    const repeat = await b.queue.add('echo', { v: 1 }, { id: 'order-9', idempotency_key: key })
    expect(repeat.created).toBe(false)
    expect(repeat.job).toMatchObject({
      id: 'order-9',
      state: 'completed',
      finished_at: finishedAt,
      removed: true,
    })
    // Without an id of its own, the repeat is answered the same way.
    const repeat2 = await b.queue.add('echo', { v: 1 }, { idempotency_key: key })
    expect(repeat2.job).toMatchObject({ id: 'order-9', state: 'completed', removed: true })
    expect((await b.queue.getJob('order-9'))?.task_type).toBe('other')
  })
})

describe('stale writes', () => {
  let store: JobStore
  beforeEach(async () => {
    b = await setup({ clock: new FakeClock() })
    store = b.queue.store
  })

  it('a stale hand-back, progress or heartbeat is rejected and counted; the owner’s own finished job is not', async () => {
    await b.queue.addBulk([{ task_type: 'echo' }, { task_type: 'echo' }])
    const [a, c] = (await store.deliver(Q, 'w1', 2)).jobs
    expect(await store.handBack(Q, [{ id: a!.id, epoch: a!.epoch + 1 }])).toEqual([0])
    expect(await store.progress(Q, a!.id, a!.epoch + 1, 50, null)).toBe(false)
    expect(await store.heartbeat(Q, 'w1', [{ id: a!.id, epoch: a!.epoch + 1 }])).toEqual([0])
    expect((await stats(store)).stale_writes).toBe('3')
    // The lease thread may renew a job its owner has just completed: not a stale write.
    await store.complete(Q, [{ id: c!.id, epoch: c!.epoch, result: '1' }])
    expect(await store.heartbeat(Q, 'w1', [{ id: c!.id, epoch: c!.epoch }])).toEqual([0])
    expect((await stats(store)).stale_writes).toBe('3')
  })
})

describe('a job whose stream entry was deleted behind DTQ’s back', () => {
  it('is dead-lettered by its owner’s heartbeat, with an error that says why', async () => {
    b = await setup({ clock: new FakeClock() })
    const store = b.queue.store
    const { job } = await b.queue.add('echo', {})
    const [j] = (await store.deliver(Q, 'w1', 1)).jobs
    await b.redis.xdel(
      store.keys.stream(Q, 'normal'),
      (await b.redis.hget(store.keys.job(Q, job.id), F.entry))!,
    )
    expect(await store.heartbeat(Q, 'w1', [{ id: j!.id, epoch: j!.epoch }])).toEqual([0])
    const dead = await store.getJob(Q, job.id)
    expect(dead).toMatchObject({ state: 'failed', epoch: j!.epoch + 1 })
    expect(dead?.error).toMatch(/stream entry was deleted outside DTQ/)
    expect((await stats(store)).lost_entries).toBe('1')
    // Its late completion is fenced out.
    expect(await store.complete(Q, [{ id: j!.id, epoch: j!.epoch, result: '1' }])).toEqual([0])
  })

  it('a running worker aborts the handler and the job ends in the DLQ', async () => {
    b = await setup()
    let aborted = false
    const w = b.worker().handle('wait', async (_job, ctx) => {
      await new Promise<void>((resolve) => {
        const done = () => {
          aborted = true
          resolve()
        }
        if (ctx.signal.aborted) done()
        else ctx.signal.addEventListener('abort', done)
      })
    })
    await w.start()
    const { job } = await b.queue.add('wait', {})
    await waitFor(async () => (await b.queue.getJob(job.id))?.state === 'active')
    const store = b.queue.store
    await b.redis.xdel(
      store.keys.stream(Q, 'normal'),
      (await b.redis.hget(store.keys.job(Q, job.id), F.entry))!,
    )
    await waitFor(() => aborted, { what: 'handler aborted' })
    expect(await b.queue.getJob(job.id)).toMatchObject({ state: 'failed' })
  })
})

describe('the lease thread', () => {
  beforeEach(async () => {
    b = await setup()
  })

  /**
   * Crashes the lease thread while a long job runs; returns how often its lease lapsed. The
   * lapse window is longer than the tests' 1 s: a new thread takes 0.4 s to start on an idle
   * machine and over 1 s on a loaded one (the restart test failed so); the job outlasts it.
   */
  async function stallsWithCrashedThread(restart: boolean): Promise<number> {
    let runs = 0
    const long = async (_job: unknown, ctx: { signal: AbortSignal }) => {
      runs++
      await new Promise((resolve, reject) => {
        const t = setTimeout(resolve, 5000)
        ctx.signal.addEventListener('abort', () => {
          clearTimeout(t)
          reject(ctx.signal.reason)
        })
      })
    }
    const w = b.worker({ claimIdleMs: 2500 }, { unsafe: { noLeaseRestart: !restart } }).handle('long', long)
    await w.start()
    const { job } = await b.queue.add('long', {})
    await waitFor(() => runs === 1)
    ;(w as unknown as { leases: { crash(): void } }).leases.crash()
    const end = await waitFor(
      async () => {
        const j = await b.queue.getJob(job.id)
        return j && (j.state === 'completed' || j.stalls > 0) ? j : null
      },
      { timeoutMs: 20_000, what: 'completed or reclaimed' },
    )
    return end.stalls
  }

  it('is restarted when it dies, and a long job keeps its lease (completes, never reclaimed)', async () => {
    expect(await stallsWithCrashedThread(true)).toBe(0)
  })

  it('negative control: left dead, the job’s lease lapses and it is reclaimed', async () => {
    expect(await stallsWithCrashedThread(false)).toBeGreaterThan(0)
  })

  it('while it is down the worker takes no new work, though its wait sees the jobs; once back it takes them (3 rounds)', async () => {
    // The keeper restarts a dead thread at once (0 ms), so the window is as long as a thread
    // takes to start. Left dead (noLeaseRestart), the window stays open until the test ends it
    // with the keeper's own restart(): what its restart timer calls.
    const started: string[] = []
    const w = b
      .worker({}, { unsafe: { noLeaseRestart: true } })
      .handle('quick', async (job) => void started.push(job.id))
    await w.start()
    const { leases, processor } = w as unknown as LeaseInternals
    const state = () => processor.debugState()
    for (let round = 0; round < 3; round++) {
      // Idle: no fetch in flight, nothing held, blocked on its streams' tails.
      await waitFor(() => state().blocked && state().idle && state().inflight === 0 && state().held === 0, {
        what: 'the worker idle in its wait',
      })
      leases.crash()
      await waitFor(() => processor.leasesDown, { what: 'the thread seen down' })
      expect(leases.up).toBe(false)
      const ids = (
        await b.queue.addBulk(Array.from({ length: 3 }, () => ({ task_type: 'quick', payload: {} })))
      ).map((r) => r.job.id)
      // The new entries end the blocking wait (it is no longer waiting, nor idle on the old
      // tails) and the fetch loop goes round: with its gate open it would fetch now (and then a
      // job would start, which ends this wait too: the check below says which it was).
      await waitFor(
        () => started.length > 0 || (!state().blocked && !state().idle && state().inflight === 0),
        { what: 'the wait woken by the new entries' },
      )
      expect(started).toEqual([])
      const jobs = await Promise.all(ids.map((id) => b.queue.getJob(id)))
      expect(jobs.map((j) => [j?.state, j?.attempts])).toEqual(ids.map(() => ['queued', 0]))
      expect(state()).toMatchObject({ leasesDown: true, held: 0, reserved: 0 })
      // Back: the same worker takes them.
      await leases.restart()
      expect(leases.up).toBe(true)
      expect(processor.leasesDown).toBe(false)
      await waitFor(
        async () => {
          const js = await Promise.all(ids.map((id) => b.queue.getJob(id)))
          return js.every((j) => j?.state === 'completed')
        },
        { what: 'the jobs completed after the restart' },
      )
      expect([...started].sort()).toEqual([...ids].sort())
      started.length = 0
    }
  })
})

interface LeaseInternals {
  leases: { crash(): void; restart(): Promise<void>; readonly up: boolean }
  processor: {
    leasesDown: boolean
    debugState(): { blocked: boolean; idle: boolean; inflight: number; held: number; reserved: number }
  }
}

describe('a lease that lapses while its handler runs, the job coming back to the same worker', () => {
  it('aborts the stale run at once; the new run keeps its lease; the job completes, never poisoned', async () => {
    b = await setup()
    const runs: string[] = []
    // A handler that returned is never told to stop afterwards (a heartbeat racing its
    // completion reports the job lost: its write is fenced, the run is not aborted).
    const finishedSignals: AbortSignal[] = []
    const tracked = async (job: { id: string; epoch: number }, ctx: { signal: AbortSignal }) => {
      runs.push(`${job.id} start ${job.epoch}`)
      // Aborts count while the run is running: the listener goes when it ends (as a handler's
      // should), so a signal aborted after the run returned is not read as aborting it.
      const onAbort = { fn: () => {} }
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(resolve, 2500)
        onAbort.fn = () => {
          clearTimeout(t)
          runs.push(`${job.id} abort ${job.epoch}`)
          reject(ctx.signal.reason)
        }
        ctx.signal.addEventListener('abort', onAbort.fn)
      }).finally(() => ctx.signal.removeEventListener('abort', onAbort.fn))
      runs.push(`${job.id} done ${job.epoch}`)
      finishedSignals.push(ctx.signal)
    }
    // Free slots beyond the jobs: the worker can take them back while the stale runs still go.
    const w = b.worker({ maxDeliveries: 3, workerConcurrency: 8 }).handle('tracked', tracked)
    await w.start()
    for (let round = 0; round < 2; round++) {
      const ids = (await b.queue.addBulk(Array.from({ length: 4 }, () => ({ task_type: 'tracked' })))).map(
        (r) => r.job.id,
      )
      await waitFor(() => ids.every((id) => runs.includes(`${id} start 1`)))
      // The lease thread stops for longer than CLAIM_IDLE_MS (a GC pause of its isolate): the
      // leases lapse, this worker's reclaimer requeues the jobs and its fetch loop takes them back.
      ;(w as unknown as { leases: { stall(ms: number): void } }).leases.stall(1800)
      const jobs = await waitFor(
        async () => {
          const js = await Promise.all(ids.map((id) => b.queue.getJob(id)))
          return js.every((j) => j?.state === 'completed' || j?.state === 'failed') ? js : null
        },
        { timeoutMs: 30_000, what: 'jobs finished' },
      )
      for (const j of jobs) {
        expect({ id: j!.id, state: j!.state, stalls: j!.stalls }).toEqual({
          id: j!.id,
          state: 'completed',
          stalls: 1,
        })
        const mine = runs.filter((r) => r.startsWith(`${j!.id} `))
        expect([...mine].sort()).toEqual([
          `${j!.id} abort 1`,
          `${j!.id} done 3`,
          `${j!.id} start 1`,
          `${j!.id} start 3`,
        ])
      }
      expect(finishedSignals.filter((sig) => sig.aborted)).toEqual([])
      runs.length = 0
    }
  }, 60_000)
})

describe('shutdown', () => {
  it('a run that finished in the same tick as the deadline is completed, not handed back', async () => {
    b = await setup()
    for (let i = 0; i < 6; i++) {
      let release: ((v: string) => void) | undefined
      const w = b.worker().handle('hold', () => new Promise<string>((r) => (release = r)))
      await w.start()
      const { job } = await b.queue.add('hold', {})
      await waitFor(() => release !== undefined, { what: 'the handler running' })
      const processor = (w as unknown as { processor: ProcessorInternals }).processor
      release!('done')
      // Let the handler's end reach the processor (microtasks only: no I/O, no timer).
      for (let k = 0; k < 50 && ![...processor.running.values()].every((r) => r.finished); k++)
        await Promise.resolve()
      expect([...processor.running.values()].every((r) => r.finished)).toBe(true)
      // The deadline passes in this same tick: hand back what is held.
      expect(await processor.handBackAll()).toBe(0)
      await w.close(2000)
      const after = await b.queue.getJob(job.id)
      expect({ state: after?.state, result: after?.result, attempts: after?.attempts }).toEqual({
        state: 'completed',
        result: 'done',
        attempts: 1,
      })
    }
    expect((await stats(b.queue.store)).stale_writes).toBeUndefined()
  })
})

interface ProcessorInternals {
  running: Map<string, { finished: boolean }>
  handBackAll(): Promise<number>
}
