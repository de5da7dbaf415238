/** Bad input to every public function: a clear DtqError (VALIDATION or NOT_FOUND), nothing written. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { DtqError } from '../src/errors.ts'
import { Worker } from '../src/worker/worker.ts'
import { type Bundle, setup, snapshot } from './helpers.ts'

let b: Bundle
beforeEach(async () => {
  b = await setup()
})
afterEach(() => b.cleanup())

/** Jobs queued, scheduled, with a key, running, completed, retrying and dead-lettered; a paused queue. */
async function seedEveryState(b: Bundle): Promise<void> {
  const store = b.queue.store
  const err = { message: 'boom', worker: 'c1', attempt: 1 }
  await b.queue.add('work', { n: 1 }, { priority: 'high' }) // completed
  await b.queue.add('work', { n: 2 }, { priority: 'high' }) // dead-lettered
  await b.queue.add('work', { n: 3 }, { priority: 'high' }) // retrying
  await b.queue.add('work', { n: 4 }, { priority: 'high' }) // running
  const [done, dead, retrying] = (await store.deliver('default', 'c1', 3)).jobs
  await store.complete('default', [{ id: done!.id, epoch: done!.epoch, result: '1' }])
  await store.fail('default', dead!.id, dead!.epoch, 'permanent', err, 0)
  await store.fail('default', retrying!.id, retrying!.epoch, 'retry', err, 60_000)
  const [running] = (await store.deliver('default', 'c1', 1)).jobs
  const keyed = (await b.queue.add('work', { n: 5 }, { idempotency_key: 'k-1' })).job
  const later = (await b.queue.add('work', { n: 6 }, { delay_ms: 60_000 })).job
  await b.queue.add('work', { n: 7 }, { queue: 'other' })
  await b.queue.pauseQueue('other')
  const states = await Promise.all(
    [done, dead, retrying, running, keyed, later].map(async (j) => (await b.queue.getJob(j!.id))?.state),
  )
  expect(states).toEqual(['completed', 'failed', 'retrying', 'active', 'queued', 'scheduled'])
}

describe('bad input', () => {
  const cases: Array<[string, (b: Bundle) => Promise<unknown>, string, RegExp]> = [
    ['add: empty task type', (b) => b.queue.add('', {}), 'VALIDATION', /task_type/],
    [
      'add: options not an object',
      (b) => b.queue.addBulk([null as never]),
      'VALIDATION',
      /must be an object/,
    ],
    ['addBulk: not an array', (b) => b.queue.addBulk('x' as never), 'VALIDATION', /array/],
    ['getJob: id with a colon', (b) => b.queue.getJob('a:b'), 'VALIDATION', /id/],
    ['getJob: queue with braces', (b) => b.queue.getJob('a', '{q}'), 'VALIDATION', /queue/],
    ['getJobOrThrow: unknown', (b) => b.queue.getJobOrThrow('nope'), 'NOT_FOUND', /not found/],
    [
      'findByIdempotencyKey: control chars',
      (b) => b.queue.findByIdempotencyKey('a\nb'),
      'VALIDATION',
      /idempotency_key/,
    ],
    ['listJobs: bad status', (b) => b.queue.listJobs({ state: 'done' as never }), 'VALIDATION', /status/],
    ['listJobs: huge limit', (b) => b.queue.listJobs({ limit: 1e6 }), 'VALIDATION', /limit/],
    ['listJobs: odd queue', (b) => b.queue.listJobs({ queue: 'a*' }), 'VALIDATION', /queue/],
    ['cancel: bad id', (b) => b.queue.cancel('x y'), 'VALIDATION', /id/],
    ['cancel: unknown', (b) => b.queue.cancel('unknown'), 'NOT_FOUND', /not found/],
    ['retry: unknown', (b) => b.queue.retry('unknown'), 'NOT_FOUND', /not found/],
    ['listDlq: negative age', (b) => b.queue.listDlq({ older_than_ms: -1 }), 'VALIDATION', /older_than_ms/],
    ['listDlq: bad type', (b) => b.queue.listDlq({ task_type: 'a b' }), 'VALIDATION', /task_type/],
    ['retryDlqMany: zero rate', (b) => b.queue.retryDlqMany({}, { ratePerSec: 0 }), 'VALIDATION', /rate/],
    ['deleteDlq: unknown', (b) => b.queue.deleteDlq('unknown'), 'NOT_FOUND', /not found/],
    ['purgeDlq: NaN days', (b) => b.queue.purgeDlq(Number.NaN), 'VALIDATION', /older_than_days/],
    ['pauseQueue: odd name', (b) => b.queue.pauseQueue('a:b'), 'VALIDATION', /queue/],
    ['resumeQueue: empty', (b) => b.queue.resumeQueue(''), 'VALIDATION', /queue/],
    ['commandWorker: odd id', (b) => b.queue.commandWorker('a:b*', 'pause'), 'VALIDATION', /worker id/],
    ['commandWorker: unknown', (b) => b.queue.commandWorker('nobody', 'pause'), 'NOT_FOUND', /not found/],
  ]

  it.each(cases)('%s', async (_name, call, code, message) => {
    const err = await call(b).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(DtqError)
    expect((err as DtqError).code).toBe(code)
    expect((err as DtqError).message).toMatch(message)
    expect(await b.keys()).toEqual([])
  })

  it.each(cases)(
    '%s, on a Redis holding jobs in every state: every key unchanged (DUMP)',
    async (_name, call, code) => {
      // "Nothing written" on an empty Redis could miss a call that touches what exists.
      await seedEveryState(b)
      const before = await snapshot(b)
      const err = await call(b).catch((e: unknown) => e)
      expect((err as DtqError).code).toBe(code)
      expect(await snapshot(b)).toEqual(before)
    },
  )

  it('Worker refuses bad settings and bad handlers', () => {
    expect(() => new Worker({ ...b.config, workerConcurrency: 0 })).toThrow(/workerConcurrency/)
    expect(() => new Worker({ ...b.config, workerQueues: ['ok', 'a{b}'] })).toThrow(/workerQueues/)
    expect(() => new Worker({ ...b.config, leaseMs: 900, claimIdleMs: 1000 })).toThrow(/leaseMs/)
    const w = new Worker(b.config)
    expect(() => w.handle('bad type', () => 1)).toThrow(/task_type/)
    expect(() => w.handle('ok', 'nope' as never)).toThrow(/handler must be a function/)
  })
})
