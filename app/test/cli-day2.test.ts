/** Day-2 operations as a user runs them from `dtq` (ADR 0020), and a refused one that writes nothing. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type Bundle, setup, targetEnv, testTarget, waitFor } from './helpers.ts'
import { runCli } from './processes.ts'

const Q = 'cliops'
let b: Bundle
let env: Record<string, string>
beforeEach(async () => {
  b = await setup({ config: { workerQueues: [Q] } })
  env = { ...targetEnv(testTarget()), KEY_PREFIX: b.prefix, REDIS_DURABILITY: 'off' }
})
afterEach(() => b.cleanup())

const add = (opts: Record<string, unknown> = {}) =>
  b.queue.add('work', { n: 1 }, { queue: Q, ...opts }).then((r) => r.job)
const failure = (p: Promise<string>) =>
  p.then(
    () => '',
    (e: { stderr: string }) => e.stderr,
  )

describe('dtq day-2 commands', () => {
  it('promote, priority, edit, rm', async () => {
    const job = await add({ delay_ms: 60_000 })
    expect(await runCli(env, ['priority', job.id, 'high', '--queue', Q])).toBe(`${job.id} priority high\n`)
    const edited = JSON.parse(
      await runCli(env, ['edit', job.id, '--queue', Q, '--payload', '{"n":2}', '--by', 'ops']),
    )
    expect(edited).toMatchObject({ payload: { n: 2 }, edits: { count: 1, by: 'ops' } })
    expect(await runCli(env, ['promote', job.id, '--queue', Q])).toBe(`queued ${job.id}\n`)
    expect((await b.queue.getJob(job.id, Q))!.state).toBe('queued')
    expect(await runCli(env, ['rm', job.id, '--queue', Q])).toBe(`deleted ${job.id} (queued) from ${Q}\n`)
    expect(await b.queue.getJob(job.id, Q)).toBeNull()
    const before = await b.keys()
    expect(await failure(runCli(env, ['edit', 'x', '--queue', Q, '--payload', '{bad']))).toMatch(
      /--payload is not valid JSON/,
    )
    expect(await failure(runCli(env, ['priority', 'x', 'urgent', '--queue', Q]))).toMatch(/priority/)
    expect(await b.keys()).toEqual(before)
  })

  it('queues empty and queues rm', async () => {
    for (let i = 0; i < 5; i++) await add()
    expect(await runCli(env, ['queues', 'empty', Q, '--limit', '2'])).toBe(
      `removed 5, cancelled 0 (flow members) from ${Q}\n`,
    )
    await add()
    await b.queue.store.deliver(Q, 'c1', 1)
    expect(await failure(runCli(env, ['queues', 'rm', Q]))).toMatch(/1 running jobs/)
    expect(await runCli(env, ['queues', 'rm', Q, '--force'])).toMatch(
      new RegExp(`^deleted queue ${Q} \\(\\d+ keys\\)`),
    )
    expect((await b.keys()).filter((k) => k.includes(`{${Q}}`))).toEqual([])
  })

  it('bulk retry by filter, and workers concurrency', async () => {
    const w = b.worker({ workerQueues: [Q], workerConcurrency: 2 })
    w.handle('flaky', () => {
      throw new Error('downstream down')
    })
    await w.start()
    for (let i = 0; i < 3; i++) await b.queue.add('flaky', {}, { queue: Q, max_retries: 0 })
    await waitFor(async () => (await b.queue.stats()).totals.failed === 3)
    w.handle('flaky', () => 'ok')
    expect(
      await runCli(env, ['bulk', 'retry', '--queue', Q, '--error', 'DOWNSTREAM', '--rate', '50']),
    ).toMatch(/^retry by filter at 50\/s: follow job \d+/)
    await waitFor(async () => (await b.queue.stats()).totals.completed === 4) // 3 retried + the bulk job
    expect(await failure(runCli(env, ['bulk', 'retry', '--state', 'queued']))).toMatch(/state must be one of/)
    await runCli(env, ['workers', 'concurrency', w.id, '5'])
    await waitFor(async () => (await b.queue.workers())[0]?.concurrency === 5)
    expect(await failure(runCli(env, ['workers', 'concurrency', w.id, '0']))).toMatch(/concurrency/)
  })
})
