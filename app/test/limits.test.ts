/**
 * Flow control (docs/decisions/0022) against a real Redis, with a ledger of run intervals kept
 * outside Redis: the fleet-wide caps (queue and task type) are never exceeded by several
 * workers; FIFO per partition key holds (a retry keeps its place) while other keys run; a rate
 * limit spaces starts as GCRA allows; the breaker opens, probes and closes; a handler's 429
 * pauses its type without losing the attempt; a dead worker's slot comes back; bad limits
 * change nothing. Each safety check also runs without the limit (its negative control) and must
 * then see the violation.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { DtqError, RateLimitedError } from '../src/errors.ts'
import { F, type Job } from '../src/queue/job.ts'
import type { LimitsSpec } from '../src/queue/limits.ts'
import { QUEUE_KEY } from '../src/redis/keys.ts'
import { functions } from '../src/redis/scripts.ts'
import type { Worker } from '../src/worker/worker.ts'
import { type Bundle, maxOverlap, setup, targetEnv, testTarget, waitFor } from './helpers.ts'
import { runCli } from './processes.ts'

const Q = 'lim'
let b: Bundle
/** Run intervals by job id (handler start, end), in the order they started. */
let runs: Array<{ id: string; key: string | null; type: string; started: number; start: number; end: number }>

beforeEach(async () => {
  b = await setup()
  runs = []
})
afterEach(() => b.cleanup())

async function workers(n: number, concurrency = 8, handlers: Record<string, (job: Job) => unknown> = {}) {
  const out: Worker[] = []
  for (let i = 0; i < n; i++) {
    const w = b.worker({ workerQueues: [Q], workerConcurrency: concurrency }, { heartbeatMs: 100 })
    w.handle('work', async (job) => {
      // started: when Redis started it (its clock: what a rate limit spaces); start/end: the handler's run.
      const rec = {
        id: job.id,
        key: job.partition_key,
        type: job.task_type,
        started: job.started_at ?? 0,
        start: Date.now(),
        end: 0,
      }
      runs.push(rec)
      const p = (job.payload ?? {}) as { ms?: number; fail_first?: boolean }
      await new Promise((r) => setTimeout(r, p.ms ?? 30))
      rec.end = Date.now()
      if (p.fail_first && job.attempts === 1) throw new Error('first attempt fails')
      return 'ok'
    })
    for (const [t, h] of Object.entries(handlers)) w.handle(t, h)
    await w.start()
    out.push(w)
  }
  return out
}

/** The most runs overlapping at any instant (of those `pick` selects). */
const overlap = (pick: (r: (typeof runs)[number]) => boolean = () => true) => maxOverlap(runs.filter(pick))

async function addMany(n: number, opts: (i: number) => Record<string, unknown> = () => ({})) {
  const specs = Array.from({ length: n }, (_, i) => ({
    task_type: 'work',
    queue: Q,
    payload: {},
    ...opts(i),
  }))
  return (await b.queue.addBulk(specs as never)).map((r) => r.job.id)
}

/** Flow control's state (scripts/lib/2c-limits.lua): a slot set's members, sorted; a held list in order. */
const fcKey = (name: string) => `${b.queue.store.keys.base(Q)}:fc:${name}`
const fcSet = async (set: string) => (await b.redis.smembers(fcKey(set))).sort()
const fcList = (list: string) => b.redis.lrange(fcKey(list), 0, -1)
async function fcPicture(names: string[]): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {}
  for (const n of names)
    out[n] = n.startsWith('cs:') || n.startsWith('ks:') ? await fcSet(n) : await fcList(n)
  return out
}

async function allDone(ids: string[], timeoutMs = 30_000) {
  await waitFor(
    async () => {
      const jobs = await Promise.all(ids.map((id) => b.queue.getJob(id, Q)))
      return jobs.every((j) => j && ['completed', 'failed', 'cancelled'].includes(j.state))
    },
    { timeoutMs, what: `${ids.length} jobs done` },
  )
}

