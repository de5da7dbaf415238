/**
 * Worker: a pool that serves some queues with some concurrency. It owns its components and
 * their start/stop order:
 *
 *   Processor   fetches and runs jobs, records outcomes (fenced)
 *   LeaseKeeper renews running jobs' leases from a thread of its own
 *   Maintenance while this worker holds the fleet's maintenance lease: the Scheduler (due
 *               delayed jobs to their streams), the Reclaimer (lapsed leases, poison → DLQ)
 *               and the Janitor (bounds what grows), for every queue
 *   Heartbeat   registry entry, control commands (pause/resume/drain), paused queues, the
 *               maintenance lease
 *   ScheduleRunner  fires due schedules, in every worker, no lease (ADR 0018: the fire is a
 *               compare-and-set, so any number of runners make one job per fire time)
 *
 * Usage:
 *   const worker = new Worker(redis, config)
 *   worker.handle('send_email', async (job, ctx) => { ... })
 *   await worker.start()
 *   ...
 *   await worker.close()   // graceful: see the shutdown order in close()
 */
import { hostname } from 'node:os'
import { type Config, checkConfig } from '../config.ts'
import { Queue } from '../queue/queue.ts'
import { BULK_JOBS_TASK, DLQ_RETRY_TASK } from '../queue/system-tasks.ts'
import { checkName, TASK_TYPE_PATTERN, throwIfProblems } from '../queue/validate.ts'
import { RedisClock } from '../redis/clock.ts'
import {
  connectRedis,
  createRedis,
  type RedisClient,
  redisTarget,
  whenRedisAvailable,
} from '../redis/connection.ts'
import { FlowStore } from '../redis/flows.ts'
import { parseWorkerCommand, Registry, type WorkerCommand, type WorkerState } from '../redis/registry.ts'
import { ScheduleStore } from '../redis/schedules.ts'
import { type Clock, JobStore } from '../redis/store.ts'
import { EntryWaiter } from '../redis/stream-wait.ts'
import { bulkJobsHandler } from './bulk-jobs.ts'
import { dlqRetryHandler } from './dlq-retry.ts'
import { FlowReleaser } from './flow-releaser.ts'
import { builtinHandlers, type Handler } from './handlers.ts'
import { Heartbeat } from './heartbeat.ts'
import { LeaseKeeper } from './lease-keeper.ts'
import { Maintenance } from './maintenance.ts'
import { FETCHES_IN_FLIGHT, type Logger, Processor } from './processor.ts'
import { ScheduleRunner, type ScheduleRunnerOptions } from './schedule-runner.ts'

export type WorkerSettings = Pick<
  Config,
  | 'redisUrl'
  | 'keyPrefix'
  | 'redisCommandTimeoutMs'
  | 'workerConcurrency'
  | 'workerQueues'
  | 'leaseMs'
  | 'claimIdleMs'
  | 'maxDeliveries'
  | 'shutdownTimeoutMs'
  | 'initialBackoffMs'
  | 'backoffMultiplier'
  | 'maxBackoffMs'
  | 'maxPayloadBytes'
  | 'eventsMaxLen'
  | 'completedRetentionS'
  | 'failedRetentionS'
  | 'defaultQueue'
  | 'maxRetries'
  | 'jobTimeoutMs'
  | 'idempotencyTtlS'
  | 'queueForgetS'
> &
  Partial<
    Pick<
      Config,
      | 'testClockSkewMs'
      | 'maxQueues'
      | 'redisClusterNodes'
      | 'redisSentinels'
      | 'redisSentinelMaster'
      | 'enqueueWaitReplicas'
      | 'flowCreateGraceMs'
      | 'flowRetentionS'
      | 'enqueueWaitTimeoutMs'
      | 'maxSnoozes'
    >
  >

