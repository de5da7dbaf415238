/**
 * Day-2 operations (ADR 0020) on the store and the library: run now, change a priority, edit a
 * payload, delete a job in any state (a running one fenced), empty a queue, delete a queue,
 * cancel or retry by filter at a rate, change a worker's concurrency -- and every new script
 * refusing bad arguments before its first write.
 */
import { createHash } from 'node:crypto'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { DtqError } from '../src/errors.ts'
import { F, jobEntry } from '../src/queue/job.ts'
import { BULK_JOBS_TASK, BULK_STATES, DLQ_RETRY_TASK } from '../src/queue/system-tasks.ts'
import { functions } from '../src/redis/scripts.ts'
import { type Bundle, setup, snapshot, waitFor } from './helpers.ts'

const Q = 'day2'
let b: Bundle
beforeEach(async () => {
  b = await setup({ config: { workerQueues: [Q] } })
})
afterEach(() => b.cleanup())

const store = () => b.queue.store
const add = (opts: Record<string, unknown> = {}, type = 'work', payload: unknown = { n: 1 }) =>
  b.queue.add(type, payload, { queue: Q, ...opts }).then((r) => r.job)

/** Delivers up to n jobs to consumer c (as a worker's fetch would). */
const deliver = (n = 1, c = 'c1') => store().deliver(Q, c, n)

async function failed(opts: Record<string, unknown> = {}, message = 'boom', type = 'work') {
  const job = await add({ max_retries: 0, priority: 'high', ...opts }, type) // delivered first
  const [got] = (await deliver()).jobs
  expect(got!.id).toBe(job.id)
  const err = { message, worker: 'c1', attempt: 1 }
  expect(await store().fail(Q, job.id, got!.epoch, 'permanent', err, 0)).toBe('failed')
  return job
}

async function expectError(p: Promise<unknown>, code: string, status: number) {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(DtqError)
  expect((err as DtqError).code).toBe(code)
  expect((err as DtqError).status).toBe(status)
}

describe('run now', () => {
  it('makes a scheduled job ready now, and a retrying one', async () => {
    const job = await add({ delay_ms: 3_600_000 })
    expect(job.state).toBe('scheduled')
    const now = await b.queue.runNow(job.id, Q)
    expect(now.state).toBe('queued')
    expect(await b.redis.zcard(store().keys.delayed(Q))).toBe(0)
    const [got] = (await deliver()).jobs
    expect(got!.id).toBe(job.id)
    expect(
      await store().fail(
        Q,
        job.id,
        got!.epoch,
        'retry',
        { message: 'x', worker: 'c1', attempt: 1 },
        3_600_000,
      ),
    ).toBe('retrying')
    expect((await b.queue.runNow(job.id, Q)).state).toBe('queued')
  })

  it('answers 409 for a job that is not waiting for a time, 404 for none, and writes nothing', async () => {
    const job = await add()
    const before = await snapshot(b)
    await expectError(b.queue.runNow(job.id, Q), 'INVALID_STATE', 409)
    await expectError(b.queue.runNow('nope', Q), 'NOT_FOUND', 404)
    expect(await snapshot(b)).toEqual(before)
  })
})

