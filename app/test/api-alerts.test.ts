/**
 * The alerts API through app.inject() against a real Redis, with a local HTTP receiver and a
 * local SMTP server: rules CRUD (built-ins from the settings, overrides), bad input a 4xx with
 * the alerts' keys unchanged (DUMP of each), roles, acknowledge, silences, history, the test
 * alert per channel, the /metrics block; and `dtq alerts test` from the CLI.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type Config, ConfigError, loadConfig } from '../src/config.ts'
import { AlertEvaluator } from '../src/worker/alert-evaluator.ts'
import {
  type HttpReceiver,
  type SmtpReceiver,
  startHttpReceiver,
  startSmtpReceiver,
} from './alert-receivers.ts'
import { type ApiBundle, apiSetup, bearer, TOKEN_SETTING } from './api-helpers.ts'
import { targetEnv, testTarget, waitFor } from './helpers.ts'
import { runCli } from './processes.ts'

let b: ApiBundle
let http: HttpReceiver
let smtp: SmtpReceiver

function channels(): Partial<Config> {
  return {
    alertWebhookUrl: `${http.url}/hook`,
    alertWebhookSecret: 's',
    slackWebhookUrl: `${http.url}/slack`,
    smtpHost: '127.0.0.1',
    smtpPort: smtp.port,
    smtpSecurity: 'none',
    alertEmail: 'ops@example.com, oncall@example.com',
    alertDeliveryTimeoutMs: 1000,
  }
}

beforeEach(async () => {
  http = await startHttpReceiver()
  smtp = await startSmtpReceiver()
})
afterEach(async () => {
  await b?.cleanup()
  b = undefined as unknown as ApiBundle
  await http.close()
  await smtp.close()
})

const req = (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: unknown, headers = {}) =>
  b.app.inject({ method, url, payload: payload as never, headers })

/** Every key of the alerts, dumped: what "nothing written" compares. */
async function alertKeys(): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const k of await b.keys())
    if (k.includes('{:alerts}')) out[k] = (await b.redis.dumpBuffer(k))?.toString('base64') ?? ''
  return out
}

/** One evaluation by hand (the background loops are not running under inject()). */
async function evaluate() {
  const token = 'test-evaluator'
  await b.queue.alerts.lead(token, 10_000)
  await new AlertEvaluator({ queue: b.queue, store: b.queue.alerts, settings: b.config }).tick(token)
}

