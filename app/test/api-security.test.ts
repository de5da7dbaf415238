/**
 * The API's guard rails: roles on every route, production rules, hostile input (exact 4xx,
 * nothing written, no stack, no token in logs), shared rate limiting, admission control,
 * slowloris, and Redis down or black-holed (503 within the command timeout, then recovery).
 */
import { createServer, type Server, Socket } from 'node:net'
import { Writable } from 'node:stream'
import { afterEach, describe, expect, it } from 'vitest'
import { loadConfig } from '../src/config.ts'
import { buildApp } from '../src/http/app.ts'
import { assertApiConfig } from '../src/http/server.ts'
import { Queue } from '../src/queue/queue.ts'
import { createRedis, redisTarget } from '../src/redis/connection.ts'
import { freePort } from '../src/redis/local-server.ts'
import { type ApiBundle, apiSetup, bearer, TOKEN_SETTING, TOKENS } from './api-helpers.ts'
import { testConfig } from './helpers.ts'

const open: Array<{ cleanup(): Promise<void> }> = []
afterEach(async () => {
  for (const b of open.splice(0)) await b.cleanup()
})
async function api(...args: Parameters<typeof apiSetup>): Promise<ApiBundle> {
  const b = await apiSetup(...args)
  open.push(b)
  return b
}

type Role = 'public' | 'read' | 'write' | 'admin'
const ROUTES: Array<[string, string, Role, unknown?]> = [
  ['GET', '/health/live', 'public'],
  ['GET', '/health/ready', 'public'],
  ['GET', '/openapi.json', 'public'],
  ['GET', '/jobs', 'read'],
  ['GET', '/jobs/some-id', 'read'],
  ['GET', '/dlq', 'read'],
  ['GET', '/queues', 'read'],
  ['GET', '/workers', 'read'],
  ['GET', '/stats', 'read'],
  ['GET', '/metrics', 'read'],
  ['GET', '/auth/whoami', 'read'],
  ['POST', '/jobs', 'write', { task_type: 'echo' }],
  ['POST', '/jobs/batch', 'write', { jobs: [{ task_type: 'echo' }] }],
  ['POST', '/jobs/some-id/cancel', 'write'],
  ['POST', '/jobs/some-id/retry', 'write'],
  ['POST', '/dlq/some-id/retry', 'write'],
  ['POST', '/dlq/retry', 'write', {}],
  ['DELETE', '/dlq/some-id', 'admin'],
  ['DELETE', '/dlq?older_than_days=30', 'admin'],
  ['POST', '/queues/default/pause', 'admin'],
  ['POST', '/queues/default/resume', 'admin'],
  ['POST', '/workers/some-worker/pause', 'admin'],
  ['POST', '/dev/generate-jobs', 'admin', { count: 1 }],
  ['GET', '/search', 'read'],
  ['GET', '/search/export', 'read'],
  ['GET', '/search/presets', 'read'],
  ['POST', '/search/presets', 'write', { name: 'x', filters: {} }],
  ['DELETE', '/search/presets/x', 'write'],
]
const RANK = { public: 0, read: 1, write: 2, admin: 3 }

