/**
 * The alert notifier (ADR 0025): delivers the outbox's notifications through each configured
 * channel, run by the holder of the alerts lease. Each channel is a consumer group of the
 * outbox with one fixed consumer name, so a notification not yet delivered stays pending there
 * and whichever process leads next picks it up. A failed attempt is retried with exponential
 * backoff and jitter (ALERT_RETRY_BASE_MS, doubling, at most an hour) up to
 * ALERT_DELIVERY_ATTEMPTS, each attempt bounded by ALERT_DELIVERY_TIMEOUT_MS; channels go
 * independently, so a hanging receiver delays only its own channel. Nothing here is on a job's
 * path: it runs in its own loop, and a worker's processing never waits for it.
 *
 * Delivery is at least once: a leader killed after a receiver took a notification but before
 * it was acknowledged sends it again -- receivers dedupe by its `id`.
 */

import type { Channel } from '../alerts/channels.ts'
import type { ChannelName } from '../queue/alert-rules.ts'
import type { AlertStore } from '../redis/alerts.ts'
import type { Clock } from '../redis/store.ts'
import type { Logger } from './processor.ts'

export interface NotifierOptions {
  store: AlertStore
  channels: Channel[]
  clock: Clock
  log: Logger
  attempts: number
  retryBaseMs: number
  /** Jitter source (tests pass a fixed one). */
  random?: () => number
}

/** Read this many notifications per channel and round. */
const BATCH = 50
const MAX_BACKOFF_MS = 3_600_000

export class AlertNotifier {
  private readonly o: NotifierOptions
  private readonly busy = new Set<ChannelName>()
  private readonly grouped = new Set<ChannelName>()
  private readonly running = new Set<Promise<void>>()

  constructor(o: NotifierOptions) {
    this.o = o
  }

  /** The delay before attempt n + 1 after n failed ones (n >= 1). */
  backoffMs(n: number): number {
    const base = Math.min(MAX_BACKOFF_MS, this.o.retryBaseMs * 2 ** (n - 1))
    return Math.round(base * (0.8 + 0.4 * (this.o.random ?? Math.random)()))
  }

  /**
   * One round: every channel not already busy starts working through its notifications; the
   * call does not wait for them (a slow channel never holds the round, the evaluator or another
   * channel).
   */
  async tick(): Promise<void> {
    for (const ch of this.o.channels) {
      if (this.busy.has(ch.name)) continue
      this.busy.add(ch.name)
      const p = this.drain(ch)
        .catch((err) => {
          // The outbox or its group was deleted behind our back (FLUSHALL, a restore): made again.
          if (/NOGROUP/.test((err as Error).message)) this.grouped.delete(ch.name)
          this.o.log.warn({ err: (err as Error).message, channel: ch.name }, 'alert delivery failed')
        })
        .finally(() => {
          this.busy.delete(ch.name)
          this.running.delete(p)
        })
      this.running.add(p)
    }
  }

  /** Waits for the rounds in flight (stop, tests). */
  async settle(): Promise<void> {
    await Promise.all([...this.running])
  }

  /** Creates the channels' groups (once per process and channel). */
  async prepare(): Promise<void> {
    for (const ch of this.o.channels) {
      if (this.grouped.has(ch.name)) continue
      await this.o.store.ensureGroup(ch.name)
      this.grouped.add(ch.name)
    }
  }

  private async drain(ch: Channel): Promise<void> {
    const { store, clock } = this.o
    if (!this.grouped.has(ch.name)) {
      await store.ensureGroup(ch.name)
      this.grouped.add(ch.name)
    }
    const items = await store.pendingAndNew(ch.name, BATCH)
    for (const { entry, n } of items) {
      // Trimmed away (the outbox's bound) or not for this channel: nothing to send.
      if (!n || (n.channels?.length && !n.channels.includes(ch.name))) {
        await store.done(entry, ch.name)
        continue
      }
      const prev = await store.attempt(entry, ch.name)
      if (prev.next > clock.now()) continue
      const n1 = prev.n + 1
      try {
        await ch.send(n)
        await store.done(entry, ch.name)
        await store.count(ch.name, 'sent')
      } catch (err) {
        const error = (err as Error).message
        if (n1 >= this.o.attempts) {
          await store.done(entry, ch.name)
          await store.count(ch.name, 'failed')
          await store.addHistory({
            type: 'delivery_failed',
            at: clock.now(),
            alert: n.alert?.id,
            channel: ch.name,
            error,
          })
          this.o.log.warn(
            { channel: ch.name, notification: n.id, attempts: n1, error },
            'alert notification given up',
          )
        } else {
          await store.setAttempt(entry, ch.name, n1, clock.now() + this.backoffMs(n1))
          await store.count(ch.name, 'retried')
        }
      }
    }
  }
}
