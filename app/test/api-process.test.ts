/** `dtq api` as a process: SIGTERM drains (not ready first, still serving), then exits. */
import { spawn } from 'node:child_process'
import { afterEach, describe, expect, it } from 'vitest'
import { redisTarget } from '../src/redis/connection.ts'
import { freePort } from '../src/redis/local-server.ts'
import { type Bundle, setup, targetEnv, waitFor } from './helpers.ts'
import { CLI } from './processes.ts'

let b: Bundle | undefined
afterEach(async () => {
  // Once per bundle: a test that makes none must not clean the previous test's again.
  await b?.cleanup()
  b = undefined
})

describe('dtq api', () => {
  it('on SIGTERM reports not ready, keeps serving for the drain delay, then exits 0', async () => {
    const bundle = await setup()
    b = bundle
    const port = await freePort()
    const child = spawn(process.execPath, [CLI, 'api', '--port', String(port)], {
      env: {
        ...process.env,
        ...targetEnv(redisTarget(bundle.config)),
        KEY_PREFIX: bundle.prefix,
        LOG_LEVEL: 'warn',
        API_DRAIN_DELAY_MS: '1500',
      },
      stdio: 'ignore',
    })
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
    const url = `http://127.0.0.1:${port}`
    await waitFor(async () => (await fetch(`${url}/health/ready`)).status === 200, { timeoutMs: 20_000 })
    const t0 = Date.now()
    child.kill('SIGTERM')
    await waitFor(async () => (await fetch(`${url}/health/ready`)).status === 503, { timeoutMs: 1000 })
    // Still serving while the load balancer notices.
    const r = await fetch(`${url}/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ task_type: 'echo' }),
    })
    expect(r.status).toBe(201)
    expect(await exited).toBe(0)
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1400)
    await expect(fetch(`${url}/health/live`)).rejects.toThrow()
  })

  it('REDIS_DURABILITY=enforce: refuses a Redis without AOF at start, and one first reached after start', async () => {
    // A redis-server of our own without AOF (the test servers all run with it).
    const redisPort = await freePort()
    const spawnRedis = () =>
      spawn(
        'redis-server',
        ['--port', String(redisPort), '--bind', '127.0.0.1', '--appendonly', 'no', '--save', ''],
        {
          stdio: 'ignore',
        },
      )
    const apiPort = await freePort()
    const api = () => {
      const child = spawn(process.execPath, [CLI, 'api', '--port', String(apiPort)], {
        env: {
          ...process.env,
          REDIS_URL: `redis://127.0.0.1:${redisPort}`,
          REDIS_DURABILITY: 'enforce',
          LOG_LEVEL: 'warn',
          API_DRAIN_DELAY_MS: '0',
        },
        stdio: ['ignore', 'ignore', 'pipe'],
      })
      let err = ''
      child.stderr?.on('data', (d) => {
        err += d
      })
      const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)))
      return { child, exited, err: () => err }
    }
    let redis = spawnRedis()
    try {
      await waitFor(async () => {
        const r = await fetch(`http://127.0.0.1:${redisPort}`).catch((e: Error) => e)
        return r instanceof Error && !/ECONNREFUSED/.test(String(r.cause)) ? 1 : null
      })
      // At start.
      const first = api()
      expect(await first.exited).not.toBe(0)
      expect(first.err()).toMatch(/AOF is off/)
      // Redis away at start (the API starts, not ready), then reached: refused then.
      redis.kill('SIGKILL')
      await new Promise((r) => redis.once('exit', r))
      const second = api()
      // Listening (past its 3 s wait for Redis at start), not ready.
      await waitFor(
        async () => (await fetch(`http://127.0.0.1:${apiPort}/health/live`).catch(() => null))?.ok,
        {
          timeoutMs: 20_000,
        },
      )
      expect(second.child.exitCode).toBeNull()
      redis = spawnRedis()
      expect(await second.exited).toBe(1)
      expect(second.err()).toMatch(/AOF is off/)
    } finally {
      redis.kill('SIGKILL')
    }
  }, 60_000)

  it('refuses to start in production without tokens', async () => {
    b = await setup()
    const child = spawn(process.execPath, [CLI, 'api', '--port', '0'], {
      env: { ...process.env, ...targetEnv(redisTarget(b.config)), ENVIRONMENT: 'production', API_TOKENS: '' },
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    let err = ''
    child.stderr?.on('data', (d) => {
      err += d
    })
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)))
    expect(code).toBe(2)
    expect(err).toMatch(/API_TOKENS is empty with ENVIRONMENT=production/)
  })
})