describe('roles', () => {
  it('enforces the role of every route: 401 without a valid token, 403 below the role', async () => {
    const b = await api({ apiTokens: TOKEN_SETTING })
    for (const [method, url, needed, payload] of ROUTES) {
      const call = (headers: Record<string, string>) =>
        b.app.inject({ method: method as 'GET', url, payload: payload as never, headers })
      const anonymous = await call({})
      const forged = await call({ authorization: 'Bearer not-a-real-token-000000' })
      if (needed === 'public') {
        expect(anonymous.statusCode, `${method} ${url}`).toBeLessThan(400)
        continue
      }
      expect(anonymous.statusCode, `${method} ${url} anonymous`).toBe(401)
      expect(anonymous.json()).toMatchObject({ error: 'Unauthorized', code: 'UNAUTHORIZED' })
      expect(forged.statusCode, `${method} ${url} forged`).toBe(401)
      for (const role of ['read', 'write', 'admin'] as const) {
        const r = await call(bearer(role))
        if (RANK[role] < RANK[needed]) {
          expect(r.statusCode, `${method} ${url} as ${role}`).toBe(403)
          expect(r.json().code).toBe('FORBIDDEN')
        } else expect([401, 403], `${method} ${url} as ${role}`).not.toContain(r.statusCode)
      }
    }
    // Nothing a rejected request could have written: only the allowed ones wrote.
    const who = await b.app.inject({ method: 'GET', url: '/auth/whoami', headers: bearer('write') })
    expect(who.json()).toEqual({ role: 'write', auth_required: true, environment: 'development' })
  })

  it('rejects a rejected write without writing', async () => {
    const b = await api({ apiTokens: TOKEN_SETTING })
    const r = await b.app.inject({
      method: 'POST',
      url: '/jobs',
      payload: { task_type: 'echo' },
      headers: bearer('read'),
    })
    expect(r.statusCode).toBe(403)
    expect(await b.keys()).toEqual([])
  })

  it('accepts the token in the query only on /events', async () => {
    const b = await api({ apiTokens: TOKEN_SETTING })
    const r = await b.app.inject({ method: 'GET', url: `/jobs?access_token=${TOKENS.admin}` })
    expect(r.statusCode).toBe(401) // not a credential outside /events
    const r2 = await b.app.inject({ method: 'GET', url: '/jobs' })
    expect(r2.statusCode).toBe(401)
  })
})

describe('production', () => {
  it('does not register /dev/generate-jobs at all', async () => {
    const dev = await api()
    expect(dev.app.hasRoute({ method: 'POST', url: '/dev/generate-jobs' })).toBe(true)
    const prod = await api({ environment: 'production', apiTokens: TOKEN_SETTING })
    expect(prod.app.hasRoute({ method: 'POST', url: '/dev/generate-jobs' })).toBe(false)
    expect(prod.app.printRoutes()).not.toContain('generate-jobs')
    const r = await prod.app.inject({
      method: 'POST',
      url: '/dev/generate-jobs',
      payload: { count: 1 },
      headers: bearer('admin'),
    })
    expect(r.statusCode).toBe(404)
  })

  it('refuses to start without tokens unless auth is disabled on purpose', () => {
    const base = testConfig('p')
    expect(() => assertApiConfig({ ...base, environment: 'production', apiTokens: '' })).toThrow(/API_TOKENS/)
    expect(() =>
      assertApiConfig({ ...base, environment: 'production', apiTokens: '', authDisabled: true }),
    ).not.toThrow()
    expect(() =>
      assertApiConfig({ ...base, environment: 'production', apiTokens: TOKEN_SETTING }),
    ).not.toThrow()
  })
})

