/**
 * Fleet maintenance (ADR 0013): one worker at a time holds the maintenance lease and runs the
 * scheduler, reclaimer and janitor for every queue; idle workers only wait. And what the
 * janitor bounds: the queue registry, per-type stats, old function libraries, jobs stranded
 * by stream entries deleted behind DTQ's back.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { idBlock } from '../src/queue/ids.ts'
import { F } from '../src/queue/job.ts'
import { primaries } from '../src/redis/connection.ts'
import { GROUP } from '../src/redis/keys.ts'
import { startLocalRedis } from '../src/redis/local-server.ts'
import { Registry } from '../src/redis/registry.ts'
import type { JobStore } from '../src/redis/store.ts'
import { LOC_BLOCK_TTL_S } from '../src/redis/store-base.ts'
import { Janitor } from '../src/worker/janitor.ts'
import { Scheduler } from '../src/worker/scheduler.ts'
import { type Bundle, FakeClock, monitorRedis, setup, waitFor } from './helpers.ts'
import { tempDir } from './processes.ts'

let b: Bundle | undefined
const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  await b?.cleanup()
  b = undefined
  for (const c of cleanups.splice(0)) await c()
})

const leaderOf = <T extends { id: string }>(ws: T[], holder: string | null) => ws.find((w) => w.id === holder)

describe('the scheduler alone (fake clock)', () => {
  it('promotes what is due and sleeps until the next due job, at most its poll', async () => {
    const clock = new FakeClock()
    b = await setup({ clock })
    const scheduler = new Scheduler({ store: b.queue.store, clock, pollMs: 500 })
    await b.queue.add('echo', {}, { delay_ms: 200 })
    await b.queue.add('echo', {}, { delay_ms: 5000 })
    expect(await scheduler.tick(['default'])).toBe(200)
    clock.advance(200)
    expect(await scheduler.tick(['default'])).toBe(500) // next due in 4.8 s: poll again in 500 ms
    expect((await b.queue.stats()).totals.queued).toBe(1)
    clock.advance(4800)
    expect(await scheduler.tick(['default'])).toBe(500) // nothing left: the poll
    expect((await b.queue.stats()).totals.queued).toBe(2)
  })
})

describe('the maintenance lease', () => {
  it('is held by one token at a time, renewed by its holder, released, and taken over when it lapses', async () => {
    b = await setup()
    const store = b.queue.store
    expect(await store.lead('a', 300)).toBe(true)
    expect(await store.lead('b', 300)).toBe(false)
    expect(await store.lead('a', 300)).toBe(true) // renewal
    expect(await store.lead('a', 300, true)).toBe(false) // release
    expect(await store.lead('b', 300)).toBe(true)
    expect(await store.lead('a', 300)).toBe(false)
    // b stops renewing (frozen, killed): the lease lapses and a takes over.
    await waitFor(() => store.lead('a', 300), { what: 'takeover after the ttl' })
    expect(await b.redis.get(store.keys.leader())).toBe('a')
  })

  it('one worker of several leads; when it stops, another takes over and delayed jobs still run', async () => {
    b = await setup()
    const ws = [b.worker(), b.worker(), b.worker()]
    for (const w of ws) await w.start()
    const leader = leaderOf(ws, await b.redis.get(b.queue.store.keys.leader()))!
    expect(leader).toBeDefined()
    await leader.close(500)
    const next = await waitFor(async () => {
      const id = await b!.redis.get(b!.queue.store.keys.leader())
      return id && id !== leader.id ? id : null
    })
    expect(ws.map((w) => w.id)).toContain(next)
    const { job } = await b.queue.add('echo', { x: 1 }, { delay_ms: 200 })
    await waitFor(async () => (await b!.queue.getJob(job.id))?.state === 'completed', {
      what: 'delayed job done',
    })
  })
})

describe('an idle fleet', () => {
  /**
   * Before the lease, each of W workers promoted each of its Q queues every poll and went
   * through every queue after each 1 s wait: O(W × Q) calls. Now only the leader promotes, and
   * an idle worker's only call is its blocking wait.
   */
  it('costs Redis O(queues) promote calls from the leader alone, and no delivery calls at all', async () => {
    const redis = await startLocalRedis(tempDir('idle-fleet'))
    cleanups.push(() => redis.stop())
    const queues = ['q1', 'q2', 'q3', 'q4']
    b = await setup({ url: redis.url, config: { workerQueues: queues } })
    // A lease of 3 s (3 heartbeats of 1 s): on a loaded machine a 0.6 s one can change hands
    // inside the window, and then two clients promote, rightly.
    const opts = { schedulerPollMs: 100, heartbeatMs: 1000 }
    const ws = [b.worker({}, opts), b.worker({}, opts), b.worker({}, opts)]
    for (const w of ws) await w.start()
    // MONITOR on a plain socket (monitorRedis: ioredis's monitor mode misreads a busy server's
    // first lines).
    const calls = new Map<string, Set<string>>()
    const count = new Map<string, number>()
    const m = await monitorRedis(redis.url, (args, source) => {
      const cmd = args[0]?.toUpperCase()
      if (cmd !== 'FCALL' && cmd !== 'XREAD') return
      const name = cmd === 'XREAD' ? 'xread' : (args[1] ?? '').replace(/^dtq_[0-9a-f]+_/, '')
      count.set(name, (count.get(name) ?? 0) + 1)
      if (!calls.has(name)) calls.set(name, new Set())
      calls.get(name)!.add(source)
    })
    // Past the start-up rounds, then a 2 s window.
    await new Promise((r) => setTimeout(r, 1500))
    count.clear()
    calls.clear()
    await new Promise((r) => setTimeout(r, 2000))
    m.close()
    // One client promotes: the leader's connection. ~4 queues × 10 polls/s × 2 s.
    expect(calls.get('promote')?.size).toBe(1)
    // Reclaim too (every CLAIM_IDLE_MS / 2 = 500 ms here): the fleet scans each stream once a period.
    expect(calls.get('reclaim')?.size).toBe(1)
    expect(count.get('reclaim')).toBeLessThanOrEqual(queues.length * 3 * 5)
    expect(count.get('promote')).toBeLessThanOrEqual(queues.length * 25)
    // Idle workers do not go through their queues: no deliver, no fetch.
    expect(count.get('deliver') ?? 0).toBe(0)
    expect(count.get('fetch') ?? 0).toBe(0)
    // One blocking wait per worker per second (covering all its queues).
    expect(count.get('xread') ?? 0).toBeLessThanOrEqual(ws.length * 3)
    // And the work still flows: a job in any queue is taken at once.
    const { job } = await b.queue.add('echo', {}, { queue: 'q3' })
    await waitFor(async () => (await b!.queue.getJob(job.id))?.state === 'completed')
  })
})