describe('rules', () => {
  it('lists the built-in rules from the settings; adds, overrides, reverts and deletes', async () => {
    b = await apiSetup({ alertDlqThreshold: 7 })
    const list = (await req('GET', '/alerts/rules')).json().rules
    expect(list.find((r: { id: string }) => r.id === 'dlq_depth')).toMatchObject({
      kind: 'dlq_depth',
      threshold: 7,
      builtin: true,
      overridden: false,
    })
    expect(list.map((r: { id: string }) => r.id)).toEqual([
      'breaker_open',
      'dlq_critical',
      'dlq_depth',
      'dlq_growth',
      'failure_rate',
      'no_worker',
      'oldest_waiting',
    ])
    const add = await req('POST', '/alerts/rules', {
      id: 'mail-rate',
      kind: 'failure_rate',
      queue: 'emails',
      task_type: 'send_email',
      threshold: 0.2,
      window_ms: 600_000,
      severity: 'critical',
      channels: ['slack'],
    })
    expect(add.statusCode).toBe(201)
    expect(add.json()).toMatchObject({
      id: 'mail-rate',
      for_ms: 0,
      enabled: true,
      min_count: 5,
      builtin: false,
    })
    expect((await req('POST', '/alerts/rules', { id: 'mail-rate', kind: 'dlq_depth' })).statusCode).toBe(409)
    expect((await req('POST', '/alerts/rules', { id: 'dlq_depth', kind: 'dlq_depth' })).statusCode).toBe(409)
    // Override a built-in, then revert it by deleting the override.
    const put = await req('PUT', '/alerts/rules/dlq_depth', {
      kind: 'dlq_depth',
      threshold: 50,
      enabled: false,
    })
    expect(put.json()).toMatchObject({ threshold: 50, enabled: false, builtin: true, overridden: true })
    const del = await req('DELETE', '/alerts/rules/dlq_depth')
    expect(del.statusCode).toBe(200)
    expect(del.json().rules.find((r: { id: string }) => r.id === 'dlq_depth')).toMatchObject({
      threshold: 7,
      enabled: true,
    })
    expect((await req('DELETE', '/alerts/rules/dlq_depth')).statusCode).toBe(409)
    expect((await req('DELETE', '/alerts/rules/nope')).statusCode).toBe(404)
    expect((await req('DELETE', '/alerts/rules/mail-rate')).statusCode).toBe(200)
  })

  it('bad rules get a 400 and write nothing', async () => {
    b = await apiSetup()
    await req('POST', '/alerts/rules', { id: 'keep', kind: 'dlq_depth', threshold: 3 })
    const before = await alertKeys()
    const bad: Array<[string, string, unknown]> = [
      ['POST', '/alerts/rules', { id: 'x', kind: 'disk_full' }],
      ['POST', '/alerts/rules', { id: 'x', kind: 'dlq_depth', threshold: -1 }],
      ['POST', '/alerts/rules', { id: 'x', kind: 'dlq_depth', threshold: 'ten' }],
      ['POST', '/alerts/rules', { id: 'x', kind: 'failure_rate', threshold: 2 }],
      ['POST', '/alerts/rules', { id: 'x', kind: 'dlq_growth', window_ms: 5 }],
      ['POST', '/alerts/rules', { id: 'x', kind: 'dlq_depth', colour: 'red' }],
      ['POST', '/alerts/rules', { id: '../x', kind: 'dlq_depth' }],
      ['POST', '/alerts/rules', { id: 'x', kind: 'dlq_depth', severity: 'apocalyptic' }],
      ['POST', '/alerts/rules', { id: 'x', kind: 'dlq_depth', channels: ['pager'] }],
      ['POST', '/alerts/rules', { kind: 'dlq_depth' }],
      ['PUT', '/alerts/rules/keep', { kind: 'dlq_depth', threshold: 1e13 }],
      ['PUT', '/alerts/rules/keep', { kind: 'failure_rate', threshold: 1.5 }],
      ['POST', '/alerts/silences', { comment: 'no matcher', duration_ms: 60_000 }],
      ['POST', '/alerts/silences', { queue: 'q' }],
      ['POST', '/alerts/silences', { queue: 'q', until: 1000 }],
      ['POST', '/alerts/silences', { queue: 'q', until: Date.now() + 1e6, duration_ms: 60_000 }],
      ['POST', '/alerts/silences', { queue: 'a b', duration_ms: 60_000 }],
      ['POST', '/alerts/a:b/ack', { by: 'x', extra: 1 }],
      ['GET', '/alerts/history?limit=0', undefined],
      ['GET', '/alerts/history?before=abc', undefined],
    ]
    for (const [method, url, body] of bad) {
      const r = await req(method as 'POST', url, body)
      expect(r.statusCode, `${method} ${url} ${JSON.stringify(body)}`).toBe(400)
      expect(r.json().code).toBe('VALIDATION')
    }
    expect(await alertKeys()).toEqual(before)
  })

  it('roles: read reads, write acknowledges, silences and tests, admin changes rules', async () => {
    b = await apiSetup({ apiTokens: TOKEN_SETTING })
    expect((await req('GET', '/alerts', undefined, bearer('read'))).statusCode).toBe(200)
    expect((await req('GET', '/alerts/rules')).statusCode).toBe(401)
    const rule = { id: 'r1', kind: 'dlq_depth' }
    expect((await req('POST', '/alerts/rules', rule, bearer('read'))).statusCode).toBe(403)
    expect((await req('POST', '/alerts/rules', rule, bearer('write'))).statusCode).toBe(403)
    expect((await req('POST', '/alerts/rules', rule, bearer('admin'))).statusCode).toBe(201)
    const s = { queue: 'q', duration_ms: 60_000 }
    expect((await req('POST', '/alerts/silences', s, bearer('read'))).statusCode).toBe(403)
    expect((await req('POST', '/alerts/silences', s, bearer('write'))).statusCode).toBe(201)
    expect((await req('POST', '/alerts/test', undefined, bearer('read'))).statusCode).toBe(403)
    expect((await req('POST', '/alerts/x:q/ack', {}, bearer('read'))).statusCode).toBe(403)
  })
})