export interface WorkerOptions {
  /** Default: Redis's clock (a RedisClock, ADR 0012). A given clock is used as is. */
  clock?: Clock
  log?: Logger
  /** Register the built-in demo task types (echo, sleep, fail, cpu, synthetic). Default true. */
  builtins?: boolean
  /** Negative controls for the tests: switch a safety mechanism off. */
  unsafe?: {
    noLeaseRenewal?: boolean
    noLeaseRestart?: boolean
    noHandback?: boolean
    /** Promotes due jobs (instead of the store's gated promote). */
    promote?: (
      store: JobStore,
      queue: string,
      limit: number,
    ) => Promise<{ moved: number; nextDue: number | null }>
    /** The epoch an outcome is written under (instead of the delivery's: no fencing). */
    epochOf?: (store: JobStore, queue: string, id: string) => Promise<number>
    /** Every worker runs scheduler, reclaimer and janitor for its own queues (no lease). */
    noLeader?: boolean
    /** No completed job is removed before its retention, whatever Redis's memory use. */
    noMemoryRelief?: boolean
    /** Fires schedules without the compare-and-set (instead of the schedule_fire function's). */
    scheduleFire?: ScheduleRunnerOptions['fire']
    /** Drains a flow outbox (instead of FlowStore.drain: releases without counting parents). */
    flowDrain?: (flows: FlowStore, queue: string) => Promise<number>
  }
  /** Run the schedule runner (ADR 0018; default true: every worker fires due schedules). */
  schedules?: boolean
  heartbeatMs?: number
  schedulerPollMs?: number
  janitorEveryMs?: number
  /** How often the maintenance leader drains flow outboxes (default 1000). */
  flowSweepMs?: number
  /** How often the maintenance leader tries the minute's histogram snapshot (default 20000; ADR 0026). */
  historySnapshotMs?: number
  random?: () => number
}

const silent: Logger = { info() {}, warn() {}, error() {}, debug() {} }

/**
 * Settings may come from code rather than loadConfig(): they are checked by the same rules
 * (config.ts), each and between them.
 */
function validateWorkerSettings(s: WorkerSettings): void {
  throwIfProblems(checkConfig(s), 'invalid worker settings')
}

export class Worker {
  readonly id: string
  readonly settings: WorkerSettings
  readonly store: JobStore
  readonly flowReleaser: FlowReleaser
  readonly registry: Registry
  readonly clock: Clock
  state: WorkerState | 'idle' | 'stopped' = 'idle'
  private readonly handlers = new Map<string, Handler>()
  /** The physical queues served: WORKER_QUEUES, each partitioned queue with its partitions. */
  private readonly queues: string[]
  private readonly redis: RedisClient
  private readonly waiter: EntryWaiter
  private readonly fetchConns: RedisClient[]
  private readonly subscriber: RedisClient
  private readonly opts: WorkerOptions
  private readonly log: Logger
  private readonly schedules: ScheduleRunner | undefined
  private readonly processor: Processor
  private readonly leases: LeaseKeeper
  private readonly maintenance: Maintenance
  private readonly heartbeat: Heartbeat
  private readonly ownClock: RedisClock | undefined
  private startedAt = 0
  private closing: Promise<void> | undefined
  /** The step a shutdown is at: what a forced exit (invariant 35) says it abandoned. */
  shutdownStep = ''
  /** Resolves when the worker has stopped (after close() or a drain command). */
  readonly stopped: Promise<void>
  private resolveStopped!: () => void