describe('change priority', () => {
  it('moves a queued job to its new stream in one step: old entry gone, F_ENTRY the new one', async () => {
    const first = await add()
    const job = await add()
    const oldEntry = jobEntry(await b.redis.hgetall(store().keys.job(Q, job.id)))
    const changed = await b.queue.setPriority(job.id, 'high', Q)
    expect(changed.priority).toBe('high')
    expect(await b.redis.xrange(store().keys.stream(Q, 'normal'), oldEntry!, oldEntry!)).toEqual([])
    const high = await b.redis.xrange(store().keys.stream(Q, 'high'), '-', '+')
    expect(high).toHaveLength(1)
    expect(high[0]![1]).toEqual(['id', job.id])
    expect(await b.redis.hget(store().keys.job(Q, job.id), F.entry)).toBe(high[0]![0])
    // It now runs before the normal job added earlier; and back to normal stores no field.
    expect((await deliver()).jobs[0]!.id).toBe(job.id)
    await b.queue.setPriority(first.id, 'low', Q)
    expect((await deliver()).jobs[0]!.id).toBe(first.id)
    const sched = await add({ delay_ms: 60_000, priority: 'high' })
    expect((await b.queue.setPriority(sched.id, 'normal', Q)).priority).toBe('normal')
    expect(await b.redis.hexists(store().keys.job(Q, sched.id), F.priority)).toBe(0)
  })

  it('refuses a started job (409) and a bad priority (400), writing nothing', async () => {
    const job = await add()
    await deliver()
    const before = await snapshot(b)
    await expectError(b.queue.setPriority(job.id, 'high', Q), 'INVALID_STATE', 409)
    await expectError(b.queue.setPriority(job.id, 'urgent' as never, Q), 'VALIDATION', 400)
    expect(await snapshot(b)).toEqual(before)
  })
})

describe('edit payload', () => {
  it('replaces a waiting or failed job payload and records who, when and what it replaced', async () => {
    const job = await add({ delay_ms: 60_000 }, 'work', { to: 'a' })
    const stored = await b.redis.hget(store().keys.job(Q, job.id), F.payload)
    const edited = await b.queue.editPayload(job.id, { to: 'b' }, { queue: Q, by: 'ops@x' })
    expect(edited.payload).toEqual({ to: 'b' })
    expect(edited.edits).toMatchObject({
      count: 1,
      by: 'ops@x',
      previous_sha1: createHash('sha1').update(stored!).digest('hex'),
    })
    expect(edited.edits!.at).toBeGreaterThan(0)
    expect((await b.queue.editPayload(job.id, { to: 'c' }, { queue: Q })).edits).toMatchObject({
      count: 2,
      by: 'library',
    })
    const dead = await failed()
    expect((await b.queue.editPayload(dead.id, [1, 2], { queue: Q })).payload).toEqual([1, 2])
  })

  it('refuses a running job (409) and a payload over the limit (400), writing nothing', async () => {
    const job = await add()
    await deliver()
    const before = await snapshot(b)
    await expectError(b.queue.editPayload(job.id, { x: 1 }, { queue: Q }), 'INVALID_STATE', 409)
    await expectError(
      b.queue.editPayload(job.id, 'x'.repeat(b.config.maxPayloadBytes + 1), { queue: Q }),
      'VALIDATION',
      400,
    )
    expect(await snapshot(b)).toEqual(before)
  })
})