describe('alerts, acknowledge, silences, history', () => {
  it('a firing alert is listed, acknowledged once firing (404 unknown, 409 pending), silenced, and in the history', async () => {
    b = await apiSetup({ alertDlqThreshold: 0 })
    await req('PUT', '/alerts/rules/slowdlq', {
      kind: 'dlq_depth',
      queue: 'p',
      threshold: 0,
      for_ms: 3_600_000,
    })
    const w = b.worker({ workerQueues: ['q', 'p'] })
    await w.start()
    await b.queue.add('fail', { permanent: true }, { queue: 'q', max_retries: 0 })
    await b.queue.add('fail', { permanent: true }, { queue: 'p', max_retries: 0 })
    await waitFor(async () => (await b.queue.stats()).totals.dlq === 2)
    await evaluate()
    const now = (await req('GET', '/alerts')).json()
    expect(now).toMatchObject({ firing: 2, pending: 1, channels: [] })
    const ids = now.alerts.map((a: { id: string; status: string }) => `${a.id} ${a.status}`).sort()
    expect(ids).toEqual(['dlq_depth:p firing', 'dlq_depth:q firing', 'slowdlq:p pending'])
    expect((await req('POST', '/alerts/nope:q/ack')).statusCode).toBe(404) // no body: fine
    expect((await req('POST', '/alerts/slowdlq:p/ack', {})).statusCode).toBe(409)
    const ack = await req('POST', '/alerts/dlq_depth:q/ack', { by: 'alice' })
    expect(ack.statusCode).toBe(200)
    expect(ack.json()).toMatchObject({ id: 'dlq_depth:q', acknowledged: { by: 'alice' } })
    // A silence on queue p, listed and ended.
    const s = await req('POST', '/alerts/silences', {
      queue: 'p',
      duration_ms: 3_600_000,
      comment: 'deploy',
      by: 'bob',
    })
    expect(s.statusCode).toBe(201)
    const sid = s.json().id
    expect((await req('GET', '/alerts/silences')).json().silences).toMatchObject([
      { id: sid, queue: 'p', rule: null, comment: 'deploy', created_by: 'bob' },
    ])
    const listed = (await req('GET', '/alerts')).json().alerts
    expect(listed.find((a: { id: string }) => a.id === 'dlq_depth:p').silenced_by).toBe(sid)
    expect((await req('DELETE', `/alerts/silences/${sid}`)).json().silences).toEqual([])
    expect((await req('DELETE', `/alerts/silences/${sid}`)).statusCode).toBe(404)
    // History: newest first, paged.
    const h1 = (await req('GET', '/alerts/history?limit=2')).json()
    expect(h1.entries.map((e: { type: string }) => e.type)).toEqual(['unsilenced', 'silenced'])
    const h2 = (await req('GET', `/alerts/history?limit=10&before=${h1.next}`)).json()
    expect(h2.entries.map((e: { type: string }) => e.type)).toEqual(['acknowledged', 'firing', 'firing'])
    expect(h2.next).toBeNull()
  })
})