  constructor(settings: WorkerSettings, opts: WorkerOptions = {}) {
    validateWorkerSettings(settings)
    this.settings = settings
    this.queues = [...settings.workerQueues]
    this.opts = opts
    this.log = opts.log ?? silent
    const host = hostname()
      .replace(/[^A-Za-z0-9_.-]/g, '-')
      .slice(0, 100)
    this.id = `${host}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`
    const conn = { target: redisTarget(settings), commandTimeoutMs: settings.redisCommandTimeoutMs }
    this.redis = createRedis({ ...conn, name: `dtq-worker-${this.id}` })
    this.subscriber = createRedis({ ...conn, blocking: true })
    // The fetch calls a worker keeps in flight each go on a connection of their own: Redis writes
    // the replies to one client's pipelined calls together, which would lock them in step.
    this.fetchConns = Array.from({ length: FETCHES_IN_FLIGHT - 1 }, (_, i) =>
      createRedis({ ...conn, name: `dtq-worker-${this.id}-fetch${i + 1}` }),
    )
    const storeOpts = {
      prefix: settings.keyPrefix,
      eventsMaxLen: settings.eventsMaxLen,
      completedRetentionS: settings.completedRetentionS,
      failedRetentionS: settings.failedRetentionS,
      maxQueues: settings.maxQueues,
    }
    this.ownClock = opts.clock
      ? undefined
      : new RedisClock(this.redis, {
          skewMs: settings.testClockSkewMs,
          warn: (fields, message) => this.log.warn(fields, message),
        })
    this.clock = opts.clock ?? this.ownClock!
    this.store = new JobStore(this.redis, { ...storeOpts, clock: this.clock })
    this.waiter = new EntryWaiter(
      () => createRedis({ ...conn, commandTimeoutMs: conn.commandTimeoutMs + 2000, blocking: true }),
      this.store.keys,
      this.redis,
    )
    this.registry = new Registry(this.redis, this.store.keys)
    this.stopped = new Promise((r) => {
      this.resolveStopped = r
    })

    this.leases = new LeaseKeeper(
      {
        redis: conn.target,
        commandTimeoutMs: settings.redisCommandTimeoutMs,
        store: storeOpts,
        consumer: this.id,
        leaseMs: settings.leaseMs,
        clockShift: this.ownClock?.shift,
      },
      {
        onLost: (q, id, epoch) => {
          if (opts.unsafe?.epochOf) return // the negative control ignores lost leases too
          const r = this.processor.disown(q, id, epoch, 'lease_lost')
          if (r && !r.finished) this.log.warn({ job_id: id, queue: q }, 'lease lost; job abandoned')
        },
        onExpired: (q, id, epoch) => {
          // Past its timeout and grace, a wedged handler lets go of its job: it will be reclaimed.
          if (this.processor.disown(q, id, epoch, 'lease_lost'))
            this.log.warn({ job_id: id, queue: q }, 'job overran its timeout; lease released')
        },
        onCancel: (q, id) => this.processor.cancel(q, id),
        onError: (message) => this.log.warn({ err: message }, 'lease renewal failed'),
        onThreadDown: (up, reason) => {
          this.processor.leasesDown = !up
          if (up) {
            this.log.warn({ reason }, 'lease thread restarted; taking work again')
            this.processor.kick()
          } else this.log.error({ reason }, 'lease thread died; taking no new work until it is restarted')
        },
        held: () => this.processor.leases(),
      },
      !opts.unsafe?.noLeaseRenewal,
      !opts.unsafe?.noLeaseRestart,
    )
    this.flowReleaser = new FlowReleaser({
      flows: new FlowStore(this.store, { retentionS: settings.flowRetentionS }),
      log: this.log,
      createGraceMs: settings.flowCreateGraceMs ?? 30_000,
      drain: opts.unsafe?.flowDrain,
    })
    this.processor = new Processor({
      store: this.store,
      fetchStores: this.fetchConns.map((r) => new JobStore(r, { ...storeOpts, clock: this.clock })),
      waiter: this.waiter,
      consumer: this.id,
      queues: this.queues,
      concurrency: settings.workerConcurrency,
      handlers: this.handlers,
      backoff: {
        initialMs: settings.initialBackoffMs,
        multiplier: settings.backoffMultiplier,
        maxMs: settings.maxBackoffMs,
      },
      leases: this.leases,
      log: this.log,
      maxResultBytes: settings.maxPayloadBytes,
      maxSnoozes: settings.maxSnoozes,
      timeoutGraceMs: Math.max(settings.claimIdleMs, 1000),
      random: opts.random,
      epochOf: opts.unsafe?.epochOf,
      releaseFlows: (q) => this.flowReleaser.kick(q),
    })

    const heartbeatMs = opts.heartbeatMs ?? 2000
    this.maintenance = new Maintenance({
      store: this.store,
      registry: this.registry,
      clock: this.clock,
      log: this.log,
      id: this.id,
      queues: this.queues,
      claimIdleMs: settings.claimIdleMs,
      maxDeliveries: settings.maxDeliveries,
      schedulerPollMs: opts.schedulerPollMs ?? 500,
      janitorEveryMs: opts.janitorEveryMs ?? 30_000,
      queueForgetMs: settings.queueForgetS * 1000,
      leaseTtlMs: heartbeatMs * 3,
      everyWorker: opts.unsafe?.noLeader,
      promote: opts.unsafe?.promote,
      noMemoryRelief: opts.unsafe?.noMemoryRelief,
      flows: this.flowReleaser,
      flowSweepMs: opts.flowSweepMs,
      historySnapshotMs: opts.historySnapshotMs,
    })
    this.schedules =
      opts.schedules === false
        ? undefined
        : new ScheduleRunner({
            schedules: new ScheduleStore(this.store),
            clock: this.clock,
            fire: opts.unsafe?.scheduleFire,
            onError: (err) => this.log.warn({ err: (err as Error).message }, 'schedule runner failed'),
          })
    this.heartbeat = new Heartbeat({
      id: this.id,
      everyMs: heartbeatMs,
      store: this.store,
      registry: this.registry,
      processor: this.processor,
      maintenance: this.maintenance,
      clock: this.clock,
      log: this.log,
      queues: this.queues,
      concurrency: () => this.processor.concurrency,
      startedAt: () => this.startedAt,
      state: () => this.state,
      onCommand: (cmd) => this.command(cmd),
      refreshQueues: () => this.servePartitions(),
    })
    if (opts.builtins !== false) for (const [t, h] of Object.entries(builtinHandlers)) this.handlers.set(t, h)
    const admin = new Queue(this.redis, settings, { clock: this.clock })
    this.handlers.set(DLQ_RETRY_TASK, dlqRetryHandler(admin))
    this.handlers.set(BULK_JOBS_TASK, bulkJobsHandler(admin))
  }

