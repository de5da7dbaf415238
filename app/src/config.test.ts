import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { ConfigError, checkConfig, loadConfig, SETTINGS } from './config.ts'
import { describeTarget, redisTarget } from './redis/connection.ts'

describe('loadConfig', () => {
  it('applies every default', () => {
    const c = loadConfig({})
    expect(c.redisUrl).toBe('redis://127.0.0.1:6379')
    expect(c.keyPrefix).toBe('dtq')
    expect(c.maxRetries).toBe(3)
    expect(c.workerQueues).toEqual(['default'])
    expect(c.backoffMultiplier).toBe(2)
    expect(Object.isFrozen(c)).toBe(true)
  })

  it('parses values and lists', () => {
    const c = loadConfig({
      WORKER_QUEUES: 'a, b,c',
      WORKER_CONCURRENCY: '7',
      BACKOFF_MULTIPLIER: '1.5',
      ENVIRONMENT: 'production',
    })
    expect(c.workerQueues).toEqual(['a', 'b', 'c'])
    expect(c.workerConcurrency).toBe(7)
    expect(c.backoffMultiplier).toBe(1.5)
    expect(c.environment).toBe('production')
  })

  it('names every bad variable in one error', () => {
    let err: unknown
    try {
      loadConfig({
        PORT: 'eighty',
        MAX_RETRIES: '-1',
        REDIS_URL: 'http://x',
        WORKER_QUEUES: 'ok,{bad}',
        ENVIRONMENT: 'prod',
        KEY_PREFIX: 'a:b',
      })
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(ConfigError)
    const problems = (err as ConfigError).problems.join('\n')
    for (const name of ['PORT', 'MAX_RETRIES', 'REDIS_URL', 'WORKER_QUEUES', 'ENVIRONMENT', 'KEY_PREFIX']) {
      expect(problems).toContain(name)
    }
  })

  it('checks API tokens without echoing them', () => {
    expect(loadConfig({ API_TOKENS: 'abcdefghijklmnop:read, qrstuvwxyz0123456:admin' }).apiTokens).toContain(
      ':admin',
    )
    for (const bad of ['tinytok:read', 'zzzzzzzzzzzzzzzzzz:root', 'qqqqqqqqqqqqqqqqqq', 'xq9:yq9:zq9']) {
      let msg = ''
      try {
        loadConfig({ API_TOKENS: bad })
      } catch (e) {
        msg = (e as Error).message
      }
      expect(msg).toMatch(/API_TOKENS/)
      expect(msg).not.toContain(bad.split(':')[0])
    }
  })

  it('takes a Cluster or Sentinel target, not both, and never echoes a password', () => {
    const c = loadConfig({ REDIS_CLUSTER_NODES: 'rediss://:pw@a.example:6379,b.example:7000' })
    expect(c.redisClusterNodes).toEqual(['rediss://:pw@a.example:6379', 'b.example:7000'])
    expect(redisTarget(c)).toEqual({ kind: 'cluster', nodes: c.redisClusterNodes })
    expect(describeTarget(redisTarget(c))).not.toContain('pw')
    const s = loadConfig({ REDIS_SENTINELS: 's1:26379,s2:26379', REDIS_SENTINEL_MASTER: 'primary' })
    expect(redisTarget(s)).toMatchObject({
      kind: 'sentinel',
      sentinels: ['s1:26379', 's2:26379'],
      master: 'primary',
    })
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: 'a:1', REDIS_SENTINELS: 'b:2' })).toThrow(
      /REDIS_CLUSTER_NODES and REDIS_SENTINELS are both set/,
    )
    for (const bad of ['redis://:secret-pw@host:notaport', 'ftp://:secret-pw@host:1', 'host:99999']) {
      let msg = ''
      try {
        loadConfig({ REDIS_CLUSTER_NODES: bad })
      } catch (e) {
        msg = (e as Error).message
      }
      expect(msg, bad).toMatch(/REDIS_CLUSTER_NODES/)
      expect(msg).not.toContain('secret-pw')
    }
  })

  it('keeps a replica WAIT well inside the command timeout', () => {
    expect(loadConfig({ ENQUEUE_WAIT_REPLICAS: '1' }).enqueueWaitTimeoutMs).toBe(1000)
    expect(() => loadConfig({ ENQUEUE_WAIT_REPLICAS: '1', ENQUEUE_WAIT_TIMEOUT_MS: '1500' })).toThrow(
      /ENQUEUE_WAIT_TIMEOUT_MS \(1500\) must be at most half of REDIS_COMMAND_TIMEOUT_MS \(2000\)/,
    )
    expect(loadConfig({ ENQUEUE_WAIT_TIMEOUT_MS: '1500' }).enqueueWaitReplicas).toBe(0) // off: no rule
    expect(() => loadConfig({ ENQUEUE_WAIT_REPLICAS: '17' })).toThrow(/ENQUEUE_WAIT_REPLICAS/)
  })

  it('refuses DTQ_UNSAFE (a negative control switching safety off) with ENVIRONMENT=production', () => {
    const prod = { ENVIRONMENT: 'production' }
    expect(() => loadConfig({ ...prod, DTQ_UNSAFE: 'no-fencing' })).toThrow(
      /DTQ_UNSAFE=no-fencing switches safety mechanisms off for tests; it is refused with ENVIRONMENT=production/,
    )
    expect(loadConfig({ ...prod, DTQ_UNSAFE: 'none' }).unsafe).toEqual(['none'])
    expect(loadConfig({ DTQ_UNSAFE: 'no-fencing' }).unsafe).toEqual(['no-fencing']) // tests
  })

  it('rejects a lease that cannot renew inside the claim window', () => {
    expect(() => loadConfig({ LEASE_MS: '20000', CLAIM_IDLE_MS: '30000' })).toThrow(/LEASE_MS/)
  })

  it('checks overrides from code by the same rules, naming their keys', () => {
    expect(loadConfig({}, { leaseMs: 100, claimIdleMs: 1000 }).leaseMs).toBe(100)
    const problems = (fn: () => unknown) => {
      try {
        fn()
      } catch (e) {
        return (e as ConfigError).problems
      }
      return []
    }
    expect(problems(() => loadConfig({}, { leaseMs: Number.NaN }))).toEqual([
      expect.stringMatching(/^leaseMs=/),
    ])
    expect(problems(() => loadConfig({}, { leaseMs: 20 }))).toEqual([
      expect.stringMatching(/leaseMs.*below 50/),
    ])
    expect(problems(() => loadConfig({}, { workerQueues: ['ok', 'a{b}'] }))).toEqual([
      expect.stringMatching(/workerQueues.*a\{b\}/),
    ])
    expect(problems(() => loadConfig({}, { workerQueues: [] }))).toEqual([
      expect.stringMatching(/workerQueues.*empty/),
    ])
    expect(problems(() => loadConfig({}, { port: '8000' as unknown as number }))).toEqual([
      'port must be a number',
    ])
    expect(problems(() => loadConfig({}, { nope: 1 } as never))).toEqual(['nope is not a setting'])
    // The rules between settings name the override's key, the environment's variable otherwise.
    expect(problems(() => loadConfig({ CLAIM_IDLE_MS: '1000' }, { leaseMs: 900 }))).toEqual([
      expect.stringMatching(/^leaseMs \(900\) must be at most half of CLAIM_IDLE_MS/),
    ])
  })

  it('a Worker built from code is checked by the same rules (one set of bounds)', () => {
    const cfg = loadConfig({ LEASE_MS: '100', CLAIM_IDLE_MS: '1000' })
    expect(checkConfig({ ...cfg, leaseMs: 20 })).toEqual([expect.stringMatching(/leaseMs.*below 50/)])
    expect(checkConfig({ ...cfg, leaseMs: 600 })).toEqual([
      expect.stringMatching(/leaseMs \(600\) must be at most half/),
    ])
    expect(checkConfig(cfg)).toEqual([])
  })

  it('lists every setting in .env.example with its default', () => {
    const example = readFileSync(new URL('../../.env.example', import.meta.url), 'utf8')
    for (const s of SETTINGS)
      expect(example).toMatch(
        new RegExp(`^#? ?${s.env}=${s.default.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}$`, 'm'),
      )
  })
})
