/**
 * Replay and debugging (ADR 0028): a finished job re-run as a new job from each state it can
 * end in, with a payload edit and the link kept both ways; dry runs that write nothing (every
 * key DUMPed before and after); bad input answered with a clear 4xx and the data unchanged; a
 * job's timeline after retries and a reclaim; two jobs and two attempts compared.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { BULK_JOBS_TASK } from '../src/queue/system-tasks.ts'
import { createReplays } from '../src/redis/replay-service.ts'
import { functions } from '../src/redis/scripts.ts'
import { TIMELINE_MAX_SCAN } from '../src/redis/timeline.ts'
import { type ApiBundle, apiSetup } from './api-helpers.ts'
import { snapshot, targetEnv, testTarget } from './helpers.ts'
import { runCli } from './processes.ts'

const Q = 'rp'
let b: ApiBundle
beforeEach(async () => {
  b = await apiSetup({ workerQueues: [Q], maxRetries: 2 })
})
afterEach(() => b.cleanup())

const call = (method: 'POST' | 'GET', url: string, payload?: unknown) =>
  b.app.inject({ method, url, payload: payload as never })
const add = (opts: Record<string, unknown> = {}, payload: unknown = { n: 1 }, type = 'work') =>
  b.queue.add(type, payload, { queue: Q, ...opts }).then((r) => r.job)
const store = () => b.queue.store
const job = (id: string, queue = Q) => store().getJob(queue, id)

/** Delivers the next job of Q and ends it: completed (with `result`), failed (retry or permanent) or cancelled. */
async function run(outcome: 'complete' | 'retry' | 'permanent' | 'cancel', result: unknown = { ok: true }) {
  const [got] = (await store().deliver(Q, 'w1', 1)).jobs
  if (!got) throw new Error('nothing to deliver')
  if (outcome === 'complete') {
    await store().complete(Q, [{ id: got.id, epoch: got.epoch, result: JSON.stringify(result) }])
  } else {
    const error = {
      message: `boom ${got.attempts}`,
      class: 'Boom',
      worker: 'w1',
      attempt: got.attempts,
      started_at: got.started_at ?? undefined,
    }
    await store().fail(Q, got.id, got.epoch, outcome, error, 0)
  }
  return got
}

/** Each request answers `status` with `code`, and every key is as it was. */
async function refused(reqs: Array<[Parameters<typeof call>, number, string]>) {
  const before = await snapshot(b)
  for (const [args, status, code] of reqs) {
    const r = await call(...args)
    expect({ url: args[1], body: args[2], status: r.statusCode, code: r.json().code }).toEqual({
      url: args[1],
      body: args[2],
      status,
      code,
    })
    expect(r.json().message).toBeTruthy()
  }
  expect(await snapshot(b)).toEqual(before)
}