describe('delete a job', () => {
  it('removes a job in each state and every trace of it', async () => {
    const queued = await add({ idempotency_key: 'k1' })
    const scheduled = await add({ delay_ms: 60_000 })
    const dead = await failed()
    const done = await add()
    const [d] = (await deliver()).jobs
    await store().complete(Q, [{ id: d!.id, epoch: d!.epoch, result: '1' }])
    expect(d!.id).toBe(queued.id) // the first queued one completes; re-add a queued one
    const q2 = await add({ idempotency_key: 'k2' })
    for (const j of [q2, scheduled, dead, done]) await b.queue.deleteJob(j.id, Q)
    await b.queue.deleteJob(queued.id, Q)
    const keys = await b.keys()
    expect(keys.filter((k) => k.includes(':job:') || k.includes(':logs:') || k.includes(':idem:'))).toEqual(
      [],
    )
    for (const p of ['high', 'normal', 'low'] as const)
      expect(await b.redis.xlen(store().keys.stream(Q, p)).catch(() => 0)).toBe(0)
    expect(await b.redis.zcard(store().keys.delayed(Q))).toBe(0)
    expect(await b.redis.xlen(store().keys.dlq(Q))).toBe(0)
    for (const s of ['completed', 'failed', 'scheduled'] as const)
      expect(await b.redis.zcard(store().keys.index(Q, s))).toBe(0)
    // The idempotency key is free again: a repeat makes a new job.
    expect((await b.queue.add('work', {}, { queue: Q, idempotency_key: 'k2' })).created).toBe(true)
    await expectError(b.queue.deleteJob(q2.id, Q), 'NOT_FOUND', 404)
  })

  it('fences a running job: its completion is rejected as stale, and it leaves the pending list', async () => {
    const job = await add()
    const [got] = (await deliver()).jobs
    expect(await b.queue.deleteJob(job.id, Q)).toEqual({ id: job.id, queue: Q, state: 'active' })
    const pending = await b.redis.xpending(store().keys.stream(Q, 'normal'), 'workers')
    expect(pending[0]).toBe(0)
    expect(await store().complete(Q, [{ id: job.id, epoch: got!.epoch, result: '"late"' }])).toEqual([0])
    expect(await b.redis.hget(store().keys.stats(Q), 'stale_writes')).toBe('1')
    expect(await b.redis.exists(store().keys.job(Q, job.id))).toBe(0)
  })

  it('a worker running a deleted job: its handler is told to stop and its outcome is rejected as stale', async () => {
    let release!: () => void
    const gate = new Promise<void>((r) => {
      release = r
    })
    let aborted = false
    const w = b.worker().handle('hold', async (_job, ctx) => {
      ctx.signal.addEventListener('abort', () => {
        aborted = true
      })
      await gate // ignores the abort: it completes anyway
      return 'late result'
    })
    await w.start()
    const job = await add({}, 'hold')
    await waitFor(async () => (await b.queue.getJob(job.id, Q))?.state === 'active')
    await b.queue.deleteJob(job.id, Q)
    await waitFor(() => aborted, { what: 'the handler to be told to stop' })
    release()
    await waitFor(async () => (await b.redis.hget(store().keys.stats(Q), 'stale_writes')) === '1', {
      what: 'the completion to be rejected as stale',
    })
    await waitFor(() => w.active === 0)
    expect(await b.redis.exists(store().keys.job(Q, job.id))).toBe(0)
    expect(await b.redis.hget(store().keys.stats(Q), 'completed')).toBeNull()
  })

  it('refuses a flow member that has not ended (409): its flow waits on it', async () => {
    const { flow } = await b.queue.addFlow({
      nodes: [
        { key: 'a', task_type: 'work', queue: Q },
        { key: 'b', task_type: 'work', queue: Q, depends_on: ['a'] },
      ],
    })
    const before = await snapshot(b)
    for (const n of flow.nodes) await expectError(b.queue.deleteJob(n.job_id, Q), 'INVALID_STATE', 409)
    expect(await snapshot(b)).toEqual(before)
  })
})

describe('empty a queue', () => {
  it('removes the jobs waiting to run in bounded pages; running jobs stay', async () => {
    for (let i = 0; i < 12; i++) await add({ priority: (['high', 'normal', 'low'] as const)[i % 3] })
    for (let i = 0; i < 5; i++) await add({ delay_ms: 60_000 })
    const [running] = (await deliver()).jobs
    const first = await b.queue.emptyQueue(Q, { limit: 7 })
    expect(first).toEqual({ queue: Q, removed: 7, cancelled: 0, more: true })
    let total = first.removed
    for (let r = first; r.more; total += r.removed) r = await b.queue.emptyQueue(Q, { limit: 7 })
    expect(total).toBe(16)
    expect((await b.queue.getJob(running!.id, Q))!.state).toBe('active')
    const stats = (await b.queue.stats()).queues.find((q) => q.queue === Q)!
    expect(stats.counts).toMatchObject({ queued: 0, scheduled: 0, active: 1 })
  })

  it('cancels a flow member instead of removing it (its children follow their policies)', async () => {
    const { flow } = await b.queue.addFlow({
      nodes: [
        { key: 'a', task_type: 'work', queue: Q },
        { key: 'b', task_type: 'work', queue: Q, depends_on: ['a'] },
      ],
    })
    expect(await b.queue.emptyQueue(Q)).toMatchObject({ removed: 0, cancelled: 1, more: false })
    const a = flow.nodes.find((n) => n.key === 'a')!
    expect((await b.queue.getJob(a.job_id, Q))!.state).toBe('cancelled')
  })
})

