/**
 * Alerts (docs/decisions/0025) against a real Redis, real queues and workers, a local HTTP
 * receiver (webhook, Slack) and a local SMTP server: each rule kind fires and resolves; one
 * notification per transition through every channel (webhook HMAC checked, Slack blocks, email
 * headers); retries with backoff on a receiver that fails then succeeds, and giving up; on a
 * hanging one, each attempt abandoned at ALERT_DELIVERY_TIMEOUT_MS; cooldown repeats,
 * acknowledge and silence; one evaluator among three (with the fence and the compare-and-set
 * off, the negative control duplicates); a hanging receiver slows neither job processing nor
 * the other channels; the daily digest and the purge summary.
 */
import { createHmac, timingSafeEqual } from 'node:crypto'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { Config } from '../src/config.ts'
import type { RuleInput } from '../src/queue/alert-rules.ts'
import type { Notification } from '../src/redis/alerts.ts'
import { AlertStore } from '../src/redis/alerts.ts'
import { decide } from '../src/worker/alert-evaluator.ts'
import { Alerting } from '../src/worker/alerting.ts'
import {
  type HttpReceiver,
  type Received,
  type SmtpReceiver,
  startHttpReceiver,
  startSmtpReceiver,
} from './alert-receivers.ts'
import { type Bundle, setup, waitFor } from './helpers.ts'

const SECRET = 'webhook-secret-123'
const silentLog = { info() {}, warn() {}, error() {}, debug() {} }

let http: HttpReceiver
let smtp: SmtpReceiver
let b: Bundle

function channelConfig(): Partial<Config> {
  return {
    alertWebhookUrl: `${http.url}/hook`,
    alertWebhookSecret: SECRET,
    slackWebhookUrl: `${http.url}/slack`,
    smtpHost: '127.0.0.1',
    smtpPort: smtp.port,
    smtpSecurity: 'none',
    smtpUser: 'dtq',
    smtpPassword: 'pw',
    smtpFrom: 'dtq@example.com',
    alertEmail: 'ops@example.com',
    alertRetryBaseMs: 50,
    alertDeliveryTimeoutMs: 1000,
    alertEvalIntervalMs: 50,
  }
}

beforeEach(async () => {
  http = await startHttpReceiver()
  smtp = await startSmtpReceiver()
})
afterEach(async () => {
  await b?.cleanup()
  b = undefined as unknown as Bundle
  await http.close()
  await smtp.close()
})

const hooks = () => http.received.filter((r) => r.path === '/hook')
const slacks = () => http.received.filter((r) => r.path === '/slack')
const bodies = (path: string) =>
  http.received.filter((r) => r.path === path).map((r) => JSON.parse(r.body) as Notification)

/** Only the given rules (the built-in ones off), stored through the store's checks. */
async function onlyRules(store: AlertStore, rules: RuleInput[]) {
  for (const r of await store.rules(b.config))
    if (r.builtin) await store.putRule({ ...r, enabled: false }, true)
  for (const r of rules) await store.putRule(r, false)
}

/** One process's alerting driven by hand: lead, evaluate, deliver (and wait for the deliveries). */
function driver(cfg: Partial<Config> = {}) {
  const a = new Alerting({
    queue: b.queue,
    config: { ...b.config, ...cfg },
    log: silentLog,
    random: () => 0.5,
  })
  return {
    a,
    async round() {
      expect(await b.queue.alerts.lead(a.token, 10_000)).toBe(true)
      const r = await a.evaluator.tick(a.token)
      await a.notifier.tick()
      await a.notifier.settle()
      return r
    },
  }
}

/** Dead-letters n jobs of a queue through a real worker. */
async function deadLetters(queue: string, n: number, type = 'fail') {
  const w = b.worker({ workerQueues: [queue] })
  await w.start()
  const before = (await b.queue.stats()).queues.find((q) => q.queue === queue)?.dlq ?? 0
  for (let i = 0; i < n; i++) await b.queue.add(type, { permanent: true }, { queue, max_retries: 0 })
  await waitFor(async () => (await b.queue.stats()).queues.find((q) => q.queue === queue)?.dlq === before + n)
  await w.close()
}