  /**
   * Serves every partition of the queues it was given (ADR 0017): the list the processor,
   * maintenance and heartbeat share is updated in place when a queue gained partitions. Their
   * groups exist already (setPartitions makes them before it raises the count).
   */
  private async servePartitions(): Promise<void> {
    const names = await this.store.partitionNames()
    const want = this.settings.workerQueues.flatMap((q) => names.get(q) ?? [q])
    if (want.length === this.queues.length && want.every((q, i) => q === this.queues[i])) return
    this.queues.splice(0, this.queues.length, ...want)
    this.log.info({ worker: this.id, queues: this.queues }, 'serving partitions')
    this.processor.refresh() // a round through every queue next: a wait would not see new ones
  }

  /** Registers the handler of a task type (replacing any earlier one, built-ins included). */
  handle(taskType: string, handler: Handler): this {
    const problems: string[] = []
    checkName(problems, 'task_type', taskType, TASK_TYPE_PATTERN, '1-128 letters, digits, _ . : / -')
    if (typeof handler !== 'function') problems.push('handler must be a function')
    throwIfProblems(problems, 'invalid handler')
    this.handlers.set(taskType, handler)
    return this
  }

  get active(): number {
    return this.processor.active
  }
  get processed(): number {
    return this.processor.processed
  }

  async start(): Promise<void> {
    if (this.state !== 'idle') throw new Error(`worker already ${this.state}`)
    this.subscriber.on('message', (channel: string, message: string) => this.onMessage(channel, message))
    // Every step is idempotent: a start that meets a Redis outage waits it out (up to a minute).
    await whenRedisAvailable(
      async () => {
        await connectRedis(this.redis, 60_000)
        await this.ownClock?.start()
        await connectRedis(this.subscriber, 60_000)
        await Promise.all(this.fetchConns.map((r) => connectRedis(r, 60_000)))
        // Registered first: a queue beyond MAX_QUEUES stops the start before anything is written for it.
        for (const q of this.settings.workerQueues) await this.store.registerQueue(q)
        await Promise.all(this.settings.workerQueues.map((q) => this.store.ensureGroups(q)))
        await this.servePartitions()
        await this.leases.start()
        await this.subscriber.subscribe(this.store.keys.cancelChannel(), this.store.keys.controlChannel())
        this.state = 'running'
        this.startedAt = this.clock.now()
        await this.heartbeat.beat() // registered before start() returns: commands can reach it at once
      },
      60_000,
      (err) => this.log.warn({ err: err.message }, 'Redis unavailable while starting; retrying'),
    )
    this.heartbeat.start()
    this.processor.start()
    this.schedules?.start()
    this.log.info(
      { worker: this.id, queues: this.queues, concurrency: this.settings.workerConcurrency },
      'worker started',
    )
  }