describe('POST /jobs/{id}/replay', () => {
  it('re-runs a completed job as a new job with an edited payload, linked both ways', async () => {
    const original = await add({
      priority: 'high',
      max_retries: 5,
      partition_key: 'acct-1',
      backoff: { initial_ms: 10 },
    })
    await run('complete', { sent: 1 })
    const r = await call('POST', `/jobs/${original.id}/replay?queue=${Q}`, { payload: { n: 2, fixed: true } })
    expect(r.statusCode).toBe(201)
    const replay = r.json()
    expect(replay.id).not.toBe(original.id)
    expect(r.headers.location).toBe(`/jobs/${replay.id}?queue=${Q}`)
    expect(replay).toMatchObject({
      task_type: 'work',
      queue: Q,
      state: 'queued',
      payload: { n: 2, fixed: true },
      priority: 'high',
      max_retries: 5,
      partition_key: 'acct-1',
      backoff: { initial_ms: 10 },
      replay_of: `${Q}/${original.id}`,
      attempts: 0,
    })
    // Both sides of the link, as GET /jobs/{id} shows them.
    const back = (await call('GET', `/jobs/${replay.id}?queue=${Q}`)).json()
    expect(back.replay_of).toBe(`${Q}/${original.id}`)
    const orig = (await call('GET', `/jobs/${original.id}?queue=${Q}`)).json()
    expect(orig.state).toBe('completed')
    expect(orig.result).toEqual({ sent: 1 })
    expect(orig.payload).toEqual({ n: 1 })
    expect(orig.replays).toMatchObject({ count: 1, last: [{ job: `${Q}/${replay.id}` }] })
  })

  it('re-runs a failed job (in the DLQ) and a cancelled one; the originals stay as they were', async () => {
    const failed = await add({ max_retries: 0 })
    await run('permanent')
    expect((await job(failed.id))!.state).toBe('failed')
    const dlqBefore = await b.redis.xlen(store().keys.dlq(Q))
    const r1 = await call('POST', `/jobs/${failed.id}/replay?queue=${Q}`, {})
    expect(r1.statusCode).toBe(201)
    expect(r1.json()).toMatchObject({
      state: 'queued',
      payload: { n: 1 },
      max_retries: 0,
      replay_of: `${Q}/${failed.id}`,
    })
    // Unlike retry, the failed job stays in the DLQ.
    expect((await job(failed.id))!.state).toBe('failed')
    expect(await b.redis.xlen(store().keys.dlq(Q))).toBe(dlqBefore)

    const cancelled = await add({ delay_ms: 60_000 })
    await b.queue.cancel(cancelled.id, Q)
    const r2 = await call('POST', `/jobs/${cancelled.id}/replay?queue=${Q}`, {
      delay_ms: 5000,
      priority: 'low',
    })
    expect(r2.statusCode).toBe(201)
    expect(r2.json()).toMatchObject({
      state: 'scheduled',
      priority: 'low',
      replay_of: `${Q}/${cancelled.id}`,
    })
    // No body at all is fine too.
    const r3 = await b.app.inject({ method: 'POST', url: `/jobs/${cancelled.id}/replay?queue=${Q}` })
    expect(r3.statusCode).toBe(201)
    expect((await job(cancelled.id))!.replays).toMatchObject({ count: 2 })
  })

  it("a replay into another queue; the original's replays list is bounded (10, newest first) and counts all", async () => {
    const original = await add()
    await run('complete')
    const ids: string[] = []
    for (let i = 0; i < 12; i++) {
      const r = await call('POST', `/jobs/${original.id}/replay?queue=${Q}`, { queue: `${Q}-other` })
      expect(r.statusCode).toBe(201)
      ids.push(r.json().id)
    }
    const orig = (await job(original.id))!
    expect(orig.replays!.count).toBe(12)
    expect(orig.replays!.last.map((x) => x.job)).toEqual(
      ids
        .reverse()
        .slice(0, 10)
        .map((id) => `${Q}-other/${id}`),
    )
    expect((await job(ids[0]!, `${Q}-other`))!.replay_of).toBe(`${Q}/${original.id}`)
  })

  it('a job of a partitioned queue: the link names the queue, not the partition, and both sides resolve', async () => {
    const PQ = 'rpp'
    await b.queue.setPartitions(PQ, 3)
    const jobs = await Promise.all(
      Array.from({ length: 6 }, (_, i) => b.queue.add('work', { i }, { queue: PQ }).then((r) => r.job)),
    )
    const onPartition = jobs.find((j) => j.queue !== PQ)!
    expect(onPartition.queue).toMatch(/^rpp~/)
    // Its partition holds at most 6 jobs: one delivery starts them all.
    const got = (await store().deliver(onPartition.queue, 'w1', 10)).jobs.find(
      (j) => j.id === onPartition.id,
    )!
    await store().complete(onPartition.queue, [{ id: got.id, epoch: got.epoch, result: '1' }])
    const r = await call('POST', `/jobs/${onPartition.id}/replay?queue=${PQ}`, {})
    expect(r.statusCode).toBe(201)
    expect(r.json().replay_of).toBe(`${PQ}/${onPartition.id}`)
    const orig = (await call('GET', `/jobs/${onPartition.id}?queue=${PQ}`)).json()
    expect(orig.replays.last[0].job).toBe(`${PQ}/${r.json().id}`)
    expect((await call('GET', `/jobs/${r.json().id}?queue=${PQ}`)).statusCode).toBe(200)
  })

  it("is not answered by the original's idempotency key or dedup; its own key makes a repeat answer the same replay", async () => {
    const original = await add({ idempotency_key: 'order-7', dedup: { mode: 'unique' } })
    await run('complete')
    const first = await call('POST', `/jobs/${original.id}/replay?queue=${Q}`, {
      idempotency_key: 'replay-1',
    })
    expect(first.statusCode).toBe(201)
    expect(first.json().idempotency_key).toBe('replay-1')
    expect(first.json().dedup).toBeNull()
    const again = await call('POST', `/jobs/${original.id}/replay?queue=${Q}`, {
      idempotency_key: 'replay-1',
    })
    expect(again.statusCode).toBe(200)
    expect(again.json().id).toBe(first.json().id)
    expect((await job(original.id))!.replays!.count).toBe(1)
    // Without a key of its own, each replay is a new job (the original's key is not carried).
    const other = await call('POST', `/jobs/${original.id}/replay?queue=${Q}`, {})
    expect(other.statusCode).toBe(201)
    expect(other.json().id).not.toBe(first.json().id)
    // Control: POST /jobs with the original's key answers the original.
    const repeat = await call('POST', '/jobs', { task_type: 'work', queue: Q, idempotency_key: 'order-7' })
    expect(repeat.json().id).toBe(original.id)
  })

  it('concurrent replays: one per idempotency key, and every replay counted on the original', async () => {
    const original = await add()
    await run('complete')
    for (let round = 0; round < 10; round++) {
      const same = await Promise.all(
        Array.from({ length: 5 }, () =>
          call('POST', `/jobs/${original.id}/replay?queue=${Q}`, { idempotency_key: `round-${round}` }),
        ),
      )
      expect(same.map((r) => r.statusCode).sort()).toEqual([200, 200, 200, 200, 201])
      expect(new Set(same.map((r) => r.json().id)).size).toBe(1)
    }
    const free = await Promise.all(
      Array.from({ length: 8 }, () => call('POST', `/jobs/${original.id}/replay?queue=${Q}`, {})),
    )
    expect(new Set(free.map((r) => r.json().id)).size).toBe(8)
    // 10 keyed rounds (one replay each) + 8 free ones: each noted once, none lost to a race.
    expect((await job(original.id))!.replays!.count).toBe(18)
  })

  it('answers 409 for a job not finished, 404 for none, 400 for bad changes -- writing nothing', async () => {
    const fin = (await add()).id
    await run('complete')
    const queued = await add({}, { n: 2 })
    const waiting = await add({ delay_ms: 60_000 })
    const active = await add({ priority: 'high' })
    await store().deliver(Q, 'w1', 1)
    const system = await b.queue.add(BULK_JOBS_TASK, { action: 'retry', filter: {} }, { queue: `${Q}-sys` })
    await b.queue.cancel(system.job.id, `${Q}-sys`)
    expect((await job(fin))!.state).toBe('completed')
    expect((await job(queued.id))!.state).toBe('queued')
    expect((await job(active.id))!.state).toBe('active')
    const big = 'x'.repeat(b.config.maxPayloadBytes + 1)
    await refused([
      [['POST', `/jobs/${queued.id}/replay?queue=${Q}`, {}], 409, 'INVALID_STATE'],
      [['POST', `/jobs/${waiting.id}/replay?queue=${Q}`, {}], 409, 'INVALID_STATE'],
      [['POST', `/jobs/${active.id}/replay?queue=${Q}`, {}], 409, 'INVALID_STATE'],
      [['POST', `/jobs/${active.id}/replay?queue=${Q}&dry_run=true`, {}], 409, 'INVALID_STATE'],
      [['POST', `/jobs/nope/replay?queue=${Q}`, {}], 404, 'NOT_FOUND'],
      [['POST', `/jobs/${fin}/replay?queue=bad%20q`, {}], 400, 'VALIDATION'],
      [['POST', `/jobs/${fin}/replay?queue=${Q}`, { priority: 'urgent' }], 400, 'VALIDATION'],
      [['POST', `/jobs/${fin}/replay?queue=${Q}`, { attempts: 3 }], 400, 'VALIDATION'],
      [['POST', `/jobs/${fin}/replay?queue=${Q}`, { payload: big }], 400, 'VALIDATION'],
      [['POST', `/jobs/${fin}/replay?queue=${Q}`, { delay_ms: 10, run_at: 5 }], 400, 'VALIDATION'],
      [['POST', `/jobs/${fin}/replay?queue=${Q}`, { run_at: '2024-02-30' }], 400, 'VALIDATION'],
      [['POST', `/jobs/${fin}/replay?queue=${Q}`, { job_id: '123' }], 400, 'VALIDATION'],
      [['POST', `/jobs/${fin}/replay?queue=${Q}`, { queue: 'bad name' }], 400, 'VALIDATION'],
      [['POST', `/jobs/${fin}/replay?queue=${Q}`, [1, 2]], 400, 'VALIDATION'],
      [['POST', `/jobs/${system.job.id}/replay?queue=${Q}-sys`, {}], 400, 'VALIDATION'],
    ])
  })
})