describe('delete a queue', () => {
  it('refuses while jobs run unless forced; then every key of the queue and its registry entry go', async () => {
    await add()
    await add({ delay_ms: 60_000 })
    await failed()
    await deliver()
    await b.queue.pauseQueue(Q)
    const before = await snapshot(b)
    await expectError(b.queue.deleteQueue(Q), 'INVALID_STATE', 409)
    expect(await snapshot(b)).toEqual(before)
    const r = await b.queue.deleteQueue(Q, { force: true })
    expect(r.keys).toBeGreaterThan(5)
    expect((await b.keys()).filter((k) => k.includes(`{${Q}}`))).toEqual([])
    expect(await b.redis.sismember(store().keys.queues(), Q)).toBe(0)
    expect(await b.redis.sismember(store().keys.paused(), Q)).toBe(0)
    await expectError(b.queue.deleteQueue(Q), 'NOT_FOUND', 404)
  })
})

describe('cancel or retry by filter at a rate', () => {
  it('retries the failed jobs whose error matches, and only those', async () => {
    for (let i = 0; i < 6; i++) await failed({}, 'upstream boom')
    for (let i = 0; i < 3; i++) await failed({}, 'bad input')
    const r = await b.queue.bulkJobs('retry', { queue: Q, error_contains: 'BOOM' })
    expect(r).toEqual({ examined: 9, done: 6 })
    const stats = (await b.queue.stats()).queues.find((q) => q.queue === Q)!
    expect(stats.counts).toMatchObject({ queued: 6, failed: 3 })
  })

  it('cancels by task type at a rate, and stops when aborted', async () => {
    for (let i = 0; i < 30; i++) await add({}, 'slow')
    await add({}, 'keep')
    const t0 = Date.now()
    const r = await b.queue.bulkJobs('cancel', { queue: Q, task_type: 'slow' }, { ratePerSec: 40, max: 20 })
    expect(r.done).toBe(20)
    expect(Date.now() - t0).toBeGreaterThanOrEqual(20 * 25 - 30) // 20 jobs at 40/s: ~0.5 s
    const ac = new AbortController()
    const run = b.queue.bulkJobs(
      'cancel',
      { queue: Q, task_type: 'slow' },
      { ratePerSec: 2, signal: ac.signal },
    )
    setTimeout(() => ac.abort(), 300)
    expect((await run).done).toBeLessThan(10)
    expect((await b.queue.listJobs({ queue: Q, state: 'queued', task_type: 'keep' })).items).toHaveLength(1)
  })

  it('runs as the system job dtq.bulk_jobs on a worker, its progress in its log', async () => {
    for (let i = 0; i < 5; i++) await add({ delay_ms: 60_000 }, 'later')
    await b.worker().start()
    const { job } = await b.queue.add(
      BULK_JOBS_TASK,
      { action: 'cancel', filter: { queue: Q, state: 'scheduled' }, rate_per_sec: 100 },
      { queue: Q },
    )
    const done = await waitFor(async () => {
      const j = await b.queue.getJob(job.id, Q)
      return j?.state === 'completed' ? j : null
    })
    expect(done.result).toMatchObject({ action: 'cancel', done: 5, stopped: false })
    expect(await b.queue.jobLogs(job.id, Q)).toContain('cancelled 5 of 5 examined')
  })

  /**
   * Invariant 23's "never a system job": a user job and a system job (both system task types)
   * in every state the bulk actions walk; each action changes the user jobs in its states and
   * leaves every system job's hash as it was -- also when the filter names a system task type.
   */
  const SYSTEM = [BULK_JOBS_TASK, DLQ_RETRY_TASK]
  const STATES = ['active', 'retrying', 'completed', 'failed', 'queued', 'scheduled', 'waiting', 'cancelled']

  /** Per state, a user job's id and the system jobs' ids, all in that state. */
  async function everyState() {
    const user: Record<string, string> = {}
    const system: Record<string, string[]> = {}
    const payload = (type: string) =>
      type === BULK_JOBS_TASK ? { action: 'cancel', filter: { queue: 'elsewhere' } } : { filter: {} }
    // One job at a time is queued while these are made, so each delivery takes the job just added.
    const make = async (type: string, state: string, parent: string) => {
      const opts = { max_retries: 1 }
      if (state === 'queued') return add(opts, type, payload(type))
      if (state === 'scheduled') return add({ ...opts, delay_ms: 3_600_000 }, type, payload(type))
      if (state === 'waiting') return add({ ...opts, depends_on: [parent] }, type, payload(type))
      const job = await add(opts, type, payload(type))
      if (state === 'cancelled') {
        await b.queue.cancel(job.id, Q)
        return job
      }
      const [got] = (await deliver()).jobs
      expect(got!.id).toBe(job.id)
      const err = { message: 'boom', worker: 'c1', attempt: 1 }
      if (state === 'retrying')
        expect(await store().fail(Q, job.id, got!.epoch, 'retry', err, 3_600_000)).toBe('retrying')
      if (state === 'failed')
        expect(await store().fail(Q, job.id, got!.epoch, 'permanent', err, 0)).toBe('failed')
      if (state === 'completed') await store().complete(Q, [{ id: job.id, epoch: got!.epoch, result: '1' }])
      return job
    }
    // The waiting jobs wait on a system job that no action touches: no cascade reaches them.
    const parent = await add({ delay_ms: 3_600_000 }, DLQ_RETRY_TASK, { filter: {} })
    for (const state of STATES) {
      user[state] = (await make('work', state, parent.id)).id
      system[state] = []
      for (const t of SYSTEM) system[state].push((await make(t, state, parent.id)).id)
    }
    for (const state of STATES)
      for (const id of [user[state]!, ...system[state]!])
        expect((await b.queue.getJob(id, Q))!.state, `${id} made ${state}`).toBe(state)
    return { user, system: [parent.id, ...Object.values(system).flat()] }
  }

  /** Each system job's hash, every field (not DUMP: a large hash's field order is not stable). */
  const hashes = async (ids: string[]): Promise<Record<string, Record<string, string>>> =>
    Object.fromEntries(
      await Promise.all(ids.map(async (id) => [id, await b.redis.hgetall(store().keys.job(Q, id))] as const)),
    )

  it.each([
    ['cancel', { queued: 'cancelled', scheduled: 'cancelled', waiting: 'cancelled', retrying: 'cancelled' }],
    ['retry', { failed: 'queued', cancelled: 'queued' }],
    ['delete', { completed: null, failed: null, cancelled: null }],
  ] as const)(
    '%s touches the user jobs in its states, never a system job (hash unchanged)',
    async (action, want) => {
      const { user, system } = await everyState()
      const before = await hashes(system)
      for (const h of Object.values(before)) expect(Object.keys(h).length).toBeGreaterThan(0)
      const expected: Record<string, string | null> = { ...want }
      // A running job's cancel is a request (its worker stops it): it counts, its state stays.
      const hit = BULK_STATES[action].length
      const r = await b.queue.bulkJobs(action, { queue: Q }, { ratePerSec: 1000 })
      expect(await hashes(system)).toEqual(before)
      // The walk passed every job in its states -- the system ones too (and the waiting jobs'
      // scheduled parent, for a cancel) -- and changed only the user ones.
      expect(r).toEqual({ examined: hit * (1 + SYSTEM.length) + (action === 'cancel' ? 1 : 0), done: hit })
      for (const state of STATES) {
        const after = await b.queue.getJob(user[state]!, Q)
        const now = state in expected ? expected[state] : state
        expect(after?.state ?? null, `the user job that was ${state}`).toBe(now)
      }
      // Naming a system task type in the filter changes nothing either.
      for (const t of SYSTEM) {
        expect((await b.queue.bulkJobs(action, { queue: Q, task_type: t }, { ratePerSec: 1000 })).done).toBe(
          0,
        )
      }
      expect(await hashes(system)).toEqual(before)
    },
  )

  it('refuses a bad filter (400), writing nothing', async () => {
    await failed()
    const before = await snapshot(b)
    await expectError(b.queue.bulkJobs('retry', { state: 'queued' }), 'VALIDATION', 400)
    await expectError(b.queue.bulkJobs('drop' as never, {}), 'VALIDATION', 400)
    await expectError(b.queue.bulkJobs('cancel', { nope: 1 } as never), 'VALIDATION', 400)
    await expectError(b.queue.bulkJobs('retry', {}, { ratePerSec: 0 }), 'VALIDATION', 400)
    expect(await snapshot(b)).toEqual(before)
  })
})