describe('the janitor bounds what grows', () => {
  it('forgets a queue that has held nothing for QUEUE_FORGET_S, never one that holds jobs, is paused or is served', async () => {
    b = await setup({ config: { queueForgetS: 1 } })
    const store = b.queue.store
    await b.queue.add('echo', {}, { queue: 'empty-soon', delay_ms: 60_000 })
    const { job } = await b.queue.add('echo', {}, { queue: 'empty-soon' })
    await b.queue.add('echo', {}, { queue: 'holds-jobs' })
    await b.queue.pauseQueue('paused-one')
    await b.queue.cancel(job.id) // a cancelled job is kept (index) until its retention
    await b.redis.del(store.keys.job('empty-soon', job.id))
    await b.redis.del(store.keys.index('empty-soon', 'cancelled'))
    const scheduled = await b.redis.zrange(store.keys.delayed('empty-soon'), 0, -1)
    for (const id of scheduled) await b.queue.cancel(id, 'empty-soon')
    await b.redis.del(store.keys.index('empty-soon', 'cancelled'))
    const w = b.worker({ workerQueues: ['served-empty'] }, { janitorEveryMs: 200 })
    await w.start()
    await waitFor(async () => !(await b!.queue.queueNames()).includes('empty-soon'), {
      what: 'empty queue forgotten',
    })
    const names = await b.queue.queueNames()
    expect(names).toEqual(expect.arrayContaining(['holds-jobs', 'paused-one', 'served-empty']))
    expect(
      await b.redis.exists(store.keys.stream('empty-soon', 'normal'), store.keys.stats('empty-soon')),
    ).toBe(0)
    // Used again: it comes back like any new queue.
    await b.queue.add('echo', {}, { queue: 'empty-soon' })
    expect(await b.queue.queueNames()).toContain('empty-soon')
  })

  it('keeps per-type totals for at most 200 task types per queue; the rest count as _other', async () => {
    b = await setup()
    const jobs = Array.from({ length: 205 }, (_, i) => ({ task_type: `type-${i}` }))
    await b.queue.addBulk(jobs)
    const stats = await b.redis.hgetall(b.queue.store.keys.stats('default'))
    const typed = Object.keys(stats).filter((k) => k.startsWith('created|'))
    expect(typed).toHaveLength(201)
    expect(stats['created|_other']).toBe('5')
    expect(stats.created).toBe('205')
    expect(await b.redis.scard(b.queue.store.keys.types('default'))).toBe(200)
  })

  it('the type cap holds for a queue deleted and made again (its names are counted anew)', async () => {
    b = await setup()
    const q = 'remade'
    const add = (from: number) =>
      b!.queue.addBulk(Array.from({ length: 205 }, (_, i) => ({ task_type: `type-${from + i}`, queue: q })))
    await add(0)
    await b.queue.deleteQueue(q, { force: true })
    await add(0) // the same names first, then new ones
    await add(1000)
    const stats = await b.redis.hgetall(b.queue.store.keys.stats(q))
    expect(Object.keys(stats).filter((k) => k.startsWith('created|'))).toHaveLength(201)
    expect(stats['created|_other']).toBe('210')
    expect(await b.redis.scard(b.queue.store.keys.types(q))).toBe(200)
  })

  it('deletes function libraries of versions unused for a day, never its own or one it did not record', async () => {
    b = await setup()
    const store = b.queue.store
    await b.queue.add('echo', {}) // loads and records this version's library
    const own = (await b.redis.hkeys(store.keys.functionLibraries()))[0]!
    const lib = (name: string) =>
      `#!lua name=${name}\nredis.register_function('${name}_f', function() return 1 end)`
    const oldName = `dtq_test${b.prefix}old`
    const strangerName = `dtq_test${b.prefix}stranger`
    // On every primary (a Cluster's too), as DTQ loads its own.
    const nodes = primaries(b.redis)
    for (const node of nodes) {
      await node.call('FUNCTION', 'LOAD', 'REPLACE', lib(oldName))
      await node.call('FUNCTION', 'LOAD', 'REPLACE', lib(strangerName))
    }
    const dayAgo = Date.now() - 25 * 3_600_000
    await b.redis.hset(store.keys.functionLibraries(), oldName, dayAgo, own, dayAgo)
    expect(await store.pruneFunctionLibraries(24 * 3_600_000)).toEqual([oldName])
    for (const node of nodes) {
      const names = ((await node.call('FUNCTION', 'LIST')) as unknown[][]).map((l) => String(l[1]))
      expect(names).not.toContain(oldName)
      expect(names).toContain(own)
      expect(names).toContain(strangerName)
      await node.call('FUNCTION', 'DELETE', strangerName)
    }
  })

  /** A job held by a worker that died, its stream entry deleted behind DTQ's back. */
  async function strandJob(): Promise<{ store: JobStore; id: string; redis: Bundle['redis'] }> {
    b = await setup({ config: { claimIdleMs: 200, leaseMs: 50 } })
    const store = b.queue.store
    const { job } = await b.queue.add('echo', {})
    const [j] = (await store.deliver('default', 'dead-worker', 1)).jobs
    expect(j?.id).toBe(job.id)
    await b.redis.xdel(
      store.keys.stream('default', 'normal'),
      (await b.redis.hget(store.keys.job('default', job.id), F.entry))!,
    )
    return { store, id: job.id, redis: b.redis }
  }

  /** Starts a worker whose janitor runs often; resolves once job `id` is dead-lettered as lost. */
  async function repairedByNextLeader(id: string): Promise<void> {
    const w = b!.worker({ claimIdleMs: 200, leaseMs: 50 }, { janitorEveryMs: 200 })
    await w.start()
    const dead = await waitFor(async () => {
      const x = await b!.queue.getJob(id)
      return x?.state === 'failed' ? x : null
    })
    expect(dead.error).toMatch(/stream entry was deleted outside DTQ/)
  }

  it('repairs a job stranded by a deleted stream entry after its owner died: dead-lettered, with why', async () => {
    const { store, id, redis } = await strandJob()
    await repairedByNextLeader(id)
    expect(await redis.hget(store.keys.stats('default'), 'lost_entries')).toBe('1')
    const pending = (await redis.xpending(store.keys.stream('default', 'normal'), GROUP)) as [number]
    expect(pending[0]).toBe(0)
  })

  it('a leader that dies between the deleted-entry report and its repair leaves the repair to the next (invariant 6)', async () => {
    // Redis reports a deleted pending entry once: the repair it calls for must be recorded in
    // Redis in the same step, not in the memory of the leader that saw it.
    const { store, id, redis } = await strandJob()
    // The first leader's reclaim sees the deleted entry... and the leader dies before its repair.
    await waitFor(async () => {
      const r = await store.reclaim('default', 'leader-1', 'normal', 200, 5)
      return r.lost === 1 ? r : null
    })
    expect((await store.reclaim('default', 'leader-1', 'normal', 0, 5)).lost).toBe(0) // reported once
    expect((await b!.queue.getJob(id))?.state).toBe('active')
    await repairedByNextLeader(id)
    // The trigger is cleared once repaired, and a repair that read an older count leaves a newer one.
    await waitFor(async () =>
      (await redis.hget(store.keys.meta('default'), 'repair_due')) === null ? 1 : null,
    )
    await redis.hset(store.keys.meta('default'), 'repair_due', '3')
    await store.repairLostJobs('default', '2')
    expect(await redis.hget(store.keys.meta('default'), 'repair_due')).toBe('3')
    await store.repairLostJobs('default', '3')
    expect(await redis.hget(store.keys.meta('default'), 'repair_due')).toBeNull()
  })
})