describe('dry runs write nothing', () => {
  it('POST /jobs?dry_run=true answers what would be created', async () => {
    await add() // the queue exists
    const before = await snapshot(b)
    const r = await call('POST', '/jobs?dry_run=true', {
      task_type: 'work',
      queue: Q,
      payload: { a: 1 },
      delay_ms: 1000,
      priority: 'low',
    })
    expect(r.statusCode).toBe(200)
    expect(r.json()).toMatchObject({
      dry_run: true,
      outcome: 'create',
      generated_id: true,
      existing: null,
      queue: Q,
      queue_is_new: false,
      job: { id: '', task_type: 'work', state: 'scheduled', priority: 'low', payload: { a: 1 } },
    })
    const fresh = await call('POST', '/jobs?dry_run=true', {
      task_type: 'work',
      queue: 'brand-new',
      job_id: 'mine',
    })
    expect(fresh.json()).toMatchObject({
      outcome: 'create',
      queue_is_new: true,
      generated_id: false,
      job: { id: 'mine', state: 'queued' },
    })
    expect(await snapshot(b)).toEqual(before)
  })

  it('says which job would answer: the same id, the idempotency key, a dedup holder', async () => {
    const keyed = await add({ idempotency_key: 'k1' })
    const mine = await add({ id: 'order-1' })
    const holder = await add({ dedup: { mode: 'unique', key: 'acct' } })
    const before = await snapshot(b)
    const dry = (body: object) => call('POST', '/jobs?dry_run=true', { task_type: 'work', queue: Q, ...body })
    expect((await dry({ idempotency_key: 'k1' })).json()).toMatchObject({
      outcome: 'existing',
      existing: { id: keyed.id },
    })
    expect((await dry({ job_id: 'order-1' })).json()).toMatchObject({
      outcome: 'existing',
      existing: { id: mine.id },
    })
    const d = (await dry({ dedup: { mode: 'unique', key: 'acct' } })).json()
    expect(d).toMatchObject({ outcome: 'deduplicated', existing: { id: holder.id } })
    expect(d.notes[0]).toContain(holder.id)
    expect((await dry({ dedup: { mode: 'unique', key: 'other' } })).json().outcome).toBe('create')
    expect(await snapshot(b)).toEqual(before)
    // Control: the real add is answered by the same jobs.
    expect(
      (await call('POST', '/jobs', { task_type: 'work', queue: Q, idempotency_key: 'k1' })).json().id,
    ).toBe(keyed.id)
  })

  it('runs every check an add runs: bad values, unknown parents, the queue limit, reserved types (4xx, nothing written)', async () => {
    await b.cleanup()
    b = await apiSetup({ workerQueues: [Q], maxQueues: 1 })
    const parent = await add()
    const ok = await call('POST', '/jobs?dry_run=true', {
      task_type: 'work',
      queue: Q,
      depends_on: [parent.id],
    })
    expect(ok.json()).toMatchObject({ outcome: 'create', job: { state: 'waiting' } })
    await refused([
      [
        ['POST', '/jobs?dry_run=true', { task_type: 'work', queue: Q, depends_on: ['ghost'] }],
        400,
        'VALIDATION',
      ],
      [
        ['POST', '/jobs?dry_run=true', { task_type: 'work', queue: Q, depends_on: [parent.id], delay_ms: 5 }],
        400,
        'VALIDATION',
      ],
      [['POST', '/jobs?dry_run=true', { task_type: 'work', queue: 'second' }], 409, 'QUEUE_LIMIT'],
      [['POST', '/jobs?dry_run=true', { task_type: 'dtq.bulk_jobs', queue: Q }], 400, 'VALIDATION'],
      [
        ['POST', '/jobs?dry_run=true', { task_type: 'work', queue: Q, priority: 'urgent' }],
        400,
        'VALIDATION',
      ],
      [
        ['POST', '/jobs?dry_run=true', { task_type: 'work', queue: Q, run_at: '2024-02-30' }],
        400,
        'VALIDATION',
      ],
      [['POST', '/jobs?dry_run=yes', { task_type: 'work', queue: Q }], 400, 'VALIDATION'],
    ])
    // Control: the real add of a second queue is refused the same way.
    expect((await call('POST', '/jobs', { task_type: 'work', queue: 'second' })).statusCode).toBe(409)
  })

  it('POST /jobs/batch?dry_run=true: each item, repeats within the batch, bad items -- nothing written', async () => {
    const keyed = await add({ idempotency_key: 'k1' })
    const before = await snapshot(b)
    const r = await call('POST', '/jobs/batch?dry_run=true', {
      jobs: [
        { task_type: 'work', queue: Q, payload: { i: 0 } },
        { task_type: 'work', queue: Q, idempotency_key: 'k1' },
        { task_type: 'work', queue: Q, job_id: 'mine' },
        { task_type: 'work', queue: Q, job_id: 'mine' },
        { task_type: 'work', queue: Q, dedup: { mode: 'unique', key: 'd' } },
        { task_type: 'work', queue: Q, dedup: { mode: 'unique', key: 'd' } },
        { task_type: 'work', queue: Q, priority: 'urgent' },
        { task_type: 'work', queue: Q, depends_on: ['ghost'] },
      ],
    })
    expect(r.statusCode).toBe(200)
    const body = r.json()
    expect(body).toMatchObject({ dry_run: true, create: 3, existing: 2, deduplicated: 1, rejected: 2 })
    expect(body.items.map((i: { outcome: string }) => i.outcome)).toEqual([
      'create',
      'existing',
      'create',
      'existing',
      'create',
      'deduplicated',
      'rejected',
      'rejected',
    ])
    expect(body.items[1].dry_run.existing.id).toBe(keyed.id)
    expect(body.items[3].same_as).toBe(2)
    expect(body.items[5].same_as).toBe(4)
    expect(body.items[0].dry_run.job).toMatchObject({ payload: { i: 0 }, state: 'queued' })
    expect(body.items[6]).toMatchObject({ status: 400, error: { code: 'VALIDATION' } })
    expect(await snapshot(b)).toEqual(before)
    // Control: the real batch agrees item by item.
    const real = (
      await call('POST', '/jobs/batch', {
        jobs: [
          { task_type: 'work', queue: Q, idempotency_key: 'k1' },
          { task_type: 'work', queue: Q, job_id: 'mine' },
          { task_type: 'work', queue: Q, job_id: 'mine' },
        ],
      })
    ).json()
    expect(real.items.map((i: { outcome: string }) => i.outcome)).toEqual(['existing', 'created', 'existing'])
  })

  it('notes a paused queue and limits the job would meet', async () => {
    await add()
    await b.queue.pauseQueue(Q)
    await b.queue.setLimits(Q, { concurrency: 2, types: { work: { rate: { limit: 5, window_ms: 1000 } } } })
    const before = await snapshot(b)
    const r = (await call('POST', '/jobs?dry_run=true', { task_type: 'work', queue: Q })).json()
    expect(r.notes.join('\n')).toMatch(/paused/)
    expect(r.notes.join('\n')).toMatch(/queue concurrency 2.*work rate 5\/1000 ms/)
    expect(await snapshot(b)).toEqual(before)
  })

  it('POST /jobs/{id}/replay?dry_run=true answers the replay it would make', async () => {
    const original = await add({ idempotency_key: 'k' })
    await run('complete')
    const before = await snapshot(b)
    const r = await call('POST', `/jobs/${original.id}/replay?queue=${Q}&dry_run=true`, { payload: { n: 9 } })
    expect(r.statusCode).toBe(200)
    expect(r.json()).toMatchObject({
      dry_run: true,
      outcome: 'create',
      original: `${Q}/${original.id}`,
      source: 'redis',
      job: { payload: { n: 9 }, replay_of: `${Q}/${original.id}`, idempotency_key: null, state: 'queued' },
    })
    expect(await snapshot(b)).toEqual(before)
  })
})