describe('test alert and metrics', () => {
  it('POST /alerts/test answers per channel; a failing one says why; /metrics counts dlq_alerts_sent_total', async () => {
    b = await apiSetup(channels())
    const r = await req('POST', '/alerts/test')
    expect(r.statusCode).toBe(200)
    expect(r.json().results.map((x: { channel: string; ok: boolean }) => [x.channel, x.ok])).toEqual([
      ['webhook', true],
      ['slack', true],
      ['email', true],
    ])
    expect(http.received.map((x) => x.path).sort()).toEqual(['/hook', '/slack'])
    expect(JSON.parse(http.received.find((x) => x.path === '/hook')!.body)).toMatchObject({ type: 'test' })
    expect(smtp.mails).toHaveLength(1)
    expect(smtp.mails[0]!.to).toEqual(['ops@example.com', 'oncall@example.com'])
    expect(smtp.mails[0]!.raw).toMatch(/Subject: \[DTQ info\] \[TEST\] DTQ test alert/)
    http.script = [500]
    const failing = (await req('POST', '/alerts/test')).json().results
    const failed = failing.filter((x: { ok: boolean }) => !x.ok)
    expect(failed).toHaveLength(1)
    expect(failed[0].error).toBe('HTTP 500')
    const metrics = (await req('GET', '/metrics')).body
    expect(metrics).toMatch(/\ndlq_alerts_sent_total\{channel="email",outcome="sent"\} 2\n/)
    expect(metrics).toMatch(/\ndlq_alerts_sent_total\{channel="(webhook|slack)",outcome="failed"\} 1\n/)
    expect(metrics).toMatch(/\ndtq_alerts_firing\{severity="critical"\} 0\n/)
    const hist = (await req('GET', '/alerts/history')).json().entries
    expect(hist[0]).toMatchObject({ type: 'test', by: 'api' })
  })

  it('dtq alerts test sends through the configured channels from the CLI', async () => {
    b = await apiSetup()
    const env = {
      ...targetEnv(testTarget()),
      KEY_PREFIX: b.prefix,
      ALERT_WEBHOOK_URL: `${http.url}/hook`,
      SMTP_HOST: '127.0.0.1',
      SMTP_PORT: String(smtp.port),
      SMTP_SECURITY: 'none',
      ALERT_EMAIL: 'ops@example.com',
    }
    const out = await runCli(env, ['alerts', 'test'])
    expect(out).toMatch(/^webhook +ok/m)
    expect(out).toMatch(/^email +ok/m)
    expect(http.received).toHaveLength(1)
    expect(smtp.mails).toHaveLength(1)
    const silence = JSON.parse(await runCli(env, ['alerts', 'silence', '--queue', 'q', '--for', '2h']))
    expect(silence).toMatchObject({ queue: 'q', rule: null })
    expect((await req('GET', '/alerts/silences')).json().silences).toHaveLength(1)
    const rules = JSON.parse(await runCli(env, ['alerts', 'rules']))
    expect(rules.map((r: { id: string }) => r.id)).toContain('dlq_depth')
  })
})

describe('settings', () => {
  it('bad channel settings stop the process naming each, never echoing a webhook URL', () => {
    const secret = 'hooks.slack.com/services/T000/B000/XXXXsecretXXXX'
    let err: ConfigError | undefined
    try {
      loadConfig({
        SLACK_WEBHOOK_URL: secret,
        ALERT_WEBHOOK_URL: 'ftp://example.com/x',
        ALERT_EMAIL: 'not-an-address',
        ALERT_DIGEST_AT: '24:00',
        ALERT_FAILURE_RATE: '1.5',
        SMTP_SECURITY: 'ssl',
      })
    } catch (e) {
      err = e as ConfigError
    }
    expect(err).toBeInstanceOf(ConfigError)
    expect(err!.problems).toEqual([
      'ALERT_FAILURE_RATE="1.5" is above 1',
      'ALERT_WEBHOOK_URL must be an http:// or https:// URL',
      'SLACK_WEBHOOK_URL must be an http:// or https:// URL',
      expect.stringMatching(/^SMTP_SECURITY="ssl" /),
      'ALERT_EMAIL must be one email address or several, comma-separated',
      'ALERT_DIGEST_AT must be HH:MM (UTC) or empty',
    ])
    expect(err!.message).not.toContain('secret')
    const ok = loadConfig({ ALERT_EMAIL: 'a@x.io, b@y.io', ALERT_DIGEST_AT: '08:30', SMTP_SECURITY: 'tls' })
    expect(ok).toMatchObject({ alertEmail: 'a@x.io, b@y.io', alertDigestAt: '08:30', smtpSecurity: 'tls' })
  })
})
