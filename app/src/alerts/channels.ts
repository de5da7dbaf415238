/**
 * Alert channels (ADR 0025): a generic webhook (JSON, HMAC-signed), Slack's incoming-webhook
 * format (text + blocks) and email over SMTP (nodemailer). Each send is one attempt bounded by
 * a timeout; retries and backoff belong to the notifier (alert-notifier.ts).
 *
 * Webhook signature: `X-DTQ-Timestamp: <ms>` and `X-DTQ-Signature: sha256=<hex>` where hex is
 * HMAC-SHA256(ALERT_WEBHOOK_SECRET, `<timestamp>.<raw body>`); a receiver recomputes it over
 * the raw bytes, compares in constant time and refuses old timestamps (replays).
 */
import { createHmac, randomBytes } from 'node:crypto'
import nodemailer from 'nodemailer'
import type { Config } from '../config.ts'
import type { ChannelName } from '../queue/alert-rules.ts'
import type { AlertStore, Notification } from '../redis/alerts.ts'

export type ChannelSettings = Pick<
  Config,
  | 'alertWebhookUrl'
  | 'alertWebhookSecret'
  | 'slackWebhookUrl'
  | 'smtpHost'
  | 'smtpPort'
  | 'smtpUser'
  | 'smtpPassword'
  | 'smtpFrom'
  | 'smtpSecurity'
  | 'alertEmail'
  | 'alertDeliveryTimeoutMs'
>

export interface Channel {
  name: ChannelName
  /** One attempt; throws on failure (a non-2xx answer, a timeout, an SMTP error). */
  send(n: Notification): Promise<void>
}

/** The signature of a webhook body (what a receiver recomputes). */
export function signWebhook(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`
}

async function post(url: string, body: string, headers: Record<string, string>, timeoutMs: number) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'user-agent': 'dtq-alerts', ...headers },
    body,
    signal: AbortSignal.timeout(timeoutMs),
    redirect: 'manual',
  })
  // Drain the body so the socket is reused or closed.
  await res.arrayBuffer().catch(() => undefined)
  if (res.status < 200 || res.status >= 300) throw new Error(`HTTP ${res.status}`)
}

const EMOJI: Record<string, string> = {
  critical: ':rotating_light:',
  warning: ':warning:',
  info: ':information_source:',
}

/** The Slack message: a fallback text and blocks (header, the text, the labels). */
export function slackMessage(n: Notification): object {
  const mark = n.type === 'resolved' ? ':white_check_mark:' : (EMOJI[n.severity] ?? '')
  const labels = n.alert
    ? Object.entries(n.alert.labels)
        .map(([k, v]) => `*${k}*: ${v}`)
        .join('   ')
    : ''
  return {
    text: `${mark} ${n.title}: ${n.text}`,
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: n.title.slice(0, 150) } },
      { type: 'section', text: { type: 'mrkdwn', text: `${mark} ${n.text}`.slice(0, 3000) } },
      ...(labels ? [{ type: 'context', elements: [{ type: 'mrkdwn', text: labels }] }] : []),
    ],
  }
}

/** The email's subject and plain-text body. */
export function emailMessage(n: Notification): { subject: string; text: string } {
  const lines = [n.text, '']
  if (n.alert) {
    lines.push(`alert:     ${n.alert.id}`, `rule:      ${n.alert.rule} (${n.alert.kind})`)
    for (const [k, v] of Object.entries(n.alert.labels)) lines.push(`${k.padEnd(10)} ${v}`)
    lines.push(`value:     ${n.alert.value}`, `threshold: ${n.alert.threshold}`)
  }
  if (n.details) lines.push('', JSON.stringify(n.details, null, 2))
  lines.push('', `sent by DTQ at ${new Date(n.at).toISOString()} (notification ${n.id})`)
  return { subject: `[DTQ ${n.severity}] ${n.title}`, text: lines.join('\n') }
}

/** The channels the settings configure (none when nothing is set: alerting costs no I/O). */
export function configuredChannels(c: ChannelSettings): Channel[] {
  const out: Channel[] = []
  const timeout = c.alertDeliveryTimeoutMs
  if (c.alertWebhookUrl) {
    out.push({
      name: 'webhook',
      send: async (n) => {
        const body = JSON.stringify(n)
        const ts = String(Date.now())
        const headers: Record<string, string> = { 'x-dtq-timestamp': ts, 'x-dtq-notification-id': n.id }
        if (c.alertWebhookSecret) headers['x-dtq-signature'] = signWebhook(c.alertWebhookSecret, ts, body)
        await post(c.alertWebhookUrl, body, headers, timeout)
      },
    })
  }
  if (c.slackWebhookUrl) {
    out.push({
      name: 'slack',
      send: (n) => post(c.slackWebhookUrl, JSON.stringify(slackMessage(n)), {}, timeout),
    })
  }
  if (c.smtpHost && c.alertEmail) {
    const transport = nodemailer.createTransport({
      host: c.smtpHost,
      port: c.smtpPort,
      secure: c.smtpSecurity === 'tls',
      ignoreTLS: c.smtpSecurity === 'none',
      requireTLS: c.smtpSecurity === 'starttls' && !!c.smtpUser,
      auth: c.smtpUser ? { user: c.smtpUser, pass: c.smtpPassword } : undefined,
      connectionTimeout: timeout,
      greetingTimeout: timeout,
      socketTimeout: timeout,
    })
    const from = c.smtpFrom || c.smtpUser || 'dtq@localhost'
    out.push({
      name: 'email',
      send: async (n) => {
        const { subject, text } = emailMessage(n)
        let timer: NodeJS.Timeout | undefined
        const deadline = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`timed out after ${timeout} ms`)), timeout)
        })
        try {
          await Promise.race([
            transport.sendMail({
              from,
              to: c.alertEmail,
              subject,
              text,
              headers: { 'X-DTQ-Notification-Id': n.id },
            }),
            deadline,
          ])
        } finally {
          clearTimeout(timer)
        }
      },
    })
  }
  return out
}

/**
 * A test alert through each configured channel, now (not through the outbox): what `POST
 * /alerts/test` and `dtq alerts test` answer, per channel. Counted like any delivery.
 */
export async function sendTestAlert(
  channels: Channel[],
  store: AlertStore,
  by: string,
): Promise<Array<{ channel: ChannelName; ok: boolean; ms: number; error: string | null }>> {
  const at = store.clock.now()
  const n: Notification = {
    id: `test#${at}#${randomBytes(3).toString('hex')}`,
    type: 'test',
    at,
    severity: 'info',
    title: '[TEST] DTQ test alert',
    text: `A test alert sent by ${by}: this channel works.`,
  }
  const results = await Promise.all(
    channels.map(async (ch) => {
      const t0 = Date.now()
      try {
        await ch.send(n)
        await store.count(ch.name, 'sent')
        return { channel: ch.name, ok: true, ms: Date.now() - t0, error: null }
      } catch (err) {
        await store.count(ch.name, 'failed')
        return { channel: ch.name, ok: false, ms: Date.now() - t0, error: (err as Error).message }
      }
    }),
  )
  await store.addHistory({
    type: 'test',
    at,
    by,
    summary:
      results.map((r) => `${r.channel} ${r.ok ? 'ok' : `failed: ${r.error}`}`).join(', ') ||
      'no channel configured',
  })
  return results
}
