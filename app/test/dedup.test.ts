/**
 * Deduplication beyond caller keys (ADR 0021), on a fake clock: unique by (task type, payload)
 * or a key, while the earlier job lives or within its window; throttle keeps the first add of a
 * window; debounce gives the pending job the latest payload and pushes it back. The answer of a
 * deduplicated add names the job that answered it (`deduplicated: true`). Bad dedup values are
 * refused by the library and, past it, by the enqueue function, writing nothing.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { DtqError } from '../src/errors.ts'
import { F } from '../src/queue/job.ts'
import { Queue } from '../src/queue/queue.ts'
import type { JobStore } from '../src/redis/store.ts'
import { type Bundle, FakeClock, plainRecord, setup, waitFor } from './helpers.ts'

const Q = 'dd'
let b: Bundle
let clock: FakeClock
let store: JobStore

beforeEach(async () => {
  clock = new FakeClock()
  b = await setup({ clock })
  store = b.queue.store
})
afterEach(async () => {
  await b.cleanup()
})

/** Starts and completes the queue's next job (as a worker would, on the fake clock). */
async function runNext(): Promise<string> {
  const [j] = (await store.deliver(Q, 'w1', 1)).jobs
  expect(j).toBeDefined()
  await store.complete(Q, [
    { id: j!.id, epoch: j!.epoch, result: '1', dedupUnique: j!.dedup?.mode === 'unique' },
  ])
  return j!.id
}