  private onMessage(channel: string, message: string): void {
    const [a, b] = message.split(' ')
    if (!a || !b) return
    if (channel === this.store.keys.cancelChannel()) {
      if (this.processor.cancel(a, b))
        this.log.info({ job_id: b, queue: a }, 'cancel requested; aborting handler')
    } else if (channel === this.store.keys.controlChannel() && (a === this.id || a === '*')) {
      const cmd = parseWorkerCommand(b)
      if (cmd) this.command(cmd)
    }
  }

  /**
   * pause: take no new jobs; resume: take jobs again; drain: finish what runs, then stop;
   * concurrency:<n>: run at most n jobs at once from now on (running jobs go on).
   */
  command(cmd: WorkerCommand): void {
    if (this.state === 'stopping' || this.state === 'stopped') return
    this.log.info({ worker: this.id, command: cmd }, 'control command')
    if (cmd === 'pause') {
      this.processor.paused = true
      this.state = 'paused'
    } else if (cmd === 'resume') {
      this.processor.paused = false
      this.state = 'running'
      this.processor.refresh()
    } else if (cmd === 'drain') {
      this.state = 'draining'
      void this.close()
    } else if (cmd.startsWith('concurrency:')) {
      this.processor.setConcurrency(Number(cmd.slice('concurrency:'.length)))
    }
    this.heartbeat.poke()
  }

  /**
   * Graceful shutdown (invariant 8), in this order:
   *  1. state → stopping (the registry shows it); no new fetches (the blocking read is cut);
   *  2. the schedule runner, scheduler, reclaimer and janitor stop (the maintenance lease is given up);
   *  3. running jobs get until the shutdown deadline to finish — their leases keep being renewed;
   *  4. at the deadline, what still runs is aborted and handed back for immediate redelivery;
   *  5. the lease thread stops;
   *  6. the consumer is removed from each group where it holds nothing pending;
   *  7. the registry entry goes; connections close.
   */
  close(timeoutMs = this.settings.shutdownTimeoutMs): Promise<void> {
    this.closing ??= this.shutdown(timeoutMs)
    return this.closing
  }

  private async shutdown(timeoutMs: number): Promise<void> {
    if (this.state === 'idle') {
      this.state = 'stopped'
      this.disconnect()
      this.resolveStopped()
      return
    }
    const deadline = Date.now() + timeoutMs
    this.state = 'stopping'
    this.log.info({ worker: this.id, running: this.processor.active, timeoutMs }, 'worker stopping')
    this.shutdownStep = 'fetching'
    await this.processor.stopFetching()
    this.shutdownStep = 'maintenance'
    await this.schedules?.stop()
    await this.maintenance.stop()
    await this.heartbeat.beat().catch(() => {})
    this.shutdownStep = 'running jobs'
    await this.processor.drain(deadline)
    this.shutdownStep = 'hand-back'
    const handedBack = await this.processor.handBackAll(!this.opts.unsafe?.noHandback)
    if (handedBack) this.log.warn({ worker: this.id, handedBack }, 'unfinished jobs handed back')
    // Let outcomes of jobs that finished at the deadline be written before the lease thread stops.
    this.shutdownStep = 'outcomes'
    await this.processor.drain(Date.now() + 2000)
    // Releases in flight finish (what they leave, the leader's sweep does).
    this.shutdownStep = 'flow releases'
    await this.flowReleaser.idle()
    this.shutdownStep = 'leases'
    await this.leases.stop()
    await this.heartbeat.stop()
    this.shutdownStep = 'deregistering'
    for (const q of this.queues) await this.store.removeConsumer(q, this.id).catch(() => {})
    await this.registry.remove(this.id).catch(() => {})
    this.state = 'stopped'
    this.disconnect()
    this.log.info({ worker: this.id, processed: this.processor.processed }, 'worker stopped')
    this.resolveStopped()
  }

  /** Deliveries this worker still holds (running, or superseded and not yet ended). */
  get held(): number {
    return this.processor.active
  }

  /**
   * Cuts every connection at once: the process's shutdown budget is spent (invariant 35). What
   * it held is left to the reclaimers.
   */
  abandon(): void {
    this.disconnect()
  }

  private disconnect(): void {
    this.ownClock?.stop()
    this.redis.disconnect()
    this.waiter.close()
    this.subscriber.disconnect()
    for (const r of this.fetchConns) r.disconnect()
  }
}
