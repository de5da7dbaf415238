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
import { DtqError, PermanentJobError, RateLimitedError } from '../src/errors.ts'
import type { Job } from '../src/queue/job.ts'
import type { LimitsSpec } from '../src/queue/limits.ts'
import { functions } from '../src/redis/scripts.ts'
import type { Worker } from '../src/worker/worker.ts'
import { type Bundle, setup, waitFor } from './helpers.ts'

const Q = 'lim'
let b: Bundle
/** Run intervals by job id (handler start, end), in the order they started. */
let runs: Array<{ id: string; key: string | null; type: string; start: number; end: number }>

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
      const rec = { id: job.id, key: job.partition_key, type: job.task_type, start: Date.now(), end: 0 }
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
function maxOverlap(pick: (r: (typeof runs)[number]) => boolean = () => true): number {
  const edges = runs
    .filter(pick)
    .flatMap((r) => [
      [r.start, 1],
      [r.end, -1],
    ])
    .sort((x, y) => x[0]! - y[0]! || x[1]! - y[1]!)
  let now = 0
  let max = 0
  for (const [, d] of edges) max = Math.max(max, (now += d!))
  return max
}

async function addMany(n: number, opts: (i: number) => Record<string, unknown> = () => ({})) {
  const specs = Array.from({ length: n }, (_, i) => ({
    task_type: 'work',
    queue: Q,
    payload: {},
    ...opts(i),
  }))
  return (await b.queue.addBulk(specs as never)).map((r) => r.job.id)
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
      if (limited) expect(maxOverlap()).toBe(3)
      else expect(maxOverlap()).toBeGreaterThan(3)
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
    expect(maxOverlap((r) => r.type === 'work')).toBe(2)
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
            maxOverlap((r) => r.key === k),
            k,
          ).toBe(1)
          const seq = mine.map((r) => order.get(r.id)!)
          expect(seq, `start order of key ${k}`).toEqual([...seq].sort((x, y) => x - y))
        }
      }
      if (!limited) expect(maxOverlap((r) => r.key === 'hot')).toBeGreaterThan(1)
      // Fairness: the small keys finished long before the hot key's last job.
      const lastHot = Math.max(...runs.filter((r) => r.key === 'hot').map((r) => r.end))
      const lastSmall = Math.max(...runs.filter((r) => r.key !== 'hot').map((r) => r.end))
      expect(lastSmall).toBeLessThan(lastHot)
      expect(runs.length).toBe(60 + ids.filter((_, i) => i % 7 === 0).length)
    })
  }
})
