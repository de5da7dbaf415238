/** `dtq enqueue` with dedup and a start deadline, as a user runs it (ADR 0021); bad flags write nothing. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type Bundle, setup, targetEnv, testTarget } from './helpers.ts'
import { runCli } from './processes.ts'

let b: Bundle
let env: Record<string, string>
beforeEach(async () => {
  b = await setup()
  env = { ...targetEnv(testTarget()), KEY_PREFIX: b.prefix, REDIS_DURABILITY: 'off' }
})
afterEach(() => b.cleanup())

describe('dtq enqueue with flow control', () => {
  it('--dedup answers the first job; --expires-in-ms sets the deadline', async () => {
    const args = [
      'enqueue',
      'echo',
      '--queue',
      'cq',
      '--payload',
      '{"a":1}',
      '--dedup',
      'throttle',
      '--dedup-ttl-ms',
      '60000',
    ]
    const first = await runCli(env, args)
    expect(first).toMatch(/^created (\d+) \(queued, queue cq\)/)
    const id = /^created (\d+)/.exec(first)![1]
    expect(await runCli(env, args)).toBe(`deduplicated ${id} (queued, queue cq)\n`)
    const withDeadline = JSON.parse(
      await runCli(env, [
        'enqueue',
        'echo',
        '--queue',
        'cq',
        '--expires-in-ms',
        '60000',
        '--dedup',
        'unique',
        '--dedup-key',
        'k',
        '--json',
      ]),
    )
    expect(withDeadline.created).toBe(true)
    expect(withDeadline.job.start_by).toBeGreaterThan(Date.now())
    expect(withDeadline.job.dedup).toMatchObject({ mode: 'unique', ttl_ms: 0 })
  })

  it('refuses bad flags, writing nothing', async () => {
    const before = await b.keys()
    for (const bad of [
      ['--dedup', 'sometimes', '--dedup-ttl-ms', '5'],
      ['--dedup-key', 'k'],
      ['--start-by', 'yesterday'],
      ['--expires-in-ms', '0'],
    ]) {
      await expect(runCli(env, ['enqueue', 'echo', '--queue', 'cq', ...bad])).rejects.toThrow(
        /dedup|start_by|expires_in_ms/,
      )
    }
    expect(await b.keys()).toEqual(before)
  })
})
