/**
 * The audit log (ADR 0026): every operator action over the API -- refusals included -- is one
 * entry of the bounded `<prefix>:audit` stream with who (token name and role), what, target,
 * result, when and from where, never a token or a payload; production traffic is not recorded;
 * a failed write never fails the action; GET /audit filters and pages (admin only).
 */

import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { hostname, userInfo } from 'node:os'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { loadConfig } from '../src/config.ts'
import { type ApiBundle, apiSetup, TOKENS } from './api-helpers.ts'
import { FakeClock, targetEnv, testTarget, waitFor } from './helpers.ts'
import { runCli } from './processes.ts'

/** `dtq <args>`'s exit code (runCli rejects on a non-zero one). */
const exitOf = (env: Record<string, string>, args: string[]) =>
  runCli(env, args).then(
    () => 0,
    (e: { code: number }) => e.code,
  )

const NAMED = `${TOKENS.read}:read:ro-bot,${TOKENS.write}:write:alice,${TOKENS.admin}:admin`
let b: ApiBundle
beforeEach(async () => {
  b = await apiSetup({ apiTokens: NAMED, auditMaxLen: 1000, trustProxy: '1' })
})
afterEach(() => b.cleanup())

const as = (token: string) => ({ authorization: `Bearer ${token}`, 'user-agent': 'audit-test/1' })

async function entries(n: number, query = '') {
  return waitFor(
    async () => {
      const res = await b.app.inject({
        method: 'GET',
        url: `/audit?limit=500${query}`,
        headers: as(TOKENS.admin),
      })
      const items = res.json().items
      return items.length >= n ? items : null
    },
    { what: `${n} audit entries` },
  )
}

