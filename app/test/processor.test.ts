/**
 * The fetch engine against a real Redis: its retry timing (with an injected fetch failure), its
 * round of the queues.
 */
import { afterEach, beforeEach, expect, it, vi } from 'vitest'
import type { Job } from '../src/queue/job.ts'
import { createRedis, redisTarget } from '../src/redis/connection.ts'
import { EntryWaiter } from '../src/redis/stream-wait.ts'
import type { LeaseKeeper } from '../src/worker/lease-keeper.ts'
import { Processor } from '../src/worker/processor.ts'
import { type Bundle, setup, waitFor } from './helpers.ts'

let b: Bundle
beforeEach(async () => {
  b = await setup()
})
afterEach(async () => {
  vi.restoreAllMocks()
  await b.cleanup()
})

/** A processor of `queues` on its own blocking connection, running `echo` jobs with the given handler. */
async function startProcessor(queues: string[], concurrency: number, echo: (job: Job) => Promise<void>) {
  const waiter = new EntryWaiter(
    () => createRedis({ target: redisTarget(b.config), commandTimeoutMs: 3000, blocking: true }),
    b.queue.store.keys,
    b.redis,
  )
  const p = new Processor({
    store: b.queue.store,
    waiter,
    consumer: 'w1',
    queues,
    concurrency,
    handlers: new Map([['echo', echo]]),
    backoff: { initialMs: 10, multiplier: 2, maxMs: 100 },
    leases: { track() {}, untrack() {} } as unknown as LeaseKeeper,
    log: { info() {}, warn() {}, error() {}, debug() {} },
    maxResultBytes: 1000,
    timeoutGraceMs: 1000,
    blockMs: 200,
  })
  p.start()
  return {
    async stop() {
      await p.stopFetching()
      waiter.close()
    },
  }
}

it('fetches again when its retry timer fires, even if the wall clock is not there yet', async () => {
  // A timer runs on the monotonic clock and may fire a little before Date.now() reaches the
  // retry time. The engine once re-checked Date.now() then and, finding it early, scheduled
  // nothing more: the worker stopped fetching for good after one failed fetch (seen in the chaos
  // suite after a black-holed link). Here the wall clock is made to lag by 5 s at that moment.
  const store = b.queue.store
  const realNow = Date.now.bind(Date)
  let skew = 0
  vi.spyOn(Date, 'now').mockImplementation(() => realNow() + skew)
  const deliver = store.deliver.bind(store)
  let failures = 0
  vi.spyOn(store, 'deliver').mockImplementation(async (...args) => {
    if (failures++ === 0) {
      skew = 5000 // the retry time is taken from a clock 5 s ahead...
      setTimeout(() => {
        skew = 0 // ...which is back to normal when the retry timer fires
      }, 20)
      throw new Error('Command timed out')
    }
    return deliver(...args)
  })
  const done: string[] = []
  const p = await startProcessor(['default'], 2, async (job) => void done.push(job.id))
  try {
    await waitFor(() => failures >= 1, { what: 'the failed fetch' })
    const { job } = await b.queue.add('echo', {})
    await waitFor(() => done.includes(job.id), { timeoutMs: 5000, what: 'the job to run after the retry' })
    expect(failures).toBeGreaterThan(1)
  } finally {
    await p.stop()
  }
})

it('a worker of several queues runs a new job of any of them at once, not after its idle round', async () => {
  // Fetch rounds run concurrently; each once went through the queues from a start point they
  // all share, so a round could visit one queue twice and skip another, then wait on the wrong
  // streams: a job of the skipped queue waited for the next full round (30 s).
  const queues = ['q1', 'q2', 'q3']
  const store = b.queue.store
  // Calls that take a little longer now and then, so concurrent rounds interleave every way.
  const jitter = () => new Promise((r) => setTimeout(r, Math.random() * 5))
  const deliver = store.deliver.bind(store)
  vi.spyOn(store, 'deliver').mockImplementation(async (...args) => {
    await jitter()
    return deliver(...args)
  })
  const fetch = store.fetch.bind(store)
  vi.spyOn(store, 'fetch').mockImplementation(async (...args) => {
    await jitter()
    return fetch(...args)
  })
  // The queues each wait watches.
  const watched: string[] = []
  const wait = EntryWaiter.prototype.wait
  vi.spyOn(EntryWaiter.prototype, 'wait').mockImplementation(async function (this: EntryWaiter, tails, ms) {
    watched.push(
      tails
        .map((t) => t.queue)
        .sort()
        .join(','),
    )
    return wait.call(this, tails, ms)
  })
  const done: string[] = []
  const p = await startProcessor(queues, 4, async (job) => {
    await new Promise((r) => setTimeout(r, 20))
    done.push(job.id)
  })
  try {
    for (let round = 0; round < 6; round++) {
      // Jobs that finish together: the fetch rounds that follow overlap.
      const burst = await Promise.all(queues.map((queue) => b.queue.add('echo', {}, { queue })))
      await waitFor(() => burst.every(({ job }) => done.includes(job.id)), { what: 'the burst' })
      for (const queue of queues) {
        const { job } = await b.queue.add('echo', {}, { queue })
        await waitFor(() => done.includes(job.id), {
          timeoutMs: 3000,
          what: `the job of ${queue} (round ${round})`,
        })
      }
    }
    expect(watched.length).toBeGreaterThan(0)
    expect(watched.filter((w) => w !== 'q1,q2,q3')).toEqual([])
  } finally {
    await p.stop()
  }
})
