/**
 * Heartbeat: every `everyMs` (2 s) a worker says it is alive and picks up what changed. In this
 * order: it checks its own fetch loop for a stall (a running worker with free slots starts a
 * fetch or a wait at least every block time, ~1 s: one that has not for 10 s is stuck — a bug,
 * logged with the loop's state, and the loop is kicked); takes a command left in its registry
 * entry (the pub/sub notice may have been missed); reads the paused queues (one SMEMBERS);
 * takes or renews the maintenance lease; writes its registry entry (TTL 5 heartbeats).
 */
import { hostname } from 'node:os'
import type { Registry, WorkerCommand, WorkerState } from '../redis/registry.ts'
import type { Clock, JobStore } from '../redis/store.ts'
import type { Maintenance } from './maintenance.ts'
import type { Logger, Processor } from './processor.ts'
import { Ticker } from './ticker.ts'

export interface HeartbeatOptions {
  id: string
  everyMs: number
  store: JobStore
  registry: Registry
  processor: Processor
  maintenance: Maintenance
  clock: Clock
  log: Logger
  queues: readonly string[]
  /** The worker's concurrency now (a command may change it). */
  concurrency: () => number
  startedAt: () => number
  /** The worker's state now (`idle` and `stopped` are reported as `stopping`). */
  state: () => WorkerState | 'idle' | 'stopped'
  onCommand: (cmd: WorkerCommand) => void
  /** Each beat, before the paused queues are read: picks up new partitions of served queues. */
  refreshQueues?: () => Promise<void>
}

/** No fetch or wait started for this long while running with free slots: the loop is stuck. */
const STALL_MS = 10_000

export class Heartbeat {
  private readonly o: HeartbeatOptions
  private readonly ticker: Ticker

  constructor(o: HeartbeatOptions) {
    this.o = o
    this.ticker = new Ticker({
      name: 'heartbeat',
      everyMs: o.everyMs,
      onError: (err, name) =>
        o.log.warn({ err: (err as Error).message, component: name }, 'background task failed'),
      tick: () => this.beat(),
    })
  }

  start(): void {
    this.ticker.start()
  }

  /** The next beat now (after a command changed the worker's state). */
  poke(): void {
    this.ticker.poke()
  }

  stop(): Promise<void> {
    return this.ticker.stop()
  }

  async beat(): Promise<undefined> {
    const { processor, registry, store } = this.o
    this.checkStall()
    const cmd = await registry.takeCommand(this.o.id)
    if (cmd) this.o.onCommand(cmd)
    await this.o.refreshQueues?.()
    const paused = await store.pausedQueues([...this.o.queues])
    const resumed = [...processor.pausedQueues].some((q) => !paused.has(q))
    processor.pausedQueues = paused
    if (resumed) processor.refresh()
    const state = this.o.state()
    if (state === 'running' || state === 'paused') await this.o.maintenance.beat()
    await registry.beat(
      {
        id: this.o.id,
        host: hostname(),
        pid: process.pid,
        queues: [...this.o.queues],
        concurrency: this.o.concurrency(),
        active: processor.active,
        processed: processor.processed,
        failed: processor.failed,
        failed_by_type: Object.fromEntries(processor.failedByType),
        started_at: this.o.startedAt(),
        heartbeat_at: this.o.clock.now(),
        state: state === 'idle' || state === 'stopped' ? 'stopping' : state,
      },
      this.o.everyMs * 5,
      {
        running: processor.runningJobs(),
        recent_failures: processor.activity.recentFailures(),
        rates: processor.activity.rates(),
      },
    )
    return undefined
  }

  private checkStall(): void {
    const st = this.o.processor.debugState()
    if (
      this.o.state() === 'running' &&
      !st.paused &&
      // No fetch while the lease thread is down is by design (invariant 5), not a stall.
      !st.leasesDown &&
      !(st.pausedQueues as string[]).length &&
      (st.free as number) > 0 &&
      (st.lastFetchStartedMsAgo as number) > STALL_MS
    ) {
      // A stall is a bug; say so loudly, and restart the loop rather than sit idle for ever.
      this.o.log.error(st, 'fetch loop stalled: no fetch for 10 s; restarting it')
      this.o.processor.kick()
    }
  }
}
