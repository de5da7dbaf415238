/**
 * Alerting in a process (ADR 0025): every `dtq api`, `dtq worker` and `dtq dev` process runs
 * one, so any deployment shape alerts; ONE of them at a time -- the holder of the alerts lease
 * (`<prefix>:{:alerts}:leader`, function `lead`, renewed every `beatMs`, lapsing after three)
 * -- evaluates the rules and delivers notifications. The others only renew their bid. Three
 * loops, each its own Ticker, so none waits for another: the lease, the evaluator, the notifier.
 *
 * Stop order: the loops stop (a delivery in flight finishes within its timeout), then the lease
 * is given up so another process takes over at its next beat.
 */
import { randomBytes } from 'node:crypto'
import { configuredChannels } from '../alerts/channels.ts'
import type { Config } from '../config.ts'
import type { Queue } from '../queue/queue.ts'
import type { AlertStore } from '../redis/alerts.ts'
import { AlertEvaluator } from './alert-evaluator.ts'
import { AlertNotifier } from './alert-notifier.ts'
import type { Logger } from './processor.ts'
import { Ticker } from './ticker.ts'

export interface AlertingOptions {
  queue: Queue
  config: Config
  log: Logger
  /** How often the lease is renewed (it lapses after three); default 2 s. */
  beatMs?: number
  /** How often the notifier looks at the outbox; default 500 ms. */
  deliverEveryMs?: number
  /** Tests: a fixed jitter. */
  random?: () => number
  /** NEGATIVE CONTROL ONLY (DTQ_UNSAFE=no-alert-lease): every process evaluates, unfenced. */
  unsafe?: { everyProcess: boolean; write: AlertStore['write'] }
}

export class Alerting {
  readonly token = `alerts-${randomBytes(6).toString('hex')}`
  readonly evaluator: AlertEvaluator
  readonly notifier: AlertNotifier
  private readonly o: AlertingOptions
  private readonly lease: Ticker
  private readonly evaluating: Ticker
  private readonly delivering: Ticker
  private leading = false

  constructor(o: AlertingOptions) {
    this.o = o
    const { queue, config, log } = o
    const store = queue.alerts
    const beatMs = o.beatMs ?? 2000
    const onError = (err: unknown, name: string) =>
      log.warn({ err: (err as Error).message, component: name }, 'alerting task failed')
    this.evaluator = new AlertEvaluator({ queue, store, settings: config, write: o.unsafe?.write })
    this.notifier = new AlertNotifier({
      store,
      channels: configuredChannels(config),
      clock: queue.clock,
      log,
      attempts: config.alertDeliveryAttempts,
      retryBaseMs: config.alertRetryBaseMs,
      random: o.random,
    })
    this.lease = new Ticker({
      name: 'alerts-lease',
      everyMs: beatMs,
      onError,
      tick: async () => {
        // The channels' consumer groups exist before this process may write a notification: a
        // group made later starts after it, and that notification would never be delivered.
        await this.notifier.prepare()
        const lead = o.unsafe?.everyProcess ? true : await store.lead(this.token, beatMs * 3)
        if (lead !== this.leading) {
          this.leading = lead
          log.info(
            { token: this.token },
            lead ? 'alerts leader: evaluating rules' : 'no longer the alerts leader',
          )
          if (lead) this.evaluating.poke()
        }
        return undefined
      },
    })
    this.evaluating = new Ticker({
      name: 'alerts-evaluator',
      everyMs: config.alertEvalIntervalMs,
      onError,
      tick: async () => {
        if (this.leading) await this.evaluator.tick(this.token)
        return undefined
      },
    })
    this.delivering = new Ticker({
      name: 'alerts-notifier',
      everyMs: o.deliverEveryMs ?? 500,
      onError,
      tick: async () => {
        if (this.leading) await this.notifier.tick()
        return undefined
      },
    })
  }

  get leader(): boolean {
    return this.leading
  }

  start(): void {
    if (!this.o.config.alertsEnabled) return
    this.lease.start()
    this.evaluating.start()
    this.delivering.start()
  }

  async stop(): Promise<void> {
    await Promise.all([this.lease.stop(), this.evaluating.stop(), this.delivering.stop()])
    await this.notifier.settle()
    if (this.leading) await this.o.queue.alerts.lead(this.token, 1000, true).catch(() => {})
    this.leading = false
  }
}
