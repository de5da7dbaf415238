/** `dtq schedules …` as a user runs it: set, ls, get, trigger, pause, resume, rm, and a refused set. */
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

describe('dtq schedules', () => {
  it('set, ls, get, trigger, pause, resume, rm', async () => {
    const set = JSON.parse(
      await runCli(env, [
        'schedules',
        'set',
        'nightly',
        '--cron',
        '0 30 2 * * *',
        '--tz',
        'Europe/Berlin',
        '--task-type',
        'echo',
        '--queue',
        'cliq',
        '--payload',
        '{"a":1}',
        '--overlap',
        'skip',
      ]),
    )
    expect(set).toMatchObject({ name: 'nightly', queue: 'cliq', overlap: 'skip', paused: false })
    expect(set.next_runs).toHaveLength(5)
    expect(await runCli(env, ['schedules', 'ls'])).toMatch(
      /^nightly\s+active\s+0 30 2 \* \* \* Europe\/Berlin\s+cliq/,
    )
    const { job_id } = JSON.parse(await runCli(env, ['schedules', 'trigger', 'nightly']))
    expect(await b.queue.getJob(job_id, 'cliq')).toMatchObject({ schedule: 'nightly', payload: { a: 1 } })
    expect(JSON.parse(await runCli(env, ['schedules', 'pause', 'nightly'])).paused).toBe(true)
    expect(JSON.parse(await runCli(env, ['schedules', 'resume', 'nightly'])).paused).toBe(false)
    expect(JSON.parse(await runCli(env, ['schedules', 'get', 'nightly'])).history[0]).toMatchObject({
      job_id,
      outcome: 'triggered',
    })
    await runCli(env, ['schedules', 'rm', 'nightly'])
    expect(await runCli(env, ['schedules', 'ls'])).toBe('no schedules\n')
    const bad = await runCli(env, ['schedules', 'set', 'x', '--cron', 'often', '--task-type', 'echo']).catch(
      (e: { stderr: string }) => e.stderr,
    )
    expect(bad).toMatch(/invalid schedule: cron/)
  })
})
