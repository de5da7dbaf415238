/** The fetch engine's retry timing, against a real Redis with an injected fetch failure. */
import { afterEach, beforeEach, expect, it, vi } from 'vitest'
import { connectRedis, createRedis } from '../src/redis/connection.ts'
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

it('fetches again when its retry timer fires, even if the wall clock is not there yet', async () => {
  // A timer runs on the monotonic clock and may fire a little before Date.now() reaches the
  // retry time. The engine once re-checked Date.now() then and, finding it early, scheduled
  // nothing more: the worker stopped fetching for good after one failed fetch (seen in the chaos
  // suite after a black-holed link). Here the wall clock is made to lag by 5 s at that moment.
  const blocking = createRedis({ url: b.config.redisUrl, commandTimeoutMs: 3000, blocking: true })
  await connectRedis(blocking)
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
  const leases = { track() {}, untrack() {} } as unknown as LeaseKeeper
  const p = new Processor({
    store,
    blocking,
    consumer: 'w1',
    queues: ['default'],
    concurrency: 2,
    handlers: new Map([['echo', async (job) => void done.push(job.id)]]),
    backoff: { initialMs: 10, multiplier: 2, maxMs: 100 },
    leases,
    log: { info() {}, warn() {}, error() {}, debug() {} },
    maxResultBytes: 1000,
    timeoutGraceMs: 1000,
    blockMs: 200,
  })
  p.start()
  try {
    await waitFor(() => failures >= 1, { what: 'the failed fetch' })
    const { job } = await b.queue.add('echo', {})
    await waitFor(() => done.includes(job.id), { timeoutMs: 5000, what: 'the job to run after the retry' })
    expect(failures).toBeGreaterThan(1)
  } finally {
    await p.stopFetching()
    blocking.disconnect()
  }
})