describe('GET /jobs/{id}/timeline', () => {
  it('lists every state change and attempt after retries and a reclaim, with workers and errors', async () => {
    const j = await add({ max_retries: 3 })
    await run('retry') // attempt 1 fails
    await store().promote(Q) // backoff 0: due now
    await store().deliver(Q, 'w-dead', 1) // attempt 2: its worker dies
    const rc = await store().reclaim(Q, 'reclaimer', 'normal', 0, 10)
    expect(rc.requeued).toBe(1)
    await run('complete', { done: true }) // attempt 3
    const r = await call('GET', `/jobs/${j.id}/timeline?queue=${Q}`)
    expect(r.statusCode).toBe(200)
    const t = r.json()
    expect(t.job).toMatchObject({ id: j.id, queue: Q, state: 'completed' })
    const fromJob = t.entries.filter((e: { source: string }) => e.source === 'job')
    expect(
      fromJob.map((e: { event: string; attempt?: number; worker?: string }) => [
        e.event,
        e.attempt ?? null,
        e.worker ?? null,
      ]),
    ).toEqual([
      ['created', null, null],
      ['attempt_started', 1, 'w1'],
      ['attempt_failed', 1, 'w1'],
      ['due', null, null],
      ['ready', null, null],
      ['attempt_started', 3, 'w1'],
      ['completed', 3, 'w1'],
    ])
    expect(fromJob[2].message).toBe('boom 1')
    const events = t.entries
      .filter((e: { source: string }) => e.source === 'events')
      .map((e: { event: string }) => e.event)
    expect(events).toEqual([
      'queued',
      'active',
      'retrying',
      'queued',
      'active',
      'stalled',
      'active',
      'completed',
    ])
    // In time order.
    const times = t.entries.map((e: { at: number }) => e.at)
    expect(times).toEqual([...times].sort((x, y) => x - y))
    // Attempt 2 (reclaimed) left no error: said.
    expect(t.partial).toBe(true)
    expect(t.gaps.join('\n')).toMatch(/attempts 2:/)
  })

  it('says it is partial when older events were trimmed from the stream', async () => {
    await b.cleanup()
    b = await apiSetup({ workerQueues: [Q], eventsMaxLen: 100 })
    const j = await add()
    for (let i = 0; i < 5; i++)
      await b.queue.addBulk(Array.from({ length: 100 }, () => ({ task_type: 'noise', queue: Q })))
    // Separate calls: one event entry each (entries of one call are grouped, ADR 0009).
    for (let i = 0; i < 300; i++) await add({}, { i }, 'noise')
    const t = (await call('GET', `/jobs/${j.id}/timeline?queue=${Q}`)).json()
    expect(t.partial).toBe(true)
    expect(t.gaps.join('\n')).toMatch(/trimmed/)
    expect(t.entries.some((e: { source: string }) => e.source === 'events')).toBe(false)
    // Controls: a fresh job's timeline is whole; so is that of the first job of a queue (the
    // stream begins with its creation).
    const firstOfQueue = await add({ queue: `${Q}-new` })
    const t1 = (await call('GET', `/jobs/${firstOfQueue.id}/timeline?queue=${Q}-new`)).json()
    expect(t1).toMatchObject({ partial: false, gaps: [] })
    const k = await add()
    const t2 = (await call('GET', `/jobs/${k.id}/timeline?queue=${Q}`)).json()
    expect(t2).toMatchObject({ partial: false, gaps: [] })
    expect(t2.entries.map((e: { event: string }) => e.event)).toEqual(['created', 'queued'])
  })

  it('stops its scan at 20 000 entries and says so', async () => {
    const j = await add()
    const p = b.redis.pipeline()
    for (let i = 0; i < TIMELINE_MAX_SCAN + 500; i++)
      p.xadd(store().keys.events(Q), '*', 'job', `x${i}`, 'event', 'queued', 'type', 'work')
    await p.exec()
    const t = (await call('GET', `/jobs/${j.id}/timeline?queue=${Q}`)).json()
    expect(t.events_scanned).toBe(TIMELINE_MAX_SCAN)
    expect(t.partial).toBe(true)
    expect(t.gaps.join('\n')).toMatch(/scan stopped after 20000 entries/)
    expect(t.entries.map((e: { event: string }) => e.event)).toEqual(['created', 'queued'])
  })

  it('answers 404 and 400 for bad input', async () => {
    await refused([
      [['GET', `/jobs/nope/timeline?queue=${Q}`], 404, 'NOT_FOUND'],
      [['GET', `/jobs/x/timeline?queue=a%20b`], 400, 'VALIDATION'],
    ])
  })
})