describe('dedup: unique', () => {
  it('one job per (task type, payload) while it lives, whatever the order of the payload keys', async () => {
    const a = await b.queue.add('mail', { to: 'x', n: 1 }, { queue: Q, dedup: { mode: 'unique' } })
    expect(a.created).toBe(true)
    expect(a.job.dedup).toMatchObject({ mode: 'unique', ttl_ms: 0 })
    const again = await b.queue.add('mail', { n: 1, to: 'x' }, { queue: Q, dedup: { mode: 'unique' } })
    expect(again).toMatchObject({
      created: false,
      job: { id: a.job.id, deduplicated: true, state: 'queued' },
    })
    // Another payload, or another task type, is another job.
    expect(
      (await b.queue.add('mail', { to: 'y', n: 1 }, { queue: Q, dedup: { mode: 'unique' } })).created,
    ).toBe(true)
    expect(
      (await b.queue.add('sms', { to: 'x', n: 1 }, { queue: Q, dedup: { mode: 'unique' } })).created,
    ).toBe(true)
    // A job without dedup is never answered by one.
    expect((await b.queue.add('mail', { to: 'x', n: 1 }, { queue: Q })).created).toBe(true)
    // Hours later, still queued: still the one.
    clock.advance(5 * 3600_000)
    const later = await b.queue.add('mail', { to: 'x', n: 1 }, { queue: Q, dedup: { mode: 'unique' } })
    expect(later.job).toMatchObject({ id: a.job.id, deduplicated: true })
  })

  it('a given key dedups across payloads; the key is let go when the job ends (ttl 0)', async () => {
    const a = await b.queue.add('sync', { v: 1 }, { queue: Q, dedup: { mode: 'unique', key: 'acct-7' } })
    const again = await b.queue.add('sync', { v: 2 }, { queue: Q, dedup: { mode: 'unique', key: 'acct-7' } })
    expect(again.job).toMatchObject({ id: a.job.id, deduplicated: true, payload: { v: 1 } })
    expect(await runNext()).toBe(a.job.id)
    expect(await b.redis.exists(`${store.keys.base(Q)}:dd:${a.job.dedup!.key_hash}`)).toBe(0)
    const next = await b.queue.add('sync', { v: 3 }, { queue: Q, dedup: { mode: 'unique', key: 'acct-7' } })
    expect(next.created).toBe(true)
    expect(next.job.id).not.toBe(a.job.id)
  })

  it('with a ttl, a finished job still answers until its creation + ttl; a live one beyond it', async () => {
    const opts = { queue: Q, dedup: { mode: 'unique' as const, ttl_ms: 60_000 } }
    const a = await b.queue.add('report', { d: 1 }, opts)
    clock.advance(10_000)
    await runNext()
    const done = await b.queue.add('report', { d: 1 }, opts)
    expect(done.job).toMatchObject({ id: a.job.id, state: 'completed', deduplicated: true })
    clock.advance(50_001) // past creation + ttl
    const fresh = await b.queue.add('report', { d: 1 }, opts)
    expect(fresh.created).toBe(true)
    // The new one lives past its ttl: still answering.
    clock.advance(120_000)
    expect((await b.queue.add('report', { d: 1 }, opts)).job).toMatchObject({
      id: fresh.job.id,
      deduplicated: true,
    })
    // It ends past creation + ttl: the key goes at once.
    await runNext()
    expect(await b.redis.exists(`${store.keys.base(Q)}:dd:${fresh.job.dedup!.key_hash}`)).toBe(0)
    expect((await b.queue.add('report', { d: 1 }, opts)).created).toBe(true)
  })

  it('cancelled and dead-lettered jobs let go of their key too', async () => {
    const opts = { queue: Q, dedup: { mode: 'unique' as const }, max_retries: 0 }
    const a = await b.queue.add('x', {}, opts)
    await b.queue.cancel(a.job.id, Q)
    const c = await b.queue.add('x', {}, opts)
    expect(c.created).toBe(true)
    const [j] = (await store.deliver(Q, 'w1', 1)).jobs
    await store.fail(Q, j!.id, j!.epoch, 'permanent', { message: 'no', worker: 'w1', attempt: 1 }, 0)
    expect((await b.queue.add('x', {}, opts)).created).toBe(true)
  })

  it('a deleted job and an emptied queue leave no dedup key behind', async () => {
    const opts = { queue: Q, dedup: { mode: 'unique' as const } }
    const keys = async () => (await b.keys()).filter((k) => k.startsWith(store.keys.dedup(Q, '')))
    const a = await b.queue.add('x', { n: 1 }, opts)
    const c = await b.queue.add('x', { n: 2 }, opts)
    await b.queue.add('x', { n: 3 }, { ...opts, dedup: { mode: 'unique', key: 'k3' } })
    const [running] = (await store.deliver(Q, 'w1', 1)).jobs
    expect(running!.id).toBe(a.job.id)
    expect(await keys()).toHaveLength(3)
    await b.queue.deleteJob(a.job.id, Q) // a running job
    await b.queue.deleteJob(c.job.id, Q) // a queued one
    expect(await keys()).toHaveLength(1)
    await b.queue.emptyQueue(Q)
    expect(await keys()).toEqual([])
    expect((await b.queue.add('x', { n: 1 }, opts)).created).toBe(true)
  })

  it("a worker's completion lets go of the key (the owner names it: '+')", async () => {
    const w = b.worker({}, { clock })
    w.handle('once', async () => 'ok')
    await w.start()
    const a = await b.queue.add('once', { k: 1 }, { queue: 'default', dedup: { mode: 'unique' } })
    await waitFor(async () => (await b.queue.getJob(a.job.id, 'default'))?.state === 'completed')
    const next = await b.queue.add('once', { k: 1 }, { queue: 'default', dedup: { mode: 'unique' } })
    expect(next.created).toBe(true)
  })
})

describe('dedup: throttle', () => {
  it('keeps the first add of a window; later adds answer it; the next window makes a new job', async () => {
    const opts = { queue: Q, dedup: { mode: 'throttle' as const, ttl_ms: 1000 } }
    const a = await b.queue.add('ping', { n: 1 }, opts)
    clock.advance(999)
    await runNext() // even once it has completed
    const again = await b.queue.add('ping', { n: 1 }, opts)
    expect(again).toMatchObject({
      created: false,
      job: { id: a.job.id, deduplicated: true, state: 'completed' },
    })
    clock.advance(1)
    const next = await b.queue.add('ping', { n: 1 }, opts)
    expect(next.created).toBe(true)
    expect(next.job.id).not.toBe(a.job.id)
  })
})