describe("a worker's concurrency at runtime", () => {
  it('lowered: running jobs finish, then no more than the new value run; raised: more run at once', async () => {
    let running = 0
    let peak = 0
    const gates: Array<() => void> = []
    const w = b.worker({ workerConcurrency: 4 }).handle('hold', async () => {
      running++
      peak = Math.max(peak, running)
      await new Promise<void>((r) => gates.push(r))
      running--
    })
    await w.start()
    for (let i = 0; i < 12; i++) await add({}, 'hold')
    await waitFor(() => running === 4)
    await b.queue.setWorkerConcurrency(w.id, 1)
    await waitFor(async () => (await b.queue.workers()).find((x) => x.id === w.id)?.concurrency === 1)
    // The four running jobs are not dropped: each finishes.
    peak = 0
    for (const g of gates.splice(0)) g()
    await waitFor(() => gates.length === 1)
    expect(running).toBe(1)
    for (let k = 0; k < 3; k++) {
      gates.shift()!()
      await waitFor(() => gates.length === 1)
      expect(running).toBe(1)
    }
    expect(peak).toBe(1)
    await b.queue.setWorkerConcurrency(w.id, 6)
    await waitFor(() => running === 5, { what: 'the 5 jobs left to run at once' })
    for (const g of gates.splice(0)) g()
    await waitFor(async () => (await b.queue.stats()).totals.completed === 12)
  })

  it('refuses a bad value (400) and an unknown worker (404)', async () => {
    await expectError(b.queue.setWorkerConcurrency('w1', 0), 'VALIDATION', 400)
    await expectError(b.queue.setWorkerConcurrency('w1', 1.5), 'VALIDATION', 400)
    await expectError(b.queue.setWorkerConcurrency('nobody', 2), 'NOT_FOUND', 404)
  })
})

