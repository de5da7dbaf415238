/**
 * Maintenance: the scheduler, reclaimer and janitor, run by ONE worker of the fleet at a time
 * for every queue -- the holder of a lease (`<prefix>:leader`, script `lead`) that each worker
 * tries to take or renew on its heartbeat. A fleet of W workers serving Q queues then costs
 * Redis O(Q) calls per scheduler poll and O(in-flight) reclaim work per period, instead of
 * O(W × Q) (docs/decisions/0013). Leadership is for efficiency, not safety: every step is a
 * script that is safe to run twice, so two leaders for a moment (a stalled one that has not yet
 * noticed it lost the lease) do no harm.
 *
 * The queues maintained: those in the registry, those any live worker serves, and the
 * leader's own -- refreshed every few seconds.
 */
import type { Registry } from '../redis/registry.ts'
import type { Clock, JobStore } from '../redis/store.ts'
import type { FlowReleaser } from './flow-releaser.ts'
import { Janitor } from './janitor.ts'
import type { Logger } from './processor.ts'
import { Reclaimer } from './reclaimer.ts'
import { Scheduler } from './scheduler.ts'
import { Ticker } from './ticker.ts'

export interface MaintenanceOptions {
  store: JobStore
  registry: Registry
  clock: Clock
  log: Logger
  /** This worker: the lease token and the consumer the reclaimer claims to. */
  id: string
  /** The queues this worker serves (always maintained while it leads). */
  queues: readonly string[]
  claimIdleMs: number
  maxDeliveries: number
  schedulerPollMs: number
  janitorEveryMs: number
  queueForgetMs: number
  /** The lease lapses this long after its holder's last renewal. */
  leaseTtlMs: number
  /** TEST KNOB (DTQ_UNSAFE=no-leader): every worker maintains its own queues, as before ADR 0013. */
  everyWorker?: boolean
  /** NEGATIVE CONTROL ONLY (DTQ_UNSAFE=no-delayed-gating): promotes without the ZREM gate. */
  promote?: (
    store: JobStore,
    queue: string,
    limit: number,
  ) => Promise<{ moved: number; nextDue: number | null }>
  /** Drains flow outboxes and finishes stalled flow creations (ADR 0019). */
  flows?: FlowReleaser
  /** How often it sweeps them. */
  flowSweepMs?: number
  /** How often it tries the minute's histogram snapshot (default HISTORY_SNAPSHOT_MS). */
  historySnapshotMs?: number
  /** NEGATIVE CONTROL ONLY (DTQ_UNSAFE=no-memory-relief): never prune ahead of retention. */
  noMemoryRelief?: boolean
}

/** How often the leader re-reads which queues exist. */
const QUEUES_REFRESH_MS = 2000
/** How often the leader tries the minute's histogram snapshot (each queue gets one a minute at most). */
const HISTORY_SNAPSHOT_MS = 20_000
/** How often the leader checks Redis's memory use against its maxmemory. */
const PRESSURE_CHECK_MS = 2000

export class Maintenance {
  private readonly o: MaintenanceOptions
  private readonly tickers: Ticker[]
  private readonly janitor: Janitor
  private leading = false
  private queues: string[]
  private served = new Set<string>()
  private queuesAt = 0

  constructor(o: MaintenanceOptions) {
    this.o = o
    this.queues = [...o.queues]
    this.served = new Set(o.queues)
    const onError = (err: unknown, name: string) =>
      o.log.warn({ err: (err as Error).message, component: name }, 'background task failed')
    const scheduler = new Scheduler({
      store: o.store,
      clock: o.clock,
      pollMs: o.schedulerPollMs,
      promote: o.promote,
    })
    this.janitor = new Janitor({
      store: o.store,
      registry: o.registry,
      log: o.log,
      consumerIdleMs: o.claimIdleMs * 2,
      queueForgetMs: o.queueForgetMs,
    })
    const reclaimer = new Reclaimer({
      store: o.store,
      consumer: o.id,
      claimIdleMs: o.claimIdleMs,
      maxDeliveries: o.maxDeliveries,
      log: o.log,
    })
    this.tickers = [
      new Ticker({
        name: 'scheduler',
        everyMs: o.schedulerPollMs,
        onError,
        tick: async () => scheduler.tick(await this.currentQueues()),
      }),
      new Ticker({
        name: 'reclaimer',
        everyMs: Math.max(100, Math.floor(o.claimIdleMs / 2)),
        onError,
        tick: async () => reclaimer.tick(await this.currentQueues()),
      }),
      // Memory pressure is checked more often than the janitor's full sweep: a full Redis
      // refuses new work until it frees some (INFO memory: one cheap command).
      new Ticker({
        name: 'memory',
        everyMs: PRESSURE_CHECK_MS,
        onError,
        tick: async () => {
          if (!o.noMemoryRelief) await this.janitor.relievePressure(await this.currentQueues())
          return undefined
        },
      }),
      // What the workers' inline releases left behind (a worker killed between its completion
      // and the release, a cancel through the API): the outboxes are drained here too.
      new Ticker({
        name: 'flows',
        everyMs: o.flowSweepMs ?? 1000,
        onError,
        tick: async () => {
          if (o.flows) await o.flows.sweep(await this.currentQueues())
          return undefined
        },
      }),
      // The 24-hour latency charts: each queue's histograms as they are this minute (ADR 0026).
      new Ticker({
        name: 'history',
        everyMs: o.historySnapshotMs ?? HISTORY_SNAPSHOT_MS,
        onError,
        tick: async () => {
          const queues = await this.currentQueues()
          await Promise.all(queues.map((q) => o.store.snapshotHistograms(q)))
          return undefined
        },
      }),
      new Ticker({
        name: 'janitor',
        everyMs: o.janitorEveryMs,
        initialDelayMs: 1000,
        onError,
        tick: async () => this.janitor.tick(await this.currentQueues(), this.served),
      }),
    ]
  }

  /** Whether this worker runs the maintenance loops now. */
  get leader(): boolean {
    return this.leading
  }

  /** Takes or renews the lease (called on every heartbeat) and starts or stops the loops. */
  async beat(): Promise<void> {
    const lead = this.o.everyWorker ? true : await this.o.store.lead(this.o.id, this.o.leaseTtlMs)
    if (lead && !this.leading) {
      this.leading = true
      this.o.log.info({ worker: this.o.id }, 'maintenance leader: running scheduler, reclaimer, janitor')
      for (const t of this.tickers) t.start()
    } else if (!lead && this.leading) {
      this.leading = false
      this.o.log.info({ worker: this.o.id }, 'no longer the maintenance leader')
      await Promise.all(this.tickers.map((t) => t.stop()))
    }
  }

  /** Stops the loops and gives the lease up, so another worker takes over at its next heartbeat. */
  async stop(): Promise<void> {
    await Promise.all(this.tickers.map((t) => t.stop()))
    if (this.leading && !this.o.everyWorker)
      await this.o.store.lead(this.o.id, this.o.leaseTtlMs, true).catch(() => {})
    this.leading = false
  }

  private async currentQueues(): Promise<string[]> {
    if (this.o.everyWorker) return [...this.o.queues]
    const now = Date.now()
    if (now - this.queuesAt >= QUEUES_REFRESH_MS) {
      const [registered, workers] = await Promise.all([this.o.store.queues(), this.o.registry.list()])
      this.served = new Set([...this.o.queues, ...workers.flatMap((w) => w.queues)])
      this.queues = [...new Set([...this.o.queues, ...registered, ...this.served])].sort()
      this.queuesAt = now
    }
    return this.queues
  }
}