describe('dedup: debounce', () => {
  it('the pending job takes the latest payload and runs a window after the latest add', async () => {
    const opts = { queue: Q, dedup: { mode: 'debounce' as const, ttl_ms: 1000, key: 'search:u1' } }
    const t0 = clock.now()
    const a = await b.queue.add('index', { q: 'h' }, opts)
    expect(a.job).toMatchObject({ state: 'scheduled', run_at: t0 + 1000 })
    clock.advance(600)
    const b2 = await b.queue.add('index', { q: 'he' }, opts)
    expect(b2).toMatchObject({
      created: false,
      job: { id: a.job.id, deduplicated: true, payload: { q: 'he' } },
    })
    expect(b2.job.run_at).toBe(t0 + 1600)
    clock.advance(600) // past the first run time, not the second
    expect((await store.promote(Q)).moved).toBe(0)
    clock.advance(400)
    expect((await store.promote(Q)).moved).toBe(1)
    // Due (queued) but past its window: the next add is a new job; the first keeps its payload.
    const [j] = (await store.deliver(Q, 'w1', 1)).jobs
    expect(j).toMatchObject({ id: a.job.id, payload: { q: 'he' } })
    const c = await b.queue.add('index', { q: 'hel' }, opts)
    expect(c.created).toBe(true)
    expect(await b.queue.getJob(a.job.id, Q)).toMatchObject({ state: 'active', payload: { q: 'he' } })
  })

  it('a batch repeating a dedup key makes one job', async () => {
    const spec = { task_type: 'agg', queue: Q, dedup: { mode: 'throttle' as const, ttl_ms: 5000 } }
    const r = await b.queue.addBulk([
      { ...spec, payload: 1 },
      { ...spec, payload: 1 },
      { ...spec, payload: 2 },
    ])
    expect(r.map((x) => x.created)).toEqual([true, false, true])
    expect(r[1]!.job).toMatchObject({ id: r[0]!.job.id, deduplicated: true })
  })
})

describe('dedup: bad input writes nothing', () => {
  it.each([
    [{ mode: 'once' }, /dedup.mode/],
    [{ mode: 'throttle' }, /ttl_ms is required/],
    [{ mode: 'debounce', ttl_ms: 0 }, /dedup.ttl_ms/],
    [{ mode: 'unique', ttl_ms: 1.5 }, /dedup.ttl_ms/],
    [{ mode: 'unique', window: 5 }, /dedup.window is not a known field/],
    [{ mode: 'unique', key: '' }, /dedup.key/],
    ['unique', /dedup must be an object/],
  ])('the library refuses %j', async (dedup, why) => {
    const before = await b.keys()
    const err = await b.queue.add('t', {}, { queue: Q, dedup: dedup as never }).catch((e) => e)
    expect(err).toBeInstanceOf(DtqError)
    expect((err as DtqError).message).toMatch(why)
    expect(await b.keys()).toEqual(before)
  })

  it('with depends_on, or on a flow node, it is refused', async () => {
    const p = await b.queue.add('p', {}, { queue: Q })
    await expect(
      b.queue.add('c', {}, { queue: Q, depends_on: [p.job.id], dedup: { mode: 'unique' } }),
    ).rejects.toThrow(/dedup is for jobs without depends_on/)
  })

  it.each([
    ['bogus 5 abc'],
    ['throttle 0 abc'],
    ['unique 5 a/b'],
    ['unique -1 abc'],
    ['unique 99999999999999 abc'],
  ])('the enqueue function refuses a stored dedup of %j before its first write', async (dd) => {
    await b.queue.add('warm', {}, { queue: Q })
    const before = await b.keys()
    const rec = plainRecord('x1', { [F.dedup]: dd })
    await expect(store.enqueue(Q, [rec])).rejects.toThrow(/dedup must be/)
    expect(await b.keys()).toEqual(before)
  })

  it('a dedup key holding a foreign value refuses the job, writing nothing', async () => {
    const a = await b.queue.add('t', { z: 1 }, { queue: Q, dedup: { mode: 'throttle', ttl_ms: 1000 } })
    const key = `${store.keys.base(Q)}:dd:${a.job.dedup!.key_hash}`
    await b.redis.del(key)
    await b.redis.sadd(key, 'x')
    const before = await b.keys()
    await expect(
      b.queue.add('t', { z: 1 }, { queue: Q, dedup: { mode: 'throttle', ttl_ms: 1000 } }),
    ).rejects.toThrow(/foreign value/)
    expect(await b.keys()).toEqual(before)
  })
})