describe('the new scripts refuse bad arguments before their first write', () => {
  it.each([
    ['run_now', [''], /DTQ_BAD_ARG id is required/],
    ['set_priority', ['ID', 'urgent'], /DTQ_BAD_ARG priority/],
    ['set_priority', ['', 'high'], /DTQ_BAD_ARG id is required/],
    ['edit_payload', ['ID', '{not json', 'me'], /DTQ_BAD_ARG payload must be JSON/],
    ['edit_payload', ['ID', '{}', ''], /DTQ_BAD_ARG by must be/],
    ['delete_job', ['', 'ch', Q], /DTQ_BAD_ARG id is required/],
    ['delete_job', ['ID', '', Q], /DTQ_BAD_ARG channel and queue/],
    ['empty_queue', ['0'], /DTQ_BAD_ARG limit/],
    ['empty_queue', ['abc'], /DTQ_BAD_ARG limit/],
  ] as const)('%s %j', async (name, args, msg) => {
    const job = await add({ delay_ms: 60_000 })
    await add()
    await failed()
    const before = await snapshot(b)
    const argv = args.map((a) => (a === 'ID' ? job.id : a))
    await expect(
      functions().call(b.redis, name, store().keys.base(Q), [Date.now(), 1000, 3600, 3600, ...argv]),
    ).rejects.toThrow(msg)
    expect(await snapshot(b)).toEqual(before)
  })
})