function verifySignature(r: { headers: Record<string, unknown>; body: string }) {
  const ts = String(r.headers['x-dtq-timestamp'])
  const sig = String(r.headers['x-dtq-signature'])
  const want = `sha256=${createHmac('sha256', SECRET).update(`${ts}.${r.body}`).digest('hex')}`
  return sig.length === want.length && timingSafeEqual(Buffer.from(sig), Buffer.from(want))
}

describe('channels and transitions', () => {
  it('dlq_depth fires once through webhook (signed), Slack and email, then resolves once', async () => {
    b = await setup({ config: channelConfig() })
    const store = b.queue.alerts
    await onlyRules(store, [
      { id: 'dlq', kind: 'dlq_depth', queue: 'orders', threshold: 2, severity: 'critical' },
    ])
    const d = driver()
    await d.a.notifier.prepare()
    await deadLetters('orders', 3)
    const r1 = await d.round()
    expect(r1).toMatchObject({ transitions: 1, notifications: 1 })
    expect(await d.round()).toMatchObject({ transitions: 0, notifications: 0 })
    expect(hooks()).toHaveLength(1)
    expect(slacks()).toHaveLength(1)
    expect(smtp.mails).toHaveLength(1)
    // The webhook: JSON, HMAC over timestamp.body, a tampered body fails the check.
    const hook = hooks()[0]!
    expect(verifySignature(hook)).toBe(true)
    expect(verifySignature({ ...hook, body: hook.body.replace('orders', 'orderz') })).toBe(false)
    const n = JSON.parse(hook.body) as Notification
    expect(n).toMatchObject({
      type: 'firing',
      severity: 'critical',
      alert: {
        id: 'dlq:orders',
        rule: 'dlq',
        status: 'firing',
        value: 3,
        threshold: 2,
        labels: { queue: 'orders' },
      },
    })
    expect(hook.headers['x-dtq-notification-id']).toBe(n.id)
    // Slack: text + blocks.
    const slack = JSON.parse(slacks()[0]!.body)
    expect(slack.text).toContain('orders: 3 dead letters (threshold 2)')
    expect(slack.blocks.map((x: { type: string }) => x.type)).toEqual(['header', 'section', 'context'])
    // Email: envelope, headers, body.
    const mail = smtp.mails[0]!
    expect(mail.from).toBe('dtq@example.com')
    expect(mail.to).toEqual(['ops@example.com'])
    expect(mail.raw).toMatch(/^Subject: \[DTQ critical\] \[FIRING\]/m)
    const unfolded = mail.raw.replace(/\r?\n[ \t]+/g, ' ')
    expect(unfolded.toLowerCase()).toContain(`x-dtq-notification-id: ${n.id}`.toLowerCase())
    expect(mail.raw).toContain('orders: 3 dead letters (threshold 2)')
    expect((smtp as unknown as { logins: string[] }).logins).toEqual(['dtq:pw'])
    // The alert is listed as firing; history says so.
    expect((await store.list()).map((a) => [a.id, a.status])).toEqual([['dlq:orders', 'firing']])
    // Purged: a purge summary, then resolved -- once.
    expect(await b.queue.purgeDlq(0, 'orders')).toBe(3)
    await d.round()
    await d.round()
    const types = bodies('/hook').map((x) => x.type)
    expect(types).toEqual(['firing', 'purge', 'resolved'])
    expect(bodies('/slack')).toHaveLength(3)
    expect(smtp.mails).toHaveLength(3)
    expect(await store.list()).toEqual([])
    const hist = (await store.history()).entries.map((h) => h.type)
    expect(hist).toEqual(expect.arrayContaining(['firing', 'purge', 'resolved']))
    expect(await store.sentCounts()).toEqual([
      { channel: 'email', outcome: 'sent', count: 3 },
      { channel: 'slack', outcome: 'sent', count: 3 },
      { channel: 'webhook', outcome: 'sent', count: 3 },
    ])
  })

  it('each rule kind fires and resolves on real queues and workers', async () => {
    b = await setup({ config: channelConfig() })
    const store = b.queue.alerts
    await onlyRules(store, [
      { id: 'growth', kind: 'dlq_growth', queue: 'g', threshold: 1, window_ms: 60_000 },
      { id: 'rate', kind: 'failure_rate', queue: 'r', threshold: 0.5, window_ms: 60_000, min_count: 4 },
      { id: 'nowork', kind: 'no_worker', queue: 'n' },
      { id: 'slo', kind: 'oldest_waiting', queue: 's', threshold: 200 },
      { id: 'cb', kind: 'breaker_open', queue: 'c', task_type: 'mail' },
    ])
    const d = driver()
    await d.a.notifier.prepare()
    const firing = async () =>
      (await store.list())
        .filter((a) => a.status === 'firing')
        .map((a) => a.id)
        .sort()
    await d.round() // the baseline sample
    // dlq_growth: two new dead letters within the window.
    await deadLetters('g', 2)
    // failure_rate: 4 of 5 attempts of type `fail` fail in queue r.
    const w = b.worker({ workerQueues: ['r'] })
    await w.start()
    for (let i = 0; i < 4; i++) await b.queue.add('fail', { permanent: true }, { queue: 'r', max_retries: 0 })
    await b.queue.add('fail', { times: 0 }, { queue: 'r' })
    await waitFor(async () => {
      const q = (await b.queue.stats()).queues.find((x) => x.queue === 'r')
      return q && q.dlq === 4 && q.counts.completed === 1
    })
    await w.close()
    // no_worker and oldest_waiting: jobs waiting in n and s, no worker serves them.
    await b.queue.add('echo', {}, { queue: 'n' })
    await b.queue.add('echo', {}, { queue: 's' })
    // breaker_open: the breaker of mail in c opened.
    await b.queue.setLimits('c', { types: { mail: { breaker: { failures: 3, cooldown_ms: 60_000 } } } })
    await b.queue.breaker('c', 'mail', 'open', 60_000)
    await new Promise((r) => setTimeout(r, 250)) // s's job waits past its 200 ms SLO
    await d.round()
    expect(await firing()).toEqual(['cb:c:mail', 'growth:g', 'nowork:n', 'rate:r:fail', 'slo:s'])
    // Every condition goes away: resolved, each notified once.
    await b.queue.breaker('c', 'mail', 'close')
    await b.queue.emptyQueue('s', { limit: 10 })
    const wn = b.worker({ workerQueues: ['n'] })
    await wn.start()
    await waitFor(
      async () => (await b.queue.stats()).queues.find((x) => x.queue === 'n')?.counts.queued === 0,
    )
    await d.round()
    // With a worker serving n still live, n is fine; the growth and rate windows still hold.
    expect(await firing()).toEqual(['growth:g', 'rate:r:fail'])
    await wn.close()
    // Windows: a shorter rule window no longer covers the failures (a rule edit).
    await store.putRule(
      { id: 'growth', kind: 'dlq_growth', queue: 'g', threshold: 1, window_ms: 1000 },
      false,
    )
    await store.putRule(
      { id: 'rate', kind: 'failure_rate', queue: 'r', threshold: 0.5, window_ms: 1000, min_count: 4 },
      false,
    )
    await d.round()
    await new Promise((r) => setTimeout(r, 1100))
    await d.round()
    expect(await firing()).toEqual([])
    const sent = bodies('/hook').map((n) => `${n.type} ${n.alert?.id}`)
    for (const id of ['cb:c:mail', 'growth:g', 'nowork:n', 'rate:r:fail', 'slo:s']) {
      expect(
        sent.filter((s) => s === `firing ${id}`),
        id,
      ).toHaveLength(1)
      expect(
        sent.filter((s) => s === `resolved ${id}`),
        id,
      ).toHaveLength(1)
    }
  })

  it('for_ms keeps an alert pending until the condition has held that long; a blip never notifies', async () => {
    b = await setup({ config: channelConfig() })
    const store = b.queue.alerts
    await onlyRules(store, [{ id: 'slow', kind: 'dlq_depth', queue: 'p', threshold: 0, for_ms: 400 }])
    const d = driver()
    await d.a.notifier.prepare()
    await deadLetters('p', 1)
    await d.round()
    expect((await store.list()).map((a) => a.status)).toEqual(['pending'])
    await b.queue.purgeDlq(0, 'p')
    await d.round()
    expect(await store.list()).toEqual([])
    await deadLetters('p', 1)
    await d.round()
    await new Promise((r) => setTimeout(r, 450))
    await d.round()
    expect((await store.list()).map((a) => a.status)).toEqual(['firing'])
    expect(bodies('/hook').map((n) => n.type)).toEqual(['purge', 'firing'])
  })
})