describe('compare', () => {
  it('two jobs: payload, result, options and timings differences', async () => {
    const a = await add({}, { to: 'a@x', n: 1, tags: ['x'] })
    await run('complete', { sent: 1 })
    const r0 = await call('POST', `/jobs/${a.id}/replay?queue=${Q}`, {
      payload: { to: 'b@x', n: 1, tags: ['x', 'y'] },
      priority: 'high',
    })
    const bId = r0.json().id
    await run('complete', { sent: 2 })
    const r = await call('GET', `/jobs/${a.id}/compare?queue=${Q}&with=${Q}/${bId}`)
    expect(r.statusCode).toBe(200)
    const c = r.json()
    expect(c.a.ref).toBe(`${Q}/${a.id}`)
    expect(c.b.ref).toBe(`${Q}/${bId}`)
    expect(c.same).toBe(false)
    const byPath = Object.fromEntries(c.differences.map((d: { path: string }) => [d.path, d]))
    expect(byPath['/payload/to']).toEqual({ path: '/payload/to', kind: 'changed', a: 'a@x', b: 'b@x' })
    expect(byPath['/payload/tags/1']).toEqual({ path: '/payload/tags/1', kind: 'added', b: 'y' })
    expect(byPath['/result/sent']).toMatchObject({ kind: 'changed', a: 1, b: 2 })
    expect(byPath['/options/priority']).toMatchObject({ a: 'normal', b: 'high' })
    expect(byPath['/payload/n']).toBeUndefined()
    // A job compared with itself: the same.
    const self = (await call('GET', `/jobs/${a.id}/compare?queue=${Q}&with=${a.id}`)).json()
    expect(self).toMatchObject({ same: true, differences: [], total: 0 })
  })

  it('two attempts of one job', async () => {
    const j = await add({ max_retries: 3 })
    await run('retry')
    await store().promote(Q)
    await run('retry')
    await store().promote(Q)
    await run('complete', { ok: 1 })
    const r = await call('GET', `/jobs/${j.id}/attempts/compare?queue=${Q}&a=1&b=3`)
    expect(r.statusCode).toBe(200)
    const c = r.json()
    expect(c.a.view).toMatchObject({
      attempt: 1,
      outcome: 'failed',
      error: 'boom 1',
      error_class: 'Boom',
      worker: 'w1',
    })
    expect(c.b.view).toMatchObject({ attempt: 3, outcome: 'completed', error: null, result: { ok: 1 } })
    const paths = c.differences.map((d: { path: string }) => d.path)
    expect(paths).toEqual(expect.arrayContaining(['/outcome', '/error', '/error_class', '/result']))
    expect(paths).not.toContain('/worker')
    const one = (await call('GET', `/jobs/${j.id}/attempts/compare?queue=${Q}&a=1&b=2`)).json()
    // Both failed on w1: the error differs (and the duration may).
    const onePaths = one.differences.map((d: { path: string }) => d.path)
    expect(onePaths).toContain('/error')
    expect(onePaths.filter((p: string) => p !== '/duration_ms')).toEqual(['/error'])
    await refused([
      [['GET', `/jobs/${j.id}/attempts/compare?queue=${Q}&a=1&b=7`], 404, 'NOT_FOUND'],
      [['GET', `/jobs/${j.id}/attempts/compare?queue=${Q}&a=0&b=1`], 400, 'VALIDATION'],
      [['GET', `/jobs/${j.id}/compare?queue=${Q}&with=nope`], 404, 'NOT_FOUND'],
      [['GET', `/jobs/${j.id}/compare?queue=${Q}&with=a/b/c`], 400, 'VALIDATION'],
      [['GET', `/jobs/${j.id}/compare?queue=${Q}`], 400, 'VALIDATION'],
    ])
  })
})