describe('dedup: racing calls', () => {
  /**
   * Invariant 21's racing clause: the key is read and taken in the enqueue call that creates the
   * job, so calls from separate clients racing on one key -- singles and batches that repeat it --
   * make one job, and every other add is answered by it. Each client has its own connection, so
   * the calls really are separate and interleave at Redis.
   */
  const CLIENTS = 6
  const ROUNDS = 8
  const MODES = [
    ['unique by key', { mode: 'unique' as const }, true],
    ['unique by payload', { mode: 'unique' as const }, false],
    ['throttle', { mode: 'throttle' as const, ttl_ms: 60_000 }, true],
    ['debounce', { mode: 'debounce' as const, ttl_ms: 60_000 }, true],
  ] as const

  it.each(MODES)(
    '%s: many clients adding one key at once make exactly one job, every add answered by it (8 rounds)',
    async (name, dedup, keyed) => {
      const clients = await Promise.all(
        Array.from({ length: CLIENTS }, () => Queue.connect(b.config, { clock })),
      )
      try {
        // Each client's first call on its own connection is behind us: the rounds' calls start together.
        await Promise.all(clients.map((c, i) => c.add('warm', { i }, { queue: Q })))
        for (let round = 0; round < ROUNDS; round++) {
          const type = `race-${name.replace(/ /g, '-')}-${round}`
          const spec = (i: number) => ({
            task_type: type,
            queue: Q,
            // Keyed modes: each add's own payload (debounce keeps the latest); by payload: the same one.
            payload: keyed ? { from: i } : { round },
            dedup: keyed ? { ...dedup, key: `k-${round}` } : dedup,
          })
          // Even clients add one job; odd ones a batch repeating the key twice.
          const answers = (
            await Promise.all(
              clients.map((c, i) =>
                i % 2 === 0
                  ? c.add(type, spec(i).payload, { queue: Q, dedup: spec(i).dedup }).then((r) => [r])
                  : c.addBulk([spec(i), spec(i + 100)]),
              ),
            )
          ).flat()
          const created = answers.filter((a) => a.created)
          expect(created, `round ${round}: jobs created`).toHaveLength(1)
          const id = created[0]!.job.id
          for (const a of answers.filter((x) => !x.created))
            expect(a.job).toMatchObject({ id, deduplicated: true })
          // The store holds that one job of the type, and the key names it.
          const jobs = (await b.queue.listJobs({ queue: Q, task_type: type, limit: 100 })).items
          expect(jobs.map((j) => j.id)).toEqual([id])
          const held = await b.redis.get(store.keys.dedup(Q, created[0]!.job.dedup!.key_hash))
          expect(held?.split(' ')[0]).toBe(id)
          if (dedup.mode === 'debounce') {
            // Still pending, a window after now, with the payload of one of the adds.
            expect(jobs[0]).toMatchObject({ state: 'scheduled', run_at: clock.now() + dedup.ttl_ms })
            expect(answers.map((a) => JSON.stringify(a.job.payload))).toContain(
              JSON.stringify(jobs[0]!.payload),
            )
          } else {
            expect(jobs[0]!.state).toBe('queued')
          }
        }
      } finally {
        await Promise.all(clients.map((c) => c.close()))
      }
    },
  )
})