describe('hostile input', () => {
  it.each([
    ['wrong content type', { 'content-type': 'text/plain' }, 'task_type=echo', 415, 'UNSUPPORTED_MEDIA_TYPE'],
    [
      'form encoding',
      { 'content-type': 'application/x-www-form-urlencoded' },
      'a=b',
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    ],
    ['invalid JSON', { 'content-type': 'application/json' }, '{"task_type":', 400, 'VALIDATION'],
    ['empty JSON body', { 'content-type': 'application/json' }, '', 400, 'VALIDATION'],
    [
      '__proto__ key',
      { 'content-type': 'application/json' },
      '{"task_type":"echo","payload":{"__proto__":{"x":1}}}',
      400,
      'VALIDATION',
    ],
    [
      'constructor.prototype',
      { 'content-type': 'application/json' },
      '{"task_type":"echo","payload":{"constructor":{"prototype":{"x":1}}}}',
      400,
      'VALIDATION',
    ],
    [
      'deep nesting',
      { 'content-type': 'application/json' },
      `{"task_type":"echo","payload":${'['.repeat(100_000)}${']'.repeat(100_000)}}`,
      400,
      'VALIDATION',
    ],
    [
      'nesting hidden in strings is fine',
      { 'content-type': 'application/json' },
      `{"task_type":"echo","payload":"${'['.repeat(1000)}"}`,
      201,
      undefined,
    ],
  ])('%s → %i', async (_name, headers, payload, status, code) => {
    const b = await api()
    const r = await b.app.inject({ method: 'POST', url: '/jobs', headers, payload })
    expect(r.statusCode).toBe(status)
    if (code) {
      expect(r.json().code).toBe(code)
      expect(r.body).not.toMatch(/at \w+ \(|node_modules|\.ts:\d+/) // no stack
      expect(await b.keys()).toEqual([])
    }
  })

  it('413 for a body above MAX_BODY_BYTES, 400 for a payload above MAX_PAYLOAD_BYTES', async () => {
    const b = await api({ maxBodyBytes: 10_000, maxPayloadBytes: 1000 })
    const big = await b.app.inject({
      method: 'POST',
      url: '/jobs',
      payload: { task_type: 'echo', payload: 'x'.repeat(20_000) },
    })
    expect(big.statusCode).toBe(413)
    expect(big.json().code).toBe('PAYLOAD_TOO_LARGE')
    const mid = await b.app.inject({
      method: 'POST',
      url: '/jobs',
      payload: { task_type: 'echo', payload: 'x'.repeat(5000) },
    })
    expect(mid.statusCode).toBe(400)
    expect(mid.json().message).toMatch(/above the limit of 1000/)
    expect(await b.keys()).toEqual([])
  })

  it('never logs a token (header or query)', async () => {
    let logged = ''
    const sink = new Writable({
      write(chunk, _enc, cb) {
        logged += chunk
        cb()
      },
    })
    const b = await api({ apiTokens: TOKEN_SETTING }, { logger: { level: 'trace', stream: sink } })
    await b.app.inject({ method: 'GET', url: '/jobs', headers: bearer('admin') })
    await b.app.inject({ method: 'GET', url: `/jobs?access_token=${TOKENS.read}` })
    await b.app.inject({ method: 'GET', url: '/jobs', headers: { authorization: `Bearer ${TOKENS.write}x` } })
    expect(logged.length).toBeGreaterThan(100)
    for (const t of Object.values(TOKENS)) expect(logged).not.toContain(t)
  })

  it('drops a slowloris client that never finishes its request', async () => {
    const b = await api({}, { requestTimeoutMs: 500 })
    const port = await freePort()
    await b.app.listen({ port, host: '127.0.0.1' })
    const s = new Socket()
    const closed = new Promise<string>((resolve) => {
      let data = ''
      s.on('data', (d) => {
        data += d
      })
      s.on('close', () => resolve(data))
    })
    s.connect(port, '127.0.0.1', () =>
      s.write(
        'POST /jobs HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"task',
      ),
    )
    const t0 = Date.now()
    const reply = await closed
    expect(Date.now() - t0).toBeLessThan(5000)
    expect(reply).toMatch(/^HTTP\/1\.1 408/)
    expect(await b.keys()).toEqual([])
  })
})

describe('limits', () => {
  it('rate-limits per client across instances (shared Redis store), with Retry-After', async () => {
    const a = await api({ rateLimitPerMin: 5 })
    const blocking = createRedis({ target: redisTarget(a.config), commandTimeoutMs: 3000, blocking: true })
    const second = await buildApp({ config: a.config, queue: a.queue, blocking })
    try {
      const codes: number[] = []
      for (let i = 0; i < 6; i++) {
        const app = i % 2 ? second : a.app
        codes.push((await app.inject({ method: 'GET', url: '/queues' })).statusCode)
      }
      expect(codes).toEqual([200, 200, 200, 200, 200, 429])
      const r = await a.app.inject({ method: 'GET', url: '/queues' })
      expect(r.json().code).toBe('RATE_LIMITED')
      expect(Number(r.headers['retry-after'])).toBeGreaterThan(0)
      expect((await a.app.inject({ method: 'GET', url: '/health/live' })).statusCode).toBe(200)
      for (const k of await a.keys()) expect(k.startsWith(`${a.prefix}:`)).toBe(true)
    } finally {
      await second.close()
      blocking.disconnect()
    }
  })

  it('counts each client behind a trusted proxy by its X-Forwarded-For address', async () => {
    const b = await api({ rateLimitPerMin: 2, trustProxy: '127.0.0.1' })
    const call = (ip: string) =>
      b.app.inject({ method: 'GET', url: '/queues', headers: { 'x-forwarded-for': ip } })
    expect([
      (await call('10.0.0.1')).statusCode,
      (await call('10.0.0.1')).statusCode,
      (await call('10.0.0.1')).statusCode,
    ]).toEqual([200, 200, 429])
    expect((await call('10.0.0.2')).statusCode).toBe(200)
    // Without trust, the header is ignored: everyone is the proxy.
    const c = await api({ rateLimitPerMin: 2 })
    const codes = []
    for (const ip of ['10.0.0.1', '10.0.0.2', '10.0.0.3']) {
      codes.push(
        (await c.app.inject({ method: 'GET', url: '/queues', headers: { 'x-forwarded-for': ip } }))
          .statusCode,
      )
    }
    expect(codes).toEqual([200, 200, 429])
  })

  it('allows CORS for FRONTEND_ORIGIN only and sends security headers', async () => {
    const b = await api({ frontendOrigin: 'https://console.example.com' })
    const pre = (origin: string) =>
      b.app.inject({
        method: 'OPTIONS',
        url: '/jobs',
        headers: {
          origin,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'authorization,content-type',
        },
      })
    const ok = await pre('https://console.example.com')
    expect(ok.headers['access-control-allow-origin']).toBe('https://console.example.com')
    expect(String(ok.headers['access-control-allow-headers'])).toMatch(/Authorization/i)
    const evil = await pre('https://evil.example.com')
    expect(evil.headers['access-control-allow-origin']).toBeUndefined()
    const r = await b.app.inject({ method: 'GET', url: '/health/live' })
    expect(r.headers).toMatchObject({
      'cross-origin-opener-policy': 'same-origin',
      'cross-origin-resource-policy': 'same-site',
      'origin-agent-cluster': '?1',
      'referrer-policy': 'no-referrer',
      'strict-transport-security': 'max-age=31536000; includeSubDomains',
      'x-content-type-options': 'nosniff',
      'x-dns-prefetch-control': 'off',
      'x-download-options': 'noopen',
      'x-frame-options': 'SAMEORIGIN',
      'x-permitted-cross-domain-policies': 'none',
      'x-xss-protection': '0',
    })
    expect(r.headers['x-powered-by']).toBeUndefined()
  })

  it('answers 429 with Retry-After while a queue is over its depth limit', async () => {
    const b = await api({ queueMaxDepth: 2 })
    const codes = []
    for (let i = 0; i < 3; i++) {
      const r = await b.app.inject({
        method: 'POST',
        url: '/jobs',
        payload: { task_type: 'echo', queue: `q${i < 3 ? '' : i}` },
      })
      codes.push(r.statusCode)
      await new Promise((res) => setTimeout(res, 300)) // past the depth cache
      if (r.statusCode === 429) {
        expect(r.headers['retry-after']).toBe('1')
        expect(r.json().code).toBe('QUEUE_FULL')
      }
    }
    expect(codes).toEqual([201, 201, 429])
    expect((await b.queue.stats()).totals.queued).toBe(2)
  })
})

describe('Redis down', () => {
  async function timed(
    app: Awaited<ReturnType<typeof buildApp>>,
    url: string,
    method = 'GET',
    payload?: unknown,
  ) {
    const t0 = Date.now()
    const r = await app.inject({ method: method as 'GET', url, payload: payload as never })
    return { status: r.statusCode, ms: Date.now() - t0, body: r.json() }
  }

  it('answers 503 at once when Redis refuses connections, and recovers when it is back', async () => {
    const port = await freePort()
    const config = loadConfig({
      REDIS_URL: `redis://127.0.0.1:${port}`,
      KEY_PREFIX: 'down',
      LOG_LEVEL: 'silent',
      RATE_LIMIT_PER_MIN: '100',
    })
    const redis = createRedis({ target: redisTarget(config), commandTimeoutMs: config.redisCommandTimeoutMs })
    redis.connect().catch(() => {})
    const blocking = createRedis({ target: redisTarget(config), commandTimeoutMs: 4000, blocking: true })
    const app = await buildApp({ config, queue: new Queue(redis, config), blocking })
    try {
      expect((await timed(app, '/health/live')).status).toBe(200)
      for (const [method, url, payload] of [
        ['GET', '/health/ready'],
        ['POST', '/jobs', { task_type: 'echo' }],
        ['GET', '/jobs'],
        ['GET', '/jobs/x'],
        ['GET', '/stats'],
        ['GET', '/queues'],
        ['POST', '/jobs/x/cancel'],
      ] as const) {
        const r = await timed(app, url, method, payload)
        expect(r.status, `${method} ${url}`).toBe(503)
        expect(r.ms, `${method} ${url}`).toBeLessThan(2500)
      }
      // /metrics still answers (redis_up 0 and the process metrics), so Prometheus can tell
      // Redis down from the API down and its alert can fire (ADR 0024).
      const t0 = Date.now()
      const m = await app.inject({ method: 'GET', url: '/metrics' })
      expect(m.statusCode).toBe(200)
      expect(m.body).toMatch(/^redis_up 0$/m)
      expect(m.body).toMatch(/^process_cpu_user_seconds_total /m)
      expect(m.body).not.toMatch(/^jobs_created_total/m)
      expect(Date.now() - t0).toBeLessThan(2500)
      // Redis comes back on that port: the same app recovers by itself.
      const { startLocalRedis } = await import('../src/redis/local-server.ts')
      const { mkdtempSync } = await import('node:fs')
      const { tmpdir } = await import('node:os')
      const server = await startLocalRedis(mkdtempSync(`${tmpdir()}/dtq-down-`), port)
      try {
        const { waitFor } = await import('./helpers.ts')
        await waitFor(async () => (await timed(app, '/health/ready')).status === 200, { timeoutMs: 10_000 })
        expect((await timed(app, '/jobs', 'POST', { task_type: 'echo' })).status).toBe(201)
      } finally {
        await server.stop()
      }
    } finally {
      await app.close()
      redis.disconnect()
      blocking.disconnect()
    }
  })

  it('answers 503 within the command timeout when Redis accepts but never answers (black hole)', async () => {
    const sockets: Socket[] = []
    const hole: Server = createServer((s) => {
      sockets.push(s) // accept, read, never answer
      s.on('error', () => {})
    })
    const port = await new Promise<number>((resolve) =>
      hole.listen(0, '127.0.0.1', () => resolve((hole.address() as { port: number }).port)),
    )
    const config = loadConfig({
      REDIS_URL: `redis://127.0.0.1:${port}`,
      KEY_PREFIX: 'hole',
      LOG_LEVEL: 'silent',
      REDIS_COMMAND_TIMEOUT_MS: '1000',
      RATE_LIMIT_PER_MIN: '0',
    })
    // A client that believes it is connected: a real link that went silent.
    const redis = createRedis({ target: redisTarget(config), commandTimeoutMs: config.redisCommandTimeoutMs })
    redis.connect().catch(() => {})
    const blocking = createRedis({ target: redisTarget(config), commandTimeoutMs: 3000, blocking: true })
    const app = await buildApp({ config, queue: new Queue(redis, config), blocking })
    try {
      for (const [method, url, payload] of [
        ['POST', '/jobs', { task_type: 'echo' }],
        ['GET', '/jobs'],
        ['GET', '/health/ready'],
      ] as const) {
        const r = await timed(app, url, method, payload)
        expect(r.status, `${method} ${url}`).toBe(503)
        expect(r.ms, `${method} ${url}`).toBeLessThan(3500)
      }
    } finally {
      await app.close()
      redis.disconnect()
      blocking.disconnect()
      for (const s of sockets) s.destroy()
      hole.close()
    }
  })
})