describe('the janitor bounds what grows: DLQ entries and locator hints (invariant 14)', () => {
  const silentLog = { info() {}, warn() {}, error() {}, debug() {} }

  it('trims DLQ entries older than FAILED_RETENTION_S on its tick, keeps the rest (one at exactly the retention too)', async () => {
    const clock = new FakeClock()
    b = await setup({ clock, config: { failedRetentionS: 60 } })
    const store = b.queue.store
    const janitor = new Janitor({
      store,
      registry: new Registry(b.redis, store.keys),
      log: silentLog,
      consumerIdleMs: 60_000,
      queueForgetMs: 0,
    })
    /** A job dead-lettered now (the DLQ entry's id carries the failure time: '<now>-<seq>'). */
    const deadLetter = async () => {
      await b!.queue.add('echo', {}, { max_retries: 0 })
      const [j] = (await store.deliver('default', 'w1', 1)).jobs
      const err = { message: 'boom', worker: 'w1', attempt: 1 }
      expect(await store.fail('default', j!.id, j!.epoch, 'retry', err, 0)).toBe('failed')
      return j!.id
    }
    const inDlq = async () =>
      (await b!.redis.xrange(store.keys.dlq('default'), '-', '+')).map(([, f]) => f[1]!)
    const t0 = clock.now()
    const old = await deadLetter()
    clock.advance(30_000)
    const mid = await deadLetter()
    clock.advance(30_000)
    const young = await deadLetter()
    // now = t0 + 60 s: the oldest entry is exactly FAILED_RETENTION_S old -- not yet past it.
    expect((await store.sweep('default', new Set(), 60_000)).dlqEntries).toBe(0)
    expect(await inDlq()).toEqual([old, mid, young])
    clock.advance(1) // 1 ms past the retention for `old` alone
    await janitor.tick(['default'], new Set())
    expect(await inDlq()).toEqual([mid, young])
    clock.t = t0 + 30_000 + 60_000 + 1
    expect((await store.sweep('default', new Set(), 60_000)).dlqEntries).toBe(1)
    expect(await inDlq()).toEqual([young])
    // A sweep with nothing past the retention removes nothing (idempotent).
    expect((await store.sweep('default', new Set(), 60_000)).dlqEntries).toBe(0)
    expect(await inDlq()).toEqual([young])
    clock.advance(30_000)
    await janitor.tick(['default'], new Set())
    expect(await b.redis.xlen(store.keys.dlq('default'))).toBe(0)
  })

  it('every locator hint expires: written with a TTL of LOC_BLOCK_TTL_S (30 days) at reservation and when a lookup rewrites it', async () => {
    b = await setup()
    const store = b.queue.store
    const hintTtls = async () => {
      const keys = (await b!.keys()).filter((k) => k.includes(':loc:b:'))
      return Object.fromEntries(await Promise.all(keys.map(async (k) => [k, await b!.redis.ttl(k)] as const)))
    }
    const bounded = (ttls: Record<string, number>) => {
      for (const [k, ttl] of Object.entries(ttls)) {
        expect(ttl, k).toBeGreaterThan(LOC_BLOCK_TTL_S - 60)
        expect(ttl, k).toBeLessThanOrEqual(LOC_BLOCK_TTL_S)
      }
    }
    expect(LOC_BLOCK_TTL_S).toBe(30 * 86_400) // what docs/architecture.md's key table says
    // Blocks reserved one at a time, and several at once (a bulk larger than a block), in two queues.
    const ids = [
      ...(await b.queue.addBulk(Array.from({ length: 2500 }, () => ({ task_type: 'echo' })))),
      ...(await b.queue.addBulk([{ task_type: 'echo', queue: 'other' }])),
    ].map((r) => r.job.id)
    const reserved = await hintTtls()
    // Every block an id came from has its hint, and every hint has its expiry.
    for (const id of ids) expect(Object.keys(reserved)).toContain(store.keys.locBlock(idBlock(id)))
    expect(Object.keys(reserved).length).toBeGreaterThanOrEqual(4)
    bounded(reserved)
    // A lookup that misses (the hint expired) writes it again, with the same expiry ...
    const missing = store.keys.locBlock(idBlock(ids[0]!))
    await b.redis.del(missing)
    expect((await b.queue.getJob(ids[0]!))?.queue).toBe('default')
    expect(await b.redis.get(missing)).toBe('default')
    // ... and one that finds it wrong (here a hint with no expiry at all) corrects it with one.
    const wrong = store.keys.locBlock(idBlock(ids.at(-1)!))
    await b.redis.set(wrong, 'default')
    expect(await b.redis.ttl(wrong)).toBe(-1)
    expect((await b.queue.getJob(ids.at(-1)!))?.queue).toBe('other')
    expect(await b.redis.get(wrong)).toBe('other')
    const rewritten = await hintTtls()
    expect(Object.keys(rewritten).sort()).toEqual(Object.keys(reserved).sort())
    bounded(rewritten)
  })
})