describe('OpenAPI', () => {
  it('documents the routes', async () => {
    const spec = (await call('GET', '/openapi.json')).json()
    for (const path of [
      '/jobs/{id}/replay',
      '/jobs/{id}/timeline',
      '/jobs/{id}/compare',
      '/jobs/{id}/attempts/compare',
    ])
      expect(spec.paths).toHaveProperty([path])
    expect(JSON.stringify(spec.paths['/jobs'].post.parameters)).toContain('dry_run')
  })
})

describe('the library', () => {
  it("refuses changes a replay does not make (the task type is the original's), writing nothing", async () => {
    const j = await add()
    await run('complete')
    const before = await snapshot(b)
    const replays = createReplays(b.queue)
    for (const bad of [{ task_type: 'other' }, { replay_of: 'x/1' }, [1], null] as never[])
      await expect(replays.replay(j.id, bad, { queue: Q })).rejects.toMatchObject({ code: 'VALIDATION' })
    expect(await snapshot(b)).toEqual(before)
  })

  it('createReplays takes further sources after Redis (where the history archive plugs in)', async () => {
    const gone = {
      ...(await add()),
      id: 'archived-1',
      state: 'completed' as const,
      payload: { from: 'archive' },
    }
    const replays = createReplays(b.queue, [
      { name: 'archive', get: async (id) => (id === gone.id ? gone : null) },
    ])
    const r = await replays.replay(gone.id, {}, { queue: Q })
    expect(r).toMatchObject({ created: true, source: 'archive', original: `${Q}/archived-1` })
    expect(r.job).toMatchObject({ payload: { from: 'archive' }, replay_of: `${Q}/archived-1` })
    const t = await replays.timeline(gone.id, Q)
    expect(t.source).toBe('archive')
  })
})