describe('audit log', () => {
  it('records operator actions with who, what, target, result, when and from where', async () => {
    const { job } = await b.queue.add('echo', { secret: 'PAYLOAD-SECRET' }, { queue: 'default' })
    const t0 = Date.now()
    const cancel = await b.app.inject({
      method: 'POST',
      url: `/jobs/${job.id}/cancel?queue=default`,
      headers: { ...as(TOKENS.write), 'x-forwarded-for': '203.0.113.7' },
    })
    expect(cancel.statusCode).toBe(200)
    const [e] = await entries(1)
    expect(e).toMatchObject({
      actor: 'alice',
      role: 'write',
      action: 'POST /jobs/:id/cancel',
      target: `queue=default id=${job.id}`,
      status: 200,
      result: 'ok',
      ip: '203.0.113.7',
      user_agent: 'audit-test/1',
      detail: 'queue=default',
    })
    expect(e.at).toBeGreaterThanOrEqual(t0)
    expect(e.request_id).not.toBe('')
    // Nothing secret in the stream: no token, no payload.
    const raw = JSON.stringify(await b.redis.xrange(b.queue.store.keys.audit(), '-', '+'))
    for (const secret of [...Object.values(TOKENS), 'PAYLOAD-SECRET']) expect(raw).not.toContain(secret)
  })

  it("stamps entries with the process's clock (Redis's time, ADR 0012), not the machine's", async () => {
    const clock = new FakeClock(Date.UTC(2031, 0, 2, 3, 4, 5))
    const own = await apiSetup({ apiTokens: NAMED, auditMaxLen: 1000 }, { clock })
    try {
      const res = await own.app.inject({
        method: 'POST',
        url: '/queues/default/pause',
        headers: as(TOKENS.admin),
      })
      expect(res.statusCode).toBeLessThan(300)
      const e = await waitFor(async () => (await own.redis.xrange(own.queue.store.keys.audit(), '-', '+'))[0])
      expect(e[1][e[1].indexOf('at') + 1]).toBe(String(clock.now()))
    } finally {
      await own.cleanup()
    }
  })

  it('records refusals (forbidden, bad input, unauthenticated) with their error code; default names <role>-<n>', async () => {
    await b.app.inject({ method: 'DELETE', url: '/dlq?older_than_days=0', headers: as(TOKENS.read) }) // 403
    await b.app.inject({ method: 'DELETE', url: '/dlq?older_than_days=-1', headers: as(TOKENS.admin) }) // 400
    await b.app.inject({ method: 'DELETE', url: '/dlq?older_than_days=0' }) // 401
    const items = await entries(3)
    expect(items.map((e: Record<string, unknown>) => [e.actor, e.role, e.status, e.result])).toEqual([
      ['anonymous', '', 401, 'UNAUTHORIZED'],
      ['admin-3', 'admin', 400, 'VALIDATION'],
      ['ro-bot', 'read', 403, 'FORBIDDEN'],
    ])
    // Filters: result, actor, action, target, time; paging with the cursor.
    const q = async (s: string) =>
      (await b.app.inject({ method: 'GET', url: `/audit?${s}`, headers: as(TOKENS.admin) })).json()
    expect((await q('result=error')).items).toHaveLength(3)
    expect((await q('result=FORBIDDEN')).items.map((e: { actor: string }) => e.actor)).toEqual(['ro-bot'])
    expect((await q('actor=admin-3')).items).toHaveLength(1)
    expect((await q('action=delete%20%2Fdlq')).items).toHaveLength(3)
    expect((await q('result=ok')).items).toHaveLength(0)
    expect((await q(`since=${Date.now() + 60_000}`)).items).toHaveLength(0)
    const p1 = await q('limit=2')
    expect(p1.items).toHaveLength(2)
    const p2 = await q(`limit=2&cursor=${p1.next_cursor}`)
    expect(p2.items.map((e: { actor: string }) => e.actor)).toEqual(['ro-bot'])
  })

  it('does not record production traffic or reads', async () => {
    await b.app.inject({
      method: 'POST',
      url: '/jobs',
      headers: as(TOKENS.write),
      payload: { task_type: 'echo' },
    })
    await b.app.inject({ method: 'GET', url: '/jobs', headers: as(TOKENS.read) })
    await b.app.inject({ method: 'GET', url: '/dlq/stats', headers: as(TOKENS.read) })
    // A read spelled as a POST (seed 004's search): config.audit false.
    await b.app.inject({ method: 'POST', url: '/dlq/search', headers: as(TOKENS.read), payload: {} })
    // A marker action: once it is there, everything before it had its chance to be recorded.
    await b.app.inject({ method: 'POST', url: '/queues/default/pause', headers: as(TOKENS.admin) })
    const items = await entries(1)
    expect(items.map((e: { action: string }) => e.action)).toEqual(['POST /queues/:queue/pause'])
  })

  it('token names are checked with the tokens, and a bad one is refused without echoing the token', () => {
    const bad = () => loadConfig({ API_TOKENS: `${TOKENS.admin}:admin:bad name!` })
    expect(bad).toThrow(/token name/)
    try {
      bad()
    } catch (err) {
      expect(String(err)).not.toContain(TOKENS.admin)
    }
    expect(() => loadConfig({ API_TOKENS: `${TOKENS.admin}:admin:ops@example.com` })).not.toThrow()
  })

  it('GET /audit is admin only and refuses bad filters with a 400', async () => {
    expect((await b.app.inject({ method: 'GET', url: '/audit', headers: as(TOKENS.write) })).statusCode).toBe(
      403,
    )
    for (const s of ['limit=0', 'cursor=abc', 'since=-1', 'result=a%20b', 'bogus=1']) {
      const res = await b.app.inject({ method: 'GET', url: `/audit?${s}`, headers: as(TOKENS.admin) })
      expect(res.statusCode, s).toBe(400)
    }
  })

  it('a failed audit write never fails the action (counted instead)', async () => {
    // The audit key taken by another type: every XADD fails (WRONGTYPE).
    await b.redis.set(b.queue.store.keys.audit(), 'not a stream')
    const { job } = await b.queue.add('echo', {}, { queue: 'default' })
    const res = await b.app.inject({
      method: 'POST',
      url: `/jobs/${job.id}/cancel?queue=default`,
      headers: as(TOKENS.write),
    })
    expect(res.statusCode).toBe(200)
    await waitFor(async () => b.app.dtqAudit.writeFailures === 1, { what: 'the failure counted' })
  })

  it('is bounded (MAXLEN ~)', async () => {
    const small = await apiSetup({ auditMaxLen: 10 })
    try {
      for (let i = 0; i < 500; i++)
        await small.app.dtqAudit.record({
          at: i,
          actor: 'x',
          role: 'admin',
          action: 'cli test',
          target: '',
          status: 200,
          result: 'ok',
          ip: '',
          user_agent: '',
          request_id: '',
          duration_ms: 0,
          detail: '',
        })
      expect(await small.redis.xlen(small.queue.store.keys.audit())).toBeLessThan(200)
    } finally {
      await small.cleanup()
    }
  })

  it("records the CLI's operator commands (ok and failed) as cli:<user>@<host>, not its reads", async () => {
    const env = { ...targetEnv(testTarget()), KEY_PREFIX: b.prefix, REDIS_DURABILITY: 'off' }
    await runCli(env, ['queues', 'pause', 'default'])
    await runCli(env, ['dlq', 'ls'])
    await runCli(env, ['stats'])
    const failed = await runCli(env, ['cancel', 'nope', '--queue', 'default']).then(
      () => 'exit 0',
      (e: { code: number }) => `exit ${e.code}`,
    )
    expect(failed).toBe('exit 3') // the command's own exit code, unchanged by the audit
    const items = await entries(2)
    const who = `cli:${userInfo().username}@${hostname()}`
    expect(
      items.map((e: Record<string, unknown>) => [e.actor, e.role, e.action, e.target, e.status, e.result]),
    ).toEqual([
      [who, 'cli', 'cli cancel', 'queue=default args=nope', 404, 'NOT_FOUND'],
      [who, 'cli', 'cli queues pause', 'args=default', 200, 'ok'],
    ])
  }, 30_000)

  it('records the other writing CLI commands (alerts test|ack|silence, queues created-index, replay, breaker, archiver --off) once each; not the archiver process or reads', async () => {
    // alerts test sends through a webhook channel: this test's own.
    let hooks = 0
    const hook = createServer((req, res) => {
      hooks++
      req.resume().on('end', () => res.end('ok'))
    })
    await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve))
    try {
      const env = {
        ...targetEnv(testTarget()),
        KEY_PREFIX: b.prefix,
        REDIS_DURABILITY: 'off',
        ALERT_WEBHOOK_URL: `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`,
        DATABASE_URL: '', // `dtq archiver` (the process) then fails at once
      }
      const { job } = await b.queue.add('echo', {}, { queue: 'default' })
      await b.queue.cancel(job.id, 'default')
      const runs: Array<[string[], number]> = [
        // Operator actions: one entry each, ok or failed.
        [['alerts', 'test'], 0],
        [['alerts', 'ack', 'nope:default'], 3],
        [['alerts', 'silence', '--queue', 'default', '--for', '30m'], 0],
        [['queues', 'created-index', 'default', 'on'], 0],
        [['queues', 'created-index', 'default', 'maybe'], 2],
        [['replay', job.id, '--queue', 'default', '--payload', '{"s":"CLI-PAYLOAD-SECRET"}'], 0],
        [['breaker', 'default', 'echo', 'open'], 0],
        [['archiver', '--off'], 0],
        // Not actions: the archiver process (failed here: no DATABASE_URL), reads.
        [['archiver'], 2],
        [['alerts', 'list'], 0],
        [['queues'], 0],
        [['timeline', job.id, '--queue', 'default'], 0],
      ]
      // Three at a time: each one's entry is written before it exits.
      for (let i = 0; i < runs.length; i += 3) {
        const batch = runs.slice(i, i + 3)
        const codes = await Promise.all(batch.map(([args]) => exitOf(env, args)))
        expect(codes, batch.map(([args]) => args.join(' ')).join(' | ')).toEqual(
          batch.map(([, code]) => code),
        )
      }
      expect(hooks).toBe(1)
      const who = `cli:${userInfo().username}@${hostname()}`
      // Each command wrote its entry before it exited: read them once (no wait).
      const res = await b.app.inject({ method: 'GET', url: '/audit?limit=500', headers: as(TOKENS.admin) })
      const items = res.json().items as Array<Record<string, unknown>>
      const seen = items
        .map((e) => [e.actor, e.role, e.action, e.target, e.status, e.result])
        .sort((x, y) => `${x[2]} ${x[3]}`.localeCompare(`${y[2]} ${y[3]}`))
      expect(seen).toEqual([
        [who, 'cli', 'cli alerts ack', 'args=nope:default', 404, 'NOT_FOUND'],
        [who, 'cli', 'cli alerts silence', 'queue=default', 200, 'ok'],
        [who, 'cli', 'cli alerts test', '', 200, 'ok'],
        [who, 'cli', 'cli archiver', '', 200, 'ok'],
        [who, 'cli', 'cli breaker', 'args=default echo open', 200, 'ok'],
        [who, 'cli', 'cli queues created-index', 'args=default maybe', 400, 'VALIDATION'],
        [who, 'cli', 'cli queues created-index', 'args=default on', 200, 'ok'],
        [who, 'cli', 'cli replay', `queue=default args=${job.id}`, 200, 'ok'],
      ])
      // archiver's entry is its --off form; the replay's payload is not recorded.
      expect(items.find((e) => e.action === 'cli archiver')?.detail).toBe('off=true')
      const raw = JSON.stringify(await b.redis.xrange(b.queue.store.keys.audit(), '-', '+'))
      expect(raw).not.toContain('CLI-PAYLOAD-SECRET')
    } finally {
      hook.close()
    }
  }, 60_000)
})