describe('delivery', () => {
  it('retries a failing receiver with exponential backoff, then delivers once; gives up after the attempts', async () => {
    b = await setup({
      config: { ...channelConfig(), slackWebhookUrl: '', smtpHost: '', alertDeliveryAttempts: 4 },
    })
    const store = b.queue.alerts
    await onlyRules(store, [{ id: 'dlq', kind: 'dlq_depth', queue: 'x', threshold: 0 }])
    const d = driver({ alertDeliveryAttempts: 4 })
    await d.a.notifier.prepare()
    http.script = [500, 503]
    await deadLetters('x', 1)
    await d.round()
    // Attempt 1 failed at once; the next waits ~50 ms (base), then ~100 ms (doubled).
    await waitFor(async () => {
      await d.a.notifier.tick()
      await d.a.notifier.settle()
      return hooks().length === 3
    })
    const at = hooks().map((h) => h.at)
    expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(45)
    expect(at[2]! - at[1]!).toBeGreaterThanOrEqual(95)
    expect(new Set(hooks().map((h) => h.headers['x-dtq-notification-id'])).size).toBe(1)
    await new Promise((r) => setTimeout(r, 300))
    await d.a.notifier.tick()
    await d.a.notifier.settle()
    expect(hooks()).toHaveLength(3) // delivered: not sent again
    expect(await store.sentCounts()).toEqual([
      { channel: 'webhook', outcome: 'retried', count: 2 },
      { channel: 'webhook', outcome: 'sent', count: 1 },
    ])
    // A receiver that keeps failing: 4 attempts, then given up (counted, in the history).
    http.script = [500, 500, 500, 500, 500]
    await b.queue.purgeDlq(0, 'x') // a purge notification
    await waitFor(async () => {
      await d.a.notifier.tick()
      await d.a.notifier.settle()
      return (await store.sentCounts()).some((c) => c.outcome === 'failed')
    })
    expect(hooks()).toHaveLength(3 + 4)
    expect((await store.history()).entries.find((h) => h.type === 'delivery_failed')).toMatchObject({
      channel: 'webhook',
      error: 'HTTP 500',
    })
    expect(await d.a.notifier.backoffMs(1)).toBe(50)
    expect(d.a.notifier.backoffMs(3)).toBe(200)
    expect(d.a.notifier.backoffMs(40)).toBe(3_600_000)
  })

  it('a hanging receiver: each attempt is abandoned at ALERT_DELIVERY_TIMEOUT_MS, retried with backoff, then delivered; given up after the attempts', async () => {
    const T = 300 // ALERT_DELIVERY_TIMEOUT_MS
    const cfg = {
      ...channelConfig(),
      slackWebhookUrl: '',
      smtpHost: '',
      alertDeliveryTimeoutMs: T,
      alertDeliveryAttempts: 4,
    }
    b = await setup({ config: cfg })
    const store = b.queue.alerts
    const d = driver(cfg) // jitter fixed: the backoffs are 50, 100, 200 ms
    await d.a.notifier.prepare()
    const pending = async () => ((await b.redis.xpending(store.key('outbox'), 'webhook')) as [number])[0]
    /**
     * Delivery rounds as the lease loop runs them (a round starts the channel's work and does
     * not wait for it), until `done`; then the round in flight is waited for.
     */
    const deliverUntil = async (done: () => boolean | Promise<boolean>) => {
      await waitFor(
        async () => {
          await d.a.notifier.tick()
          return done()
        },
        { timeoutMs: 8000, what: 'the webhook attempts' },
      )
      await d.a.notifier.settle()
    }
    /** Each hung attempt was given up by the sender at about T, and the next began after it and its backoff. */
    const checkAttempts = (hung: Received[], next: Received | undefined) => {
      for (const [i, h] of hung.entries()) {
        // The sender hung up (not the receiver): the attempt ended at its timeout, not later.
        expect(h.closedAt, `attempt ${i + 1} closed`).toBeDefined()
        expect(h.closedAt! - h.at, `attempt ${i + 1} held`).toBeGreaterThanOrEqual(T / 2)
        expect(h.closedAt! - h.at, `attempt ${i + 1} held`).toBeLessThanOrEqual(T + 1000)
        const after = hung[i + 1] ?? next
        if (!after) continue
        const gap = after.at - h.at
        const backoff = d.a.notifier.backoffMs(i + 1)
        expect(gap, `attempt ${i + 1} to ${i + 2}`).toBeGreaterThanOrEqual(T)
        expect(gap, `attempt ${i + 1} to ${i + 2}`).toBeLessThanOrEqual(T + backoff + 1500)
        expect(after.at, `attempt ${i + 2} began after ${i + 1} was given up`).toBeGreaterThanOrEqual(
          h.closedAt!,
        )
      }
    }

    // Two hung attempts, then the receiver answers: delivered on the third.
    http.script = ['hang', 'hang', 200]
    await store.purgeSummary(1, 0, 'a')
    await d.a.notifier.tick() // attempt 1 starts and hangs; the round does not wait for it
    await waitFor(() => hooks().length === 1, { what: 'attempt 1' })
    expect(await pending()).toBe(1) // pending in the channel's group while it is not delivered
    await deliverUntil(() => hooks().length === 3)
    const first = hooks()
    checkAttempts(first.slice(0, 2), first[2])
    expect(new Set(first.map((h) => h.headers['x-dtq-notification-id'])).size).toBe(1)
    expect(await pending()).toBe(0)
    expect(await store.sentCounts()).toEqual([
      { channel: 'webhook', outcome: 'retried', count: 2 },
      { channel: 'webhook', outcome: 'sent', count: 1 },
    ])

    // A receiver that hangs every time: ALERT_DELIVERY_ATTEMPTS attempts, each abandoned at T,
    // then given up -- acknowledged, counted failed, in the history with the timeout.
    http.hangAll = true
    await store.purgeSummary(2, 0, 'b')
    await deliverUntil(async () => (await store.sentCounts()).some((c) => c.outcome === 'failed'))
    const second = hooks().slice(3)
    expect(second).toHaveLength(4)
    checkAttempts(second, undefined)
    expect(new Set(second.map((h) => h.headers['x-dtq-notification-id'])).size).toBe(1)
    expect(await pending()).toBe(0)
    expect(await store.sentCounts()).toEqual([
      { channel: 'webhook', outcome: 'failed', count: 1 },
      { channel: 'webhook', outcome: 'retried', count: 2 + 3 },
      { channel: 'webhook', outcome: 'sent', count: 1 },
    ])
    expect((await store.history()).entries.find((h) => h.type === 'delivery_failed')).toMatchObject({
      channel: 'webhook',
      error: expect.stringMatching(/timeout/i),
    })
    // Given up: not tried again.
    const last = second[3]!.at
    await deliverUntil(() => Date.now() - last > 4 * d.a.notifier.backoffMs(3))
    expect(hooks()).toHaveLength(3 + 4)
  })

  it('an outbox deleted behind its back (a flush, a restore) is made again; later notifications get through', async () => {
    b = await setup({ config: { ...channelConfig(), slackWebhookUrl: '', smtpHost: '' } })
    const store = b.queue.alerts
    const d = driver()
    await d.a.notifier.prepare()
    await store.purgeSummary(1, 0, 'a')
    await d.round()
    expect(bodies('/hook').map((n) => n.type)).toEqual(['purge'])
    await b.redis.del(store.key('outbox'))
    await d.round() // NOGROUP: reported, the group forgotten
    await d.a.notifier.prepare() // what the lease loop does on its next beat
    await store.purgeSummary(2, 0, 'b')
    await d.round()
    expect(bodies('/hook').map((n) => n.text)).toEqual([
      '1 dead letters purged from queue a (older than 0 days)',
      '2 dead letters purged from queue b (older than 0 days)',
    ])
  })

  it('a hanging receiver slows neither job processing nor the other channels', async () => {
    b = await setup({
      config: { ...channelConfig(), smtpHost: '', alertDeliveryTimeoutMs: 3000, alertEvalIntervalMs: 50 },
    })
    const store = b.queue.alerts
    await onlyRules(store, [{ id: 'dlq', kind: 'dlq_depth', queue: 'h', threshold: 0 }])
    const timeRun = async (n: number) => {
      const w = b.worker({ workerQueues: ['work'], workerConcurrency: 8 })
      await w.start()
      const done = async () =>
        (await b.queue.stats()).queues.find((q) => q.queue === 'work')?.totals.completed ?? 0
      const before = await done()
      const t0 = Date.now()
      await b.queue.addBulk(
        Array.from({ length: n }, () => ({ task_type: 'echo', payload: {}, queue: 'work' })),
      )
      await waitFor(async () => (await done()) === before + n, { timeoutMs: 30_000 })
      const ms = Date.now() - t0
      await w.close()
      return ms
    }
    const baseline = await timeRun(1000)
    http.hangAll = true
    const alerting = new Alerting({
      queue: b.queue,
      config: b.config,
      log: silentLog,
      beatMs: 100,
      deliverEveryMs: 20,
    })
    alerting.start()
    try {
      await waitFor(() => alerting.leader)
      await deadLetters('h', 1)
      // The webhook hangs; Slack stays its own channel: it gets the firing alert at once.
      await waitFor(() => slacks().length >= 1 && hooks().length >= 1, { timeoutMs: 5000 })
      http.hangAll = false
      http.script = Array(20).fill('hang')
      const hanging = await timeRun(1000)
      console.log(`1000 echo jobs: ${baseline} ms without alerting, ${hanging} ms while the webhook hangs`)
      expect(hanging).toBeLessThan(Math.max(3000, baseline * 3))
      expect(slacks().length).toBe(1)
    } finally {
      http.hangAll = false
      await alerting.stop()
    }
    expect(await store.list()).toHaveLength(1)
  })
})