describe('the CLI', () => {
  it('dtq replay (and --dry-run), dtq timeline, dtq compare', async () => {
    const env = { ...targetEnv(testTarget()), KEY_PREFIX: b.prefix, REDIS_DURABILITY: 'off' }
    const j = await add({ max_retries: 0 })
    await run('permanent')
    const before = await snapshot(b)
    const dry = JSON.parse(
      await runCli(env, ['replay', j.id, '--queue', Q, '--payload', '{"n":5}', '--dry-run']),
    )
    expect(dry).toMatchObject({ dry_run: true, outcome: 'create', job: { payload: { n: 5 } } })
    expect(await snapshot(b)).toEqual(before)
    const out = await runCli(env, ['replay', j.id, '--queue', Q, '--payload', '{"n":5}'])
    const m = /^replayed rp\/(\S+) as rp\/(\S+) \(queued\)\n$/.exec(out)
    expect(m?.[1]).toBe(j.id)
    const replayId = m![2]!
    expect((await job(replayId))!).toMatchObject({ payload: { n: 5 }, replay_of: `${Q}/${j.id}` })
    const tl = await runCli(env, ['timeline', j.id, '--queue', Q])
    expect(tl).toMatch(/^\S+ \S+ +created +job/m)
    expect(tl).toMatch(/attempt_started +job +#1 w1/)
    expect(tl).toMatch(/attempt_failed .*#1 w1\s+boom 1/)
    expect(tl).toMatch(new RegExp(`replayed .*replayed as ${Q}/${replayId}`))
    const cmp = await runCli(env, ['compare', `${Q}/${j.id}`, `${Q}/${replayId}`])
    expect(cmp).toContain('changed  /payload/n  1 -> 5')
    // Bad input: a clear message, exit status 2, nothing written.
    const before2 = await snapshot(b)
    await expect(runCli(env, ['replay', j.id, '--queue', Q, '--payload', '{bad'])).rejects.toMatchObject({
      stderr: expect.stringContaining('--payload is not valid JSON'),
    })
    await expect(runCli(env, ['replay', replayId, '--queue', Q])).rejects.toMatchObject({
      stderr: expect.stringContaining('only a finished job'),
    })
    expect(await snapshot(b)).toEqual(before2)
  })
})

describe('note_replay', () => {
  it.each([
    [[''], /DTQ_BAD_ARG id is required/],
    [['ID', 'no-slash'], /DTQ_BAD_ARG replay must be/],
    [['ID', 'a/b c'], /DTQ_BAD_ARG replay must be/],
  ])('refuses %j before its first write', async (args, msg) => {
    const j = await add()
    const before = await snapshot(b)
    const argv = args.map((a) => (a === 'ID' ? j.id : a))
    await expect(
      functions().call(b.redis, 'note_replay', store().keys.base(Q), [Date.now(), 1000, 3600, 3600, ...argv]),
    ).rejects.toThrow(msg)
    expect(await snapshot(b)).toEqual(before)
  })

  it('leaves a job that is gone alone (no hash re-created)', async () => {
    expect(await store().noteReplay(Q, 'gone', `${Q}/1`)).toBe(0)
    expect(await b.redis.exists(store().keys.job(Q, 'gone'))).toBe(0)
  })
})
