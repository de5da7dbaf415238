/**
 * DLQ redrive (POST /dlq/retry, Queue.retryDlqMany): each job that was in the DLQ when the
 * redrive was asked for is requeued at most once, even when requeued jobs fail again while it
 * runs, and when the redrive job is run again after a crash.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { Job } from '../src/queue/job.ts'
import type { Queue } from '../src/queue/queue.ts'
import type { DlqRetryPayload } from '../src/queue/system-tasks.ts'
import { dlqRetryHandler } from '../src/worker/dlq-retry.ts'
import type { JobContext } from '../src/worker/handlers.ts'
import type { Worker } from '../src/worker/worker.ts'
import { type ApiBundle, apiSetup } from './api-helpers.ts'
import { waitFor } from './helpers.ts'

const Q = 'default'
let b: ApiBundle
let w: Worker
beforeEach(async () => {
  b = await apiSetup()
  w = b.worker()
  await w.start()
})
afterEach(() => b.cleanup())

/** `n` jobs that always fail, dead-lettered (max_retries 0); their ids. */
async function deadLetter(n: number): Promise<string[]> {
  const res = await b.queue.addBulk(
    Array.from({ length: n }, () => ({ task_type: 'fail', payload: { message: 'down' }, max_retries: 0 })),
  )
  const ids = res.map((r) => r.job.id)
  await waitFor(async () => (await attempts(ids)).every((a) => a.state === 'failed'), {
    what: 'dead-lettered',
  })
  return ids
}

async function attempts(ids: string[]): Promise<Array<{ state: string; attempts: number }>> {
  return Promise.all(
    ids.map(async (id) => {
      const j = await b.queue.store.getJob(Q, id)
      return { state: j?.state ?? 'gone', attempts: j?.attempts ?? -1 }
    }),
  )
}

/** Waits until every job ran once more than `before` and is back in the DLQ. */
async function failedAgain(ids: string[], before: number[]): Promise<number[]> {
  const now = await waitFor(
    async () => {
      const a = await attempts(ids)
      return a.every((x, i) => x.state === 'failed' && x.attempts > before[i]!) ? a : null
    },
    { what: 'requeued jobs failed again' },
  )
  return now.map((x) => x.attempts)
}

/**
 * Makes every requeue call wait until the jobs it requeued have failed again (the worker runs
 * them at once): a redrive that is still walking then meets their new DLQ entries for sure.
 */
function refailDuringRedrive(queue: Queue, after?: (ids: string[]) => void): () => void {
  const store = queue.store
  const requeue = store.requeue.bind(store)
  store.requeue = async (q, ids) => {
    const before = (await attempts(ids)).map((x) => x.attempts)
    const res = await requeue(q, ids)
    await failedAgain(ids, before)
    after?.(ids)
    return res
  }
  return () => {
    store.requeue = requeue
  }
}

/** The redrive before the fix: always the newest matching page ("requeued jobs leave the DLQ"). */
async function newestPageRedrive(queue: Queue, max: number): Promise<number> {
  let done = 0
  while (done < max) {
    const page = await queue.listDlq({ limit: Math.min(100, max - done) })
    if (!page.items.length) break
    done += (
      await queue.store.requeue(
        Q,
        page.items.map((j) => j.id),
      )
    ).filter((r) => r === 'queued').length
  }
  return done
}

function runHandler(payload: DlqRetryPayload, signal = new AbortController().signal) {
  const ctx = { signal, attempt: 1, workerId: 'test' } as JobContext
  return dlqRetryHandler(b.queue)({ payload } as Job, ctx) as Promise<{ requeued: number }>
}