describe('cooldown, acknowledge, silence', () => {
  it('repeats while firing every repeat_ms; an ack stops repeats until resolved; a silence holds notifications', async () => {
    b = await setup({ config: channelConfig() })
    const store = b.queue.alerts
    await onlyRules(store, [{ id: 'dlq', kind: 'dlq_depth', queue: 'k', threshold: 0, repeat_ms: 200 }])
    const d = driver()
    await d.a.notifier.prepare()
    await deadLetters('k', 1)
    await d.round()
    await d.round() // within the cooldown: nothing
    await new Promise((r) => setTimeout(r, 220))
    await d.round() // past it: a repeat
    expect(bodies('/hook').map((n) => n.type)).toEqual(['firing', 'repeat'])
    await store.ack('dlq:k', 'alice')
    await new Promise((r) => setTimeout(r, 220))
    await d.round()
    expect(bodies('/hook').map((n) => n.type)).toEqual(['firing', 'repeat'])
    expect((await store.list())[0]!.acknowledged).toMatchObject({ by: 'alice' })
    // Resolved (the ack goes with it), fires again: notified again, not acknowledged.
    await b.queue.purgeDlq(0, 'k')
    await d.round()
    await deadLetters('k', 1)
    await d.round()
    expect(bodies('/hook').map((n) => n.type)).toEqual(['firing', 'repeat', 'purge', 'resolved', 'firing'])
    expect((await store.list())[0]!.acknowledged).toBeNull()
    // A silence over the queue: no repeat, no resolved; the alert still moves (history).
    const s = await store.addSilence({
      rule: null,
      queue: 'k',
      task_type: null,
      until: Date.now() + 60_000,
      comment: 'maint',
      created_by: 'bob',
    })
    await new Promise((r) => setTimeout(r, 220))
    await d.round()
    expect((await store.list())[0]!.silenced_by).toBe(s.id)
    await b.queue.purgeDlq(0, 'k')
    await d.round()
    await deadLetters('k', 1)
    await d.round()
    expect(bodies('/hook').map((n) => n.type)).toEqual([
      'firing',
      'repeat',
      'purge',
      'resolved',
      'firing',
      'purge',
    ])
    // The silence ends while it fires: the firing alert is notified then.
    expect(await store.deleteSilence(s.id, 'bob')).toBe(true)
    await d.round()
    expect(
      bodies('/hook')
        .map((n) => n.type)
        .slice(-1),
    ).toEqual(['firing'])
    const hist = (await store.history(100)).entries.map((h) => h.type)
    expect(hist).toEqual(expect.arrayContaining(['acknowledged', 'silenced', 'unsilenced', 'notified']))
  })

  it('decide(): pending, firing, repeat, ack, silence and resolve on a fake clock', () => {
    const rule = {
      id: 'r',
      kind: 'dlq_depth' as const,
      queue: '*',
      task_type: '*',
      threshold: 1,
      window_ms: 60_000,
      for_ms: 1000,
      severity: 'warning' as const,
      enabled: true,
      repeat_ms: null,
      min_count: 5,
      channels: [],
      description: '',
    }
    const cond = (active: boolean) => ({ id: 'r:q', rule, labels: { queue: 'q' }, value: 5, active })
    const ctx = (now: number, extra = {}) => ({
      now,
      acked: false,
      silence: null,
      repeatMs: 10_000,
      ...extra,
    })
    const p = decide(null, cond(true), ctx(0))!
    expect(p).toMatchObject({ next: { status: 'pending', since: 0 }, notify: null })
    expect(decide(p.next, cond(true), ctx(999))).toBeNull()
    const f = decide(p.next, cond(true), ctx(1000))!
    expect(f).toMatchObject({
      next: { status: 'firing', fired_at: 1000, last_sent: 1000, seq: 1 },
      notify: 'firing',
    })
    expect(decide(f.next, cond(true), ctx(10_999))).toBeNull()
    expect(decide(f.next, cond(true), ctx(11_000))).toMatchObject({
      notify: 'repeat',
      next: { seq: 2, last_sent: 11_000 },
    })
    expect(decide(f.next, cond(true), ctx(11_000, { acked: true }))).toBeNull()
    expect(decide(f.next, cond(true), ctx(11_000, { repeatMs: 0 }))).toBeNull()
    const sil = {
      id: 's',
      rule: null,
      queue: 'q',
      task_type: null,
      until: 1e9,
      comment: '',
      created_by: '',
      created_at: 0,
    }
    expect(decide(f.next, cond(true), ctx(11_000, { silence: sil }))).toBeNull()
    expect(decide(f.next, cond(false), ctx(12_000))).toMatchObject({
      next: null,
      notify: 'resolved',
      history: 'resolved',
    })
    expect(decide(f.next, cond(false), ctx(12_000, { silence: sil }))).toMatchObject({
      next: null,
      notify: null,
    })
    expect(decide(p.next, cond(false), ctx(500))).toMatchObject({ next: null, notify: null, history: null })
    // Fired under a silence: not notified; notified once the silence is gone.
    const fs = decide(p.next, cond(true), ctx(1000, { silence: sil }))!
    expect(fs).toMatchObject({ notify: null, next: { status: 'firing', last_sent: null } })
    expect(decide(fs.next, cond(true), ctx(2000))).toMatchObject({ notify: 'firing' })
    expect(decide(fs.next, cond(false), ctx(2000))).toMatchObject({ notify: null, history: 'resolved' })
  })
})