describe('flow control', () => {
  for (const limited of [true, false]) {
    it(`${limited ? '' : 'NEGATIVE CONTROL: without it, '}a fleet-wide cap of 3 holds over 3 workers of 8 slots`, async () => {
      if (limited) await b.queue.setLimits(Q, { concurrency: 3 })
      const ids = await addMany(40, () => ({ payload: { ms: 40 } }))
      await workers(3)
      await allDone(ids)
      expect(runs).toHaveLength(40)
      if (limited) expect(overlap()).toBe(3)
      else expect(overlap()).toBeGreaterThan(3)
      const view = await b.queue.getLimits(Q)
      expect(view.running.queue).toBe(limited ? 0 : null)
    })
  }

  it('caps a task type within its queue while other types run freely', async () => {
    await b.queue.setLimits(Q, { types: { work: { concurrency: 2 } } })
    let other = 0
    let otherMax = 0
    const ids = await addMany(20, () => ({ payload: { ms: 40 } }))
    const others = await addMany(20, () => ({ task_type: 'other' }))
    await workers(2, 8, {
      other: async () => {
        otherMax = Math.max(otherMax, ++other)
        await new Promise((r) => setTimeout(r, 40))
        other--
      },
    })
    await allDone([...ids, ...others])
    expect(overlap((r) => r.type === 'work')).toBe(2)
    expect(otherMax).toBeGreaterThan(2)
  })

  for (const limited of [true, false]) {
    it(`${limited ? '' : 'NEGATIVE CONTROL: without it, '}FIFO per key: one at a time in enqueue order, a retry keeps its place, other keys go on`, async () => {
      if (limited) await b.queue.setLimits(Q, { key_concurrency: 1 })
      const keys = ['hot', 'a', 'b', 'c']
      // 'hot' gets half of the jobs: the others must not wait behind it. Every 7th job fails
      // its first attempt: its retry must still run before the key's next job.
      const ids = await addMany(60, (i) => ({
        partition_key: i % 2 === 0 ? 'hot' : keys[1 + (i % 3)],
        payload: { ms: 15, fail_first: i % 7 === 0 },
        max_retries: 3,
      }))
      const order = new Map(ids.map((id, i) => [id, i]))
      await workers(2)
      await allDone(ids)
      for (const k of keys) {
        const mine = runs.filter((r) => r.key === k)
        if (limited) {
          expect(
            overlap((r) => r.key === k),
            k,
          ).toBe(1)
          const seq = mine.map((r) => order.get(r.id)!)
          expect(seq, `start order of key ${k}`).toEqual([...seq].sort((x, y) => x - y))
        }
      }
      if (!limited) expect(overlap((r) => r.key === 'hot')).toBeGreaterThan(1)
      // Fairness: the small keys finished before the hot key's last job.
      const lastHot = Math.max(...runs.filter((r) => r.key === 'hot').map((r) => r.end))
      const lastSmall = Math.max(...runs.filter((r) => r.key !== 'hot').map((r) => r.end))
      if (limited) expect(lastSmall).toBeLessThan(lastHot)
      expect(runs.length).toBe(60 + ids.filter((_, i) => i % 7 === 0).length)
    })
  }

  for (const limited of [true, false]) {
    it(`${limited ? '' : 'NEGATIVE CONTROL: without it, '}a rate limit spaces starts as GCRA allows: a burst of N, then one every W/N; nothing fails`, async () => {
      if (limited) await b.queue.setLimits(Q, { rate: { limit: 10, window_ms: 500 } })
      const ids = await addMany(40, () => ({ payload: { ms: 1 } }))
      await workers(2)
      await allDone(ids)
      const starts = runs.map((r) => r.started).sort((x, y) => x - y)
      expect(starts).toHaveLength(40)
      // At most N + t·N/W starts in any span t (one more of slack for the scheduler's poll).
      let worst = 0
      for (let i = 0; i < starts.length; i++)
        for (let j = i; j < starts.length; j++)
          worst = Math.max(worst, j - i + 1 - (10 + Math.floor((starts[j]! - starts[i]!) / 50) + 1))
      if (!limited) {
        expect(worst).toBeGreaterThan(0)
        return
      }
      expect(worst).toBeLessThanOrEqual(0)
      // And not slower than the limit allows (30 after the burst, one per 50 ms: ~1.5 s).
      expect(starts[39]! - starts[0]!).toBeLessThan(3500)
      const jobs = await Promise.all(ids.map((id) => b.queue.getJob(id, Q)))
      expect(jobs.every((j) => j!.state === 'completed' && j!.attempts === 1)).toBe(true)
    })
  }

  it('the breaker opens after N failures (jobs wait, no attempts burned), probes once, and closes', async () => {
    await b.queue.setLimits(Q, { types: { flaky: { breaker: { failures: 3, cooldown_ms: 400 } } } })
    let broken = true
    const attempts: number[] = []
    const ids = await addMany(12, () => ({ task_type: 'flaky', max_retries: 20 }))
    await workers(1, 1, {
      flaky: () => {
        attempts.push(Date.now())
        if (broken) throw new Error('upstream down')
        return 'ok'
      },
    })
    await waitFor(async () => (await b.queue.getLimits(Q)).breakers.flaky?.state === 'open')
    const opened = Date.now()
    // While open, nothing of the type runs.
    const before = attempts.length
    await new Promise((r) => setTimeout(r, 250))
    expect(attempts.length).toBe(before)
    expect(before).toBeLessThanOrEqual(4)
    // After the cool-down one probe runs, fails, and it opens again.
    await waitFor(() => attempts.length > before, { timeoutMs: 5000 })
    expect(attempts[before]! - opened).toBeGreaterThanOrEqual(100)
    broken = false
    await allDone(ids, 20_000)
    expect((await b.queue.getLimits(Q)).breakers.flaky).toMatchObject({ state: 'closed', failures: 0 })
    // Far fewer attempts than 12 jobs × retries: the waiting jobs never ran while it was open.
    expect(attempts.length).toBeLessThan(12 + 8)
  })

  it('an operator opens and closes a breaker by hand', async () => {
    await b.queue.breaker(Q, 'work', 'open', 60_000)
    const [id] = await addMany(1)
    await workers(1)
    await waitFor(async () => (await b.queue.getJob(id!, Q))?.state === 'scheduled')
    expect((await b.queue.getLimits(Q)).paused.work).toBeGreaterThan(Date.now())
    expect(runs).toHaveLength(0)
    await b.queue.breaker(Q, 'work', 'close')
    // The job waits out its deferral (the scheduler promotes it at the time it was given).
    await b.queue.store.redis.zadd(`${b.queue.store.keys.base(Q)}:delayed`, 0, id!)
    await allDone([id!])
    expect(runs).toHaveLength(1)
  })

  it("a handler's 429 pauses its type across the fleet and the job keeps its attempt", async () => {
    let refused = false
    const ids = await addMany(5, () => ({ task_type: 'api', max_retries: 0 }))
    const starts: number[] = []
    // One slot: the pause is the only thing between the refused job and the next start (one job
    // may slip in: the worker fetches again as soon as the handler returns, before the pause is
    // recorded).
    await workers(1, 1, {
      api: () => {
        starts.push(Date.now())
        if (!refused) {
          refused = true
          throw new RateLimitedError('429 from upstream', 600)
        }
        return 'ok'
      },
    })
    await allDone(ids)
    const jobs = await Promise.all(ids.map((id) => b.queue.getJob(id, Q)))
    // max_retries 0, yet all completed: the 429 did not count as a failure.
    expect(jobs.every((j) => j!.state === 'completed')).toBe(true)
    expect(jobs.every((j) => j!.attempts === 1 && j!.failures === 0)).toBe(true)
    // Nothing of the type started during the pause, but that one.
    const during = starts.slice(1).filter((t) => t - starts[0]! > 100 && t - starts[0]! < 550)
    expect(during.length).toBeLessThanOrEqual(1)
    expect(starts.at(-1)! - starts[0]!).toBeGreaterThanOrEqual(550)
  })

  it('a job cancelled while it ran and then refused upstream (429) ends cancelled, not parked for the pause', async () => {
    const { job } = await b.queue.add('api', {}, { queue: Q })
    const [got] = (await b.queue.store.deliver(Q, 'w1', 1)).jobs
    expect(await b.queue.cancel(job.id, Q)).toMatchObject({ outcome: 'requested' })
    expect(await b.queue.store.pauseType(Q, got!.id, got!.epoch, 3_600_000)).toBe('cancelled')
    const after = await b.queue.getJob(job.id, Q)
    expect(after?.state).toBe('cancelled')
    // The upstream's word still holds for the type; the job holds no pause, no delayed entry.
    expect(await b.redis.hget(b.queue.store.keys.base(Q) + QUEUE_KEY.limits, 't:api:pause')).not.toBeNull()
    expect(await b.redis.zscore(b.queue.store.keys.delayed(Q), job.id)).toBeNull()
  })

  it("a dead worker's concurrency slot comes back when its job is reclaimed", async () => {
    await b.queue.setLimits(Q, { concurrency: 1 })
    const [first, ...rest] = await addMany(4, () => ({ payload: { ms: 5 } }))
    // A worker that took the first job and died (kill -9): never completes, never renews.
    const { jobs } = await b.queue.store.deliver(Q, 'dead-worker', 1)
    expect(jobs[0]!.id).toBe(first)
    expect((await b.queue.getLimits(Q)).running.queue).toBe(1)
    await workers(1)
    // The rest wait (held) until the reclaimer (CLAIM_IDLE_MS = 1 s) takes the job back: with a
    // cap of 1, none of them could run if the dead worker's slot leaked.
    await allDone([first!, ...rest], 20_000)
    expect(runs.map((r) => r.id)).toContain(first)
    expect(overlap()).toBe(1)
    expect((await b.queue.getLimits(Q)).running.queue).toBe(0)
  })

  it('removing a limit lets held jobs go; the view shows held counts', async () => {
    await b.queue.setLimits(Q, { concurrency: 1, key_concurrency: 1 })
    const ids = await addMany(6, (i) => ({ partition_key: i < 3 ? 'k1' : 'k2', payload: { ms: 1 } }))
    // Deliver without running: one job takes the cap, the rest are held.
    const got = await b.queue.store.deliver(Q, 'probe', 10)
    expect(got.jobs).toHaveLength(1)
    const view = await b.queue.getLimits(Q)
    expect(view.held.reduce((n, h) => n + h.count, 0)).toBe(5)
    expect(view.limits).toEqual({ concurrency: 1, key_concurrency: 1 })
    const states = await Promise.all(ids.map(async (id) => (await b.queue.getJob(id, Q))!.state))
    expect(states.filter((x) => x === 'held')).toHaveLength(5)
    const { released } = await b.queue.setLimits(Q, {})
    expect(released).toBe(5)
    const after = await Promise.all(ids.map(async (id) => (await b.queue.getJob(id, Q))!.state))
    expect(after.filter((x) => x === 'queued')).toHaveLength(5)
    // A held job can be cancelled; the list skips it later.
    await b.queue.setLimits(Q, { concurrency: 1 })
    const more = await addMany(2)
    await b.queue.store.deliver(Q, 'probe', 10)
    const held = (await Promise.all(more.map((id) => b.queue.getJob(id, Q)))).filter(
      (j) => j!.state === 'held',
    )
    expect(held.length).toBeGreaterThan(0)
    expect((await b.queue.cancel(held[0]!.id, Q)).outcome).toBe('cancelled')
  })

  it('refuses bad limits and bad breaker calls with a 400 that changes nothing', async () => {
    await b.queue.setLimits(Q, { concurrency: 2 })
    const before = await b.keys()
    const bad = async (spec: unknown, match: RegExp) => {
      const err = await b.queue.setLimits(Q, spec as LimitsSpec).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(DtqError)
      expect((err as DtqError).status).toBe(400)
      expect(JSON.stringify([(err as DtqError).message, (err as DtqError).details])).toMatch(match)
    }
    await bad({ concurrency: 0 }, /concurrency must be an integer from 1/)
    await bad({ rate: { limit: 5 } }, /rate.window_ms must be/)
    await bad({ rate: { limit: 5, window_ms: 10, burst: 1 } }, /burst is not a known field/)
    await bad({ key_concurrency: 1.5 }, /key_concurrency must be/)
    await bad({ types: { 'bad type': { concurrency: 1 } } }, /a task type is/)
    await bad({ types: { t: { breaker: { failures: 3, cooldown_ms: 5 } } } }, /cooldown_ms must be/)
    await bad({ limit: 3 }, /limit is not a known field/)
    await bad([], /limits must be an object/)
    const e = await b.queue.breaker(Q, 'work', 'explode' as never).catch((x: DtqError) => x)
    expect((e as DtqError).status).toBe(400)
    expect(await b.keys()).toEqual(before)
    const call = (name: 'set_limits' | 'breaker' | 'pause_type', ...args: string[]) =>
      functions().call(b.redis, name, b.queue.store.keys.base(Q), [Date.now(), 1000, 3600, 3600, ...args])
    await expect(call('set_limits', '{"conc":"x"}')).rejects.toThrow(/DTQ_BAD_ARG limit conc/)
    await expect(call('set_limits', '{"nope":"1"}')).rejects.toThrow(/DTQ_BAD_ARG unknown limit/)
    await expect(call('set_limits', '[')).rejects.toThrow(/DTQ_BAD_ARG limits must be/)
    await expect(call('breaker', 'work', 'open', '-1')).rejects.toThrow(/DTQ_BAD_ARG open for/)
    await expect(call('breaker', '', 'open', '0')).rejects.toThrow(/DTQ_BAD_ARG task type/)
    await expect(call('pause_type', 'x', '1', '0')).rejects.toThrow(/DTQ_BAD_ARG pause/)
    expect(await b.keys()).toEqual(before)
    expect((await b.queue.getLimits(Q)).limits).toEqual({ concurrency: 2 })
  })

  it('dtq limits set|get and dtq breaker', async () => {
    const env = {
      ...targetEnv(testTarget()),
      KEY_PREFIX: b.prefix,
      REDIS_DURABILITY: 'off',
      LOG_LEVEL: 'silent',
    }
    const set = JSON.parse(
      await runCli(env, [
        'limits',
        'set',
        Q,
        '--rate',
        '10/1000',
        '--concurrency',
        '4',
        '--key-concurrency',
        '1',
      ]),
    )
    expect(set.limits).toEqual({ rate: { limit: 10, window_ms: 1000 }, concurrency: 4, key_concurrency: 1 })
    await runCli(env, [
      'limits',
      'set',
      Q,
      '--json',
      '{"types":{"mail":{"breaker":{"failures":3,"cooldown_ms":1000}}}}',
    ])
    const opened = JSON.parse(await runCli(env, ['breaker', Q, 'mail', 'open', '--for', '5000']))
    expect(opened.breakers.mail.state).toBe('open')
    const got = JSON.parse(await runCli(env, ['limits', 'get', Q]))
    expect(got.limits).toEqual({ types: { mail: { breaker: { failures: 3, cooldown_ms: 1000 } } } })
    const err = await runCli(env, ['limits', 'set', Q, '--rate', 'fast']).catch(
      (e: { stderr: string }) => e.stderr,
    )
    expect(err).toMatch(/--rate is N\/W/)
  })

  it('a job run now, granted a slot and sent back to wait by a debounce gives the slot back (3 rounds)', async () => {
    await b.queue.setLimits(Q, { concurrency: 1 })
    const store = b.queue.store
    const state = async (id: string) => (await b.queue.getJob(id, Q))?.state
    for (let round = 0; round < 3; round++) {
      const a = (await b.queue.add('d', {}, { queue: Q })).job
      const [ja] = (await store.deliver(Q, 'w1', 1)).jobs
      expect(ja!.id).toBe(a.id)
      const debounce = (ttl_ms: number) => ({
        queue: Q,
        dedup: { mode: 'debounce' as const, key: `kb${round}`, ttl_ms },
      })
      const bid = (await b.queue.add('d', { v: 1 }, debounce(60_000))).job.id
      await b.queue.runNow(bid, Q) // an operator runs it now, within its window
      expect((await store.deliver(Q, 'w1', 10)).jobs).toEqual([]) // the slot is A's: B is held
      expect(await state(bid)).toBe('held')
      await store.complete(Q, [{ id: ja!.id, epoch: ja!.epoch, result: '1' }])
      expect(await state(bid)).toBe('queued') // granted A's slot, on its way
      // Added again within its window: B goes back to wait, for a minute.
      expect((await b.queue.add('d', { v: 2 }, debounce(60_000))).job.id).toBe(bid)
      expect(await state(bid)).toBe('scheduled')
      const c = (await b.queue.add('d', {}, { queue: Q })).job.id
      const started = (await store.deliver(Q, 'w1', 10)).jobs
      expect(started.map((j) => j.id)).toEqual([c])
      await store.complete(Q, [{ id: started[0]!.id, epoch: started[0]!.epoch, result: '1' }])
      await b.queue.deleteJob(bid, Q)
    }
  })

  it("a slot whose holder's record is gone is healed out when the set looks full (control: a live holder keeps it)", async () => {
    await b.queue.setLimits(Q, { concurrency: 1 })
    const store = b.queue.store
    const a = (await b.queue.add('d', {}, { queue: Q })).job.id
    expect((await store.deliver(Q, 'w1', 1)).jobs.map((j) => j.id)).toEqual([a])
    // Control: with the holder's record there, the next job waits.
    const c = (await b.queue.add('d', {}, { queue: Q })).job.id
    expect((await store.deliver(Q, 'w1', 1)).jobs).toEqual([])
    expect((await b.queue.getJob(c, Q))?.state).toBe('held')
    await b.queue.deleteJob(c, Q)
    // The holder's record lost behind DTQ's back (expired, removed by hand): its slot is healed out.
    await b.redis.del(store.keys.job(Q, a))
    // A heal looks at a set at most once a second (the control's look set its mark): until it goes.
    await waitFor(async () => !(await b.keys()).some((k) => k.includes(':heal:')), {
      what: 'the heal mark gone',
    })
    const next = (await b.queue.add('d', {}, { queue: Q })).job.id
    expect((await store.deliver(Q, 'w1', 1)).jobs.map((j) => j.id)).toEqual([next])
    expect(await b.redis.hget(store.keys.stats(Q), 'fc_healed')).toBe('1')
  })

  it('a job granted one cap’s slot and parked on another gives it back: two parked jobs never hold what the other waits for', async () => {
    // A queue cap of 1 and a cap of 1 on type A. The gate takes a type's cap before the queue's.
    await b.queue.setLimits(Q, { concurrency: 1, types: { A: { concurrency: 1 } } })
    const store = b.queue.store
    const add = async (type: string) => (await b.queue.add(type, {}, { queue: Q })).job.id
    const deliver = async () => (await store.deliver(Q, 'w1', 10)).jobs
    const done = (j: Job) => store.complete(Q, [{ id: j.id, epoch: j.epoch, result: '1' }])
    // B (no type cap) runs on the queue's slot; RA then Y, both of type A, find the type's cap
    // free and wait in the queue's list.
    const rb = await add('B')
    const [jb] = await deliver()
    expect(jb!.id).toBe(rb)
    const ra = await add('A')
    const y = await add('A')
    expect(await deliver()).toEqual([])
    expect(await fcList('ch:q')).toEqual([ra, y])
    // B ends: RA is granted the queue's slot, takes the type's at its start and runs.
    await done(jb!)
    const [jra] = await deliver()
    expect(jra!.id).toBe(ra)
    // X of type A waits for the type's slot, which RA holds.
    const x = await add('A')
    expect(await deliver()).toEqual([])
    expect(await fcPicture(['cs:q', 'cs:t:A', 'ch:q', 'ch:t:A'])).toEqual({
      'cs:q': [ra],
      'cs:t:A': [ra],
      'ch:q': [y],
      'ch:t:A': [x],
    })
    // RA ends: the queue's slot is granted to Y, the type's to X; both on their way, Y first.
    await done(jra!)
    expect(await fcPicture(['cs:q', 'cs:t:A', 'ch:q', 'ch:t:A'])).toEqual({
      'cs:q': [y],
      'cs:t:A': [x],
      'ch:q': [],
      'ch:t:A': [],
    })
    // Y holds the queue's slot but finds the type's taken: it is parked on the type's list and
    // gives the queue's slot back, so X (holding the type's) takes it and runs. Had Y kept it, X
    // would be parked on the queue's list holding the type's slot Y waits for: neither could
    // ever start (nothing else grants either: no running job, no stream entry).
    const started = await deliver()
    expect({
      started: started.map((j) => j.id),
      ...(await fcPicture(['cs:q', 'cs:t:A', 'ch:q', 'ch:t:A'])),
    }).toEqual({ started: [x], 'cs:q': [x], 'cs:t:A': [x], 'ch:q': [], 'ch:t:A': [y] })
    expect(await b.redis.hmget(store.keys.job(Q, y), F.state, F.fc_held, F.fc_slots)).toEqual([
      'held',
      'ch:t:A',
      null,
    ])
    // X ends: Y is granted the type's slot, takes the queue's and runs; nothing is left held.
    await done(started[0]!)
    const [jy] = await deliver()
    expect(jy!.id).toBe(y)
    await done(jy!)
    expect(await fcPicture(['cs:q', 'cs:t:A', 'ch:q', 'ch:t:A'])).toEqual({
      'cs:q': [],
      'cs:t:A': [],
      'ch:q': [],
      'ch:t:A': [],
    })
  })

  it('a job granted the queue’s slot and then deferred by a rate limit gives the slot back while it waits', async () => {
    // The gate takes the slots first, then a rate start: one start a minute for type A.
    await b.queue.setLimits(Q, { concurrency: 1, types: { A: { rate: { limit: 1, window_ms: 60_000 } } } })
    const store = b.queue.store
    const add = async (type: string) => (await b.queue.add(type, {}, { queue: Q })).job.id
    const deliver = async () => (await store.deliver(Q, 'w1', 10)).jobs
    const a1 = await add('A')
    const [j1] = await deliver()
    expect(j1!.id).toBe(a1)
    const a2 = await add('A')
    expect(await deliver()).toEqual([])
    expect(await fcList('ch:q')).toEqual([a2])
    // A1 ends: A2 is granted the queue's slot, but the type's next start is a minute away.
    await store.complete(Q, [{ id: j1!.id, epoch: j1!.epoch, result: '1' }])
    expect(await fcSet('cs:q')).toEqual([a2])
    expect(await deliver()).toEqual([])
    expect(await b.redis.hmget(store.keys.job(Q, a2), F.state, F.fc_held, F.fc_slots)).toEqual([
      'scheduled',
      'rate',
      null,
    ])
    expect(await fcSet('cs:q')).toEqual([])
    // The slot is free for a job of another type meanwhile (kept, it would wait the minute).
    const other = await add('B')
    expect((await deliver()).map((j) => j.id)).toEqual([other])
    expect(await fcSet('cs:q')).toEqual([other])
  })

  it('with a completed retention of 0 (the record deleted at completion) the queue’s and the key’s slots are given back', async () => {
    await b.cleanup()
    b = await setup({ config: { completedRetentionS: 0 } })
    await b.queue.setLimits(Q, { concurrency: 1, key_concurrency: 1 })
    const store = b.queue.store
    const add = async (key: string) => (await b.queue.add('d', {}, { queue: Q, partition_key: key })).job.id
    const sets = ['cs:q', 'ks:k', 'ks:k2', 'ch:q', 'kh:k']
    const a = await add('k')
    const [ja] = (await store.deliver(Q, 'w1', 10)).jobs
    expect(ja!.id).toBe(a)
    // B waits for key k's slot, C (another key) for the queue's.
    const bj = await add('k')
    const c = await add('k2')
    expect((await store.deliver(Q, 'w1', 10)).jobs).toEqual([])
    expect(await fcPicture(sets)).toEqual({
      'cs:q': [a],
      'ks:k': [a],
      'ks:k2': [],
      'ch:q': [c],
      'kh:k': [bj],
    })
    // A completes and its record is deleted in the same call: both its slots are handed on.
    expect(await store.complete(Q, [{ id: ja!.id, epoch: ja!.epoch, result: '1' }])).toEqual([1])
    expect(await b.redis.exists(store.keys.job(Q, a))).toBe(0)
    expect(await fcPicture(sets)).toEqual({ 'cs:q': [c], 'ks:k': [bj], 'ks:k2': [], 'ch:q': [], 'kh:k': [] })
    // B (key k's slot, kept) waits for the queue's slot C was granted; C starts.
    const [jc, ...none] = (await store.deliver(Q, 'w1', 10)).jobs
    expect([jc!.id, none]).toEqual([c, []])
    // C completes in a worker's fused call (complete + deliver): B starts in the same call.
    const f = await store.fetch(Q, 'w1', 10, [{ id: jc!.id, epoch: jc!.epoch, result: '1' }])
    expect([f.completed, f.jobs.map((j) => j.id)]).toEqual([[1], [bj]])
    await store.complete(Q, [{ id: bj, epoch: f.jobs[0]!.epoch, result: '1' }])
    expect(await fcPicture(sets)).toEqual({ 'cs:q': [], 'ks:k': [], 'ks:k2': [], 'ch:q': [], 'kh:k': [] })
    expect((await b.keys()).filter((k) => k.includes(':job:'))).toEqual([])
    // Given back by the completions, not found out by the heal of a set that looks full.
    expect(await b.redis.hget(store.keys.stats(Q), 'fc_healed')).toBeNull()
  })

  it('deleting a job gives back every slot it held; emptying a queue removes held jobs too', async () => {
    await b.queue.setLimits(Q, { concurrency: 1, key_concurrency: 1 })
    const [a, next] = await addMany(2, () => ({ partition_key: 'k' }))
    const other = (await addMany(1, () => ({ partition_key: 'other' })))[0]!
    // A takes the queue's slot and key k's; the others are held.
    const got = await b.queue.store.deliver(Q, 'gone', 10)
    expect(got.jobs.map((j) => j.id)).toEqual([a])
    expect((await b.queue.getJob(next!, Q))!.state).toBe('held')
    await b.queue.deleteJob(a!, Q)
    // Both slots were handed on: the queue's to the first held job, then k's to `next` in turn.
    await workers(1)
    await allDone([next!, other])
    expect((await b.queue.getLimits(Q)).running.queue).toBe(0)
    // Held jobs are emptied with the rest.
    await b.queue.setLimits(Q, { concurrency: 1 })
    const more = await addMany(3, () => ({ payload: { ms: 5000 } }))
    await waitFor(async () => (await b.queue.getLimits(Q)).held.reduce((n, h) => n + h.count, 0) === 2)
    const emptied = await b.queue.emptyQueue(Q)
    expect(emptied.removed).toBeGreaterThanOrEqual(2)
    const states = await Promise.all(more.map(async (id) => (await b.queue.getJob(id, Q))?.state ?? 'gone'))
    expect(states.filter((s) => s === 'held')).toHaveLength(0)
  })
})