describe('DLQ redrive', () => {
  it('POST /dlq/retry without max requeues each dead-lettered job exactly once (6 rounds, rates 100 000 and 100)', async () => {
    const ids = await deadLetter(3)
    let before = (await attempts(ids)).map((x) => x.attempts)
    for (let round = 0; round < 6; round++) {
      const rate = round % 2 ? 100 : 100_000
      const top = (await b.redis.xrevrange(b.queue.store.keys.dlq(Q), '+', '-', 'COUNT', 1))[0]![0]
      const r = await b.app.inject({ method: 'POST', url: '/dlq/retry', payload: { rate_per_sec: rate } })
      expect(r.statusCode).toBe(202)
      const job = r.json().job
      expect(job.payload.bounds).toEqual({ [Q]: top })
      const done = await waitFor(async () => {
        const j = await b.queue.getJob(job.id)
        return j?.state === 'completed' ? j : null
      })
      expect(done.result).toEqual({ requeued: 3 })
      const now = await failedAgain(ids, before)
      expect(now).toEqual(before.map((a) => a + 1))
      before = now
    }
  })

  it('walks with a cursor: jobs that fail again while it runs are not touched again (120 jobs, pages of 100)', async () => {
    const ids = await deadLetter(120)
    const before = (await attempts(ids)).map((x) => x.attempts)
    const restore = refailDuringRedrive(b.queue)
    try {
      expect(await b.queue.retryDlqMany({}, { ratePerSec: 100_000 })).toBe(120)
    } finally {
      restore()
    }
    expect((await attempts(ids)).map((x) => x.attempts)).toEqual(before.map((a) => a + 1))
    expect(await b.redis.xlen(b.queue.store.keys.dlq(Q))).toBe(120)
  })

  it('negative control: the old newest-page walk requeues the jobs that failed again', async () => {
    const ids = await deadLetter(3)
    const before = (await attempts(ids)).map((x) => x.attempts)
    const restore = refailDuringRedrive(b.queue)
    try {
      expect(await newestPageRedrive(b.queue, 9)).toBe(9)
    } finally {
      restore()
    }
    expect((await attempts(ids)).map((x) => x.attempts)).toEqual(before.map((a) => a + 3))
  })

  it('a redrive run again with the same payload (crash, reclaim) skips what the first run requeued', async () => {
    const ids = await deadLetter(120)
    const before = (await attempts(ids)).map((x) => x.attempts)
    const payload: DlqRetryPayload = { filter: {}, rate_per_sec: 100_000, bounds: await b.queue.dlqBounds() }
    // The first run dies after its first page of 100 (its requeued jobs fail again meanwhile).
    const crash = new AbortController()
    const restore = refailDuringRedrive(b.queue, () => crash.abort())
    try {
      expect(await runHandler(payload, crash.signal)).toEqual({ requeued: 100 })
    } finally {
      restore()
    }
    expect(await runHandler(payload)).toEqual({ requeued: 20 })
    await failedAgain(ids, before)
    expect(await runHandler(payload)).toEqual({ requeued: 0 })
    expect((await attempts(ids)).map((x) => x.attempts)).toEqual(before.map((a) => a + 1))
  })

  it('negative control: a resumed run that takes fresh bounds requeues the first run’s jobs again', async () => {
    const ids = await deadLetter(120)
    const before = (await attempts(ids)).map((x) => x.attempts)
    const payload: DlqRetryPayload = { filter: {}, rate_per_sec: 100_000 }
    const crash = new AbortController()
    const restore = refailDuringRedrive(b.queue, () => crash.abort())
    try {
      expect(await runHandler(payload, crash.signal)).toEqual({ requeued: 100 })
    } finally {
      restore()
    }
    expect(await runHandler(payload)).toEqual({ requeued: 120 })
    // 100 jobs ran twice more, 20 once.
    const runs = await waitFor(async () => {
      const a = await attempts(ids)
      const extra = a.map((x, i) => x.attempts - before[i]!)
      return a.every((x) => x.state === 'failed') && extra.reduce((s, n) => s + n, 0) === 220 ? extra : null
    })
    expect(runs.filter((n) => n === 2)).toHaveLength(100)
  })

  it('rejects bounds that are not queue → entry id', async () => {
    await expect(b.queue.retryDlqMany({}, { bounds: { [Q]: 'x' } })).rejects.toMatchObject({
      code: 'VALIDATION',
    })
    await expect(b.queue.retryDlqMany({}, { bounds: { 'a b': '1-0' } })).rejects.toMatchObject({
      code: 'VALIDATION',
    })
  })
})