describe('one evaluator at a time', () => {
  /** Flips a dlq_depth condition on and off `rounds` times while `tick` runs; counts notifications per transition. */
  async function flips(rounds: number, tick: () => Promise<void>) {
    for (let i = 0; i < rounds; i++) {
      await deadLetters('e', 1)
      await tick()
      await b.queue.purgeDlq(0, 'e')
      await tick()
    }
  }

  it('three evaluators racing: exactly one notification per transition (fence + compare-and-set); control duplicates', async () => {
    b = await setup({ config: { ...channelConfig(), slackWebhookUrl: '', smtpHost: '' } })
    const store = b.queue.alerts
    await onlyRules(store, [{ id: 'dlq', kind: 'dlq_depth', queue: 'e', threshold: 0 }])
    const three = [driver(), driver(), driver()]
    await three[0]!.a.notifier.prepare()
    const holder = three[0]!.a
    expect(await store.lead(holder.token, 60_000)).toBe(true)
    // All three tick at once, each with the holder's token (a leader running two ticks) or its own (deposed).
    const tick = async () => {
      const reports = await Promise.all(
        three.map((d, i) => d.a.evaluator.tick(i === 2 ? d.a.token : holder.token)),
      )
      expect(reports[2]!.transitions).toBe(0) // not the lease holder: fenced out
    }
    await flips(6, tick)
    await holder.notifier.tick()
    await holder.notifier.settle()
    const per = new Map<string, number>()
    for (const n of bodies('/hook')) per.set(n.id, (per.get(n.id) ?? 0) + 1)
    expect([...per.values()].every((c) => c === 1)).toBe(true)
    const types = bodies('/hook').map((n) => n.type)
    expect(types.filter((t) => t === 'firing')).toHaveLength(6)
    expect(types.filter((t) => t === 'resolved')).toHaveLength(6)

    // Negative control: the same race with the fence and the compare-and-set switched off.
    http.received.length = 0
    class Unfenced extends AlertStore {
      // The same writes without the fence and the compare-and-set: plain commands.
      override async write(o: Parameters<AlertStore['write']>[0]) {
        const key = this.key(o.hash === ':state' ? 'state' : 'meta')
        if (o.value === null) await this.redis.hdel(key, o.field)
        else await this.redis.hset(key, o.field, o.value)
        if (o.notification) await this.notify(o.notification)
        return 'written' as const
      }
    }
    const unfenced = new Unfenced(b.queue.store)
    for (const d of three) (d.a.evaluator as unknown as { o: { store: AlertStore } }).o.store = unfenced
    await flips(3, async () => {
      await Promise.all(three.map((d) => d.a.evaluator.tick(holder.token)))
    })
    await holder.notifier.tick()
    await holder.notifier.settle()
    const firings = bodies('/hook').filter((n) => n.type === 'firing').length
    expect(firings).toBeGreaterThan(3)
  })

  it('three Alerting processes on the lease: one leader, failover on stop, one notification per transition', async () => {
    b = await setup({ config: { ...channelConfig(), slackWebhookUrl: '', smtpHost: '' } })
    const store = b.queue.alerts
    await onlyRules(store, [{ id: 'dlq', kind: 'dlq_depth', queue: 'f', threshold: 0 }])
    const procs = [0, 1, 2].map(
      () =>
        new Alerting({ queue: b.queue, config: b.config, log: silentLog, beatMs: 100, deliverEveryMs: 20 }),
    )
    for (const p of procs) p.start()
    try {
      await waitFor(() => procs.filter((p) => p.leader).length === 1)
      for (let i = 0; i < 4; i++) {
        await deadLetters('f', 1)
        await waitFor(() => bodies('/hook').filter((n) => n.type === 'firing').length === i + 1)
        if (i === 1) {
          // The leader stops: another takes over.
          const leader = procs.find((p) => p.leader)!
          await leader.stop()
          await waitFor(() => procs.filter((p) => p.leader).length === 1)
        }
        await b.queue.purgeDlq(0, 'f')
        await waitFor(() => bodies('/hook').filter((n) => n.type === 'resolved').length === i + 1)
      }
      await new Promise((r) => setTimeout(r, 300))
      const per = new Map<string, number>()
      for (const n of bodies('/hook')) per.set(n.id, (per.get(n.id) ?? 0) + 1)
      expect([...per.values()].every((c) => c === 1)).toBe(true)
      expect(bodies('/hook').filter((n) => n.type === 'firing')).toHaveLength(4)
    } finally {
      await Promise.all(procs.map((p) => p.stop()))
    }
  })
})

describe('digest', () => {
  it('sends the daily DLQ digest once a day after ALERT_DIGEST_AT', async () => {
    b = await setup({ config: { ...channelConfig(), alertDigestAt: '00:00' } })
    const store = b.queue.alerts
    await onlyRules(store, [])
    const d = driver({ alertDigestAt: '00:00' })
    await d.a.notifier.prepare()
    await deadLetters('dg', 2)
    await d.round()
    await d.round()
    const digests = bodies('/slack').filter((x) => JSON.stringify(x).includes('DLQ summary'))
    expect(digests).toHaveLength(1)
    const hook = bodies('/hook').find((n) => n.type === 'digest')!
    expect(hook.details).toMatchObject({ queues: [{ queue: 'dg', dlq: 2, dead_lettered: 2 }] })
    expect(smtp.mails.filter((m) => m.raw.includes('DLQ summary'))).toHaveLength(1)
    // Not due yet today: nothing.
    await store.redis.hdel(store.key('meta'), 'digest')
    await store.lead(d.a.token, 1000, true)
    const later = driver({ alertDigestAt: '23:59' })
    if (new Date().getUTCHours() < 23) {
      await later.round()
      expect(bodies('/hook').filter((n) => n.type === 'digest')).toHaveLength(1)
    }
  })
})
