/**
 * Processor: fetches jobs (batched, high priority first, blocking when there is nothing),
 * runs their handlers with a per-job AbortSignal and timeout, and records each outcome
 * through a fenced script. Completions made in the same turn of the event loop are written
 * in one script call per queue.
 */
import {
  errorClass,
  JobAbortedError,
  PermanentJobError,
  RateLimitedError,
  RetryJobError,
  SnoozeJob,
} from '../errors.ts'
import { type BackoffPolicy, backoffDelayMs } from '../queue/backoff.ts'
import type { Job } from '../queue/job.ts'
import { hashIdempotencyKey } from '../queue/queue.ts'
import { encodeJson, MAX_DELAY_MS } from '../queue/validate.ts'
import type { Completion, Delivered, DeliveryFacts, FailMode, JobStore } from '../redis/store.ts'
import type { EntryWaiter } from '../redis/stream-wait.ts'
import { activeTracer } from '../tracing/index.ts'
import { RUNNING_LISTED, type RunningJob, WorkerActivity } from './activity.ts'
import { FetchGate, type Tails } from './fetch-gate.ts'
import type { Handler, JobContext } from './handlers.ts'
import type { LeaseKeeper } from './lease-keeper.ts'

export interface Logger {
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
  debug(obj: object, msg?: string): void
}

export interface ProcessorOptions {
  store: JobStore
  /** Stores on connections of their own, for the fetch calls in flight beyond the first. */
  fetchStores?: JobStore[]
  /** The blocking wait for new entries (connections of its own). */
  waiter: EntryWaiter
  consumer: string
  queues: string[]
  concurrency: number
  handlers: Map<string, Handler>
  backoff: BackoffPolicy
  leases: LeaseKeeper
  log: Logger
  maxResultBytes: number
  /** Most snoozes per job (MAX_SNOOZES; 0: no limit). */
  maxSnoozes?: number
  /** Extra time past a job's timeout before its lease is let go. */
  timeoutGraceMs: number
  blockMs?: number
  random?: () => number
  onSettled?: (job: Job, outcome: string) => void
  /** Drains a queue's flow outbox (flow-releaser.ts): called when a flow member has ended. */
  releaseFlows?: (queue: string) => void
  /**
   * Negative control: the epoch to write outcomes under, whoever owns the job (no fence); the
   * completion then goes without its delivery's entry too (the fence's other half, ADR 0038).
   */
  epochOf?: (store: JobStore, queue: string, id: string) => Promise<number>
}

/** One run of a job: one delivery (queue, id, epoch). */
interface Running {
  job: Job
  /** What the delivery said of the job (its completion hands it back: ADR 0038); none in the no-fencing control. */
  delivery: DeliveryFacts | undefined
  /**
   * Why the run was told to stop (timeout, cancel, lost lease, shutdown): set once, by abortRun.
   * The handler's AbortController is made only when it reads `ctx.signal` (signalOf): most
   * handlers never do, and a controller, its signal and a listener per job were a tenth of the
   * worker's garbage.
   */
  reason?: unknown
  ac?: AbortController
  /** Rejects the run's wait for its handler (set while the handler runs): a handler that ignores its signal cannot hold its slot. */
  interrupt?: (reason: unknown) => void
  timer?: NodeJS.Timeout
  /** Set when this worker no longer owns the job (lost lease, handed back): write nothing. */
  disowned: boolean
  /** The handler has ended: its outcome is decided (and being written unless disowned). */
  finished: boolean
  /** When the lease thread lets go of it (timeout + grace; 0: never). */
  deadline: number
  done: Promise<void>
}

type Outcome =
  | { kind: 'complete'; result: string }
  | { kind: 'fail'; mode: FailMode; error: Error; delayMs: number }
  | { kind: 'snooze'; delayMs: number }
  | { kind: 'drop' }
  /** The handler's upstream refused it (RateLimitedError): its type pauses, the job waits. */
  | { kind: 'pause'; ms: number }

/**
 * Runs are kept per delivery, not per job: `running` holds each job's newest run, `superseded`
 * the older runs of a job delivered to this worker again while they still go (their lease
 * lapsed). The end of an old run can never untrack or overwrite the new one.
 */
const jobKey = (queue: string, id: string) => `${queue}\u0000${id}`
const runKey = (queue: string, id: string, epoch: number) => `${queue}\u0000${id}\u0000${epoch}`

/**
 * The class a failure is recorded and counted under (errorClass(): a code or a name, never the
 * message); a run stopped by its timeout is `Timeout`, not the abort's own class.
 */
export const failureClass = (err: Error): string =>
  err instanceof JobAbortedError && err.reason === 'timeout' ? 'Timeout' : errorClass(err)

/** Whether a failed outcome write is a refusal by the script (a bug here, never worth retrying). */
const isRefused = (err: unknown) => err instanceof Error && err.message.startsWith('DTQ_BAD_ARG')

/** Tells a run to stop, once: its signal aborts (if the handler has one) and its wait ends. */
function abortRun(r: Running, reason: unknown): boolean {
  if (r.reason !== undefined) return false
  r.reason = reason
  r.ac?.abort(reason)
  r.interrupt?.(reason)
  return true
}

/** The run's signal, made when the handler first asks for it (already aborted if the run was told to stop). */
function signalOf(r: Running): AbortSignal {
  if (!r.ac) {
    r.ac = new AbortController()
    if (r.reason !== undefined) r.ac.abort(r.reason)
  }
  return r.ac.signal
}

/**
 * A handler's `ctx`. A class, not an object literal: a literal with a getter (`signal`, made
 * lazily) is built through the runtime, ≈ 0.9 µs a job against ≈ 0.09 µs for this (measured in
 * Node 22; the profile of a drain had the literal at 1.8 % of the worker's time, above begin()).
 * `signal` is a getter on the prototype; the functions are the instance's own, so a handler may
 * destructure them (`const { progress } = ctx`).
 */
class RunContext implements JobContext {
  readonly attempt: number
  readonly workerId: string
  readonly parents: Record<string, unknown>
  readonly progress: (n: number) => Promise<void>
  readonly log: (line: string) => Promise<void>
  readonly snooze: (ms: number) => never
  private readonly run: Running

  constructor(r: Running, o: Pick<ProcessorOptions, 'store' | 'consumer' | 'log'>) {
    const { job } = r
    const store = o.store
    this.run = r
    this.attempt = job.attempts
    this.workerId = o.consumer
    this.parents = job.parent_results
    this.progress = async (n) => {
      if (typeof n !== 'number' || !Number.isFinite(n))
        throw new TypeError('progress must be a finite number')
      await store.progress(job.queue, job.id, job.epoch, n, null).catch((err) => {
        o.log.debug({ err: (err as Error).message, job_id: job.id }, 'progress not recorded')
      })
    }
    this.log = async (line) => {
      await store.progress(job.queue, job.id, job.epoch, null, String(line).slice(0, 4000)).catch((err) => {
        o.log.debug({ err: (err as Error).message, job_id: job.id }, 'log line not recorded')
      })
    }
    this.snooze = (ms) => {
      throw new SnoozeJob(ms)
    }
  }

  get signal(): AbortSignal {
    return signalOf(this.run)
  }
}

/** What settle reports for complete's per-job answer (0 stale, 1 completed, 2 cancelled). */
const COMPLETE_OUTCOMES = ['stale', 'completed', 'cancelled'] as const

interface PendingCompletion extends Completion {
  done: (n: number) => void
  fail: (e: unknown) => void
}

/** An idle worker goes through its queues at least this often even when no wait woke it (FetchGate). */
const IDLE_ROUND_MS = 30_000

/** Fetch calls a worker keeps in flight, each asking for about concurrency / FETCHES_IN_FLIGHT jobs. */
export const FETCHES_IN_FLIGHT = 2

export class Processor {
  /**
   * The newest run of every job this worker holds (handlers running, and finished ones whose
   * outcome is being written), by job.
   */
  readonly running = new Map<string, Running>()
  /** Older runs of jobs delivered here again while they still go (lease lapsed), by delivery. */
  private readonly superseded = new Map<string, Running>()
  /** The fetch loop's accounting and decisions (slots, waits, backoff): fetch-gate.ts. */
  private readonly gate: FetchGate
  paused = false
  /** No lease is being renewed (the lease thread died and is restarting): take no new work. */
  leasesDown = false
  pausedQueues = new Set<string>()
  processed = 0
  failed = 0
  /** Failed attempts by task type (metrics: worker_errors_total); at most 200 types, then `_other`. */
  readonly failedByType = new Map<string, number>()
  /** Outcomes per minute and the latest failures (GET /workers/{id}): activity.ts. */
  readonly activity = new WorkerActivity()
  private readonly o: ProcessorOptions
  private readonly idleStores: JobStore[]
  private stopping = false
  private started = false
  private retryTimer: NodeJS.Timeout | undefined
  private pumpScheduled = false
  private rotation = 0
  private pendingCompletions = new Map<string, PendingCompletion[]>()
  private stopped: (() => void) | undefined
  private loopDone: Promise<void> = Promise.resolve()

  constructor(o: ProcessorOptions) {
    this.o = o
    this.gate = new FetchGate({
      concurrency: o.concurrency,
      fetchesInFlight: FETCHES_IN_FLIGHT,
      idleRoundMs: IDLE_ROUND_MS,
    })
    this.idleStores = [...(o.fetchStores ?? [])]
  }

  private get held(): number {
    return this.running.size + this.superseded.size
  }

  get active(): number {
    return this.running.size + this.superseded.size
  }

  /** The fetch engine's state, for a log line when the worker looks stuck (see Worker.beat). */
  debugState(): Record<string, unknown> {
    return {
      started: this.started,
      stopping: this.stopping,
      paused: this.paused,
      leasesDown: this.leasesDown,
      pausedQueues: [...this.pausedQueues],
      inflight: this.gate.inflight,
      reserved: this.gate.reserved,
      busy: this.gate.busy,
      held: this.held,
      blocked: this.gate.waiting,
      idle: this.gate.idle !== null,
      backingOff: this.gate.backingOff,
      completionsWaiting: [...this.pendingCompletions.values()].reduce((n, l) => n + l.length, 0),
      lastFetchStartedMsAgo: this.gate.lastActivityAt ? Date.now() - this.gate.lastActivityAt : null,
      /** Job slots a fetch could fill now (as the gate counts them). */
      free: this.gate.free(this.held),
    }
  }

  start(): void {
    this.started = true
    this.loopDone = new Promise((resolve) => {
      this.stopped = resolve
    })
    this.pump()
  }

  /** Stops fetching; running jobs go on. Resolves when no fetch is in flight any more. */
  async stopFetching(): Promise<void> {
    this.stopping = true
    clearTimeout(this.retryTimer)
    // Interrupt a blocking XREAD at once rather than waiting out its BLOCK time.
    this.o.waiter.interrupt()
    this.pump()
    await this.loopDone
  }

  /**
   * Something changed that a blocking wait would not see (a queue resumed, the worker resumed):
   * the next step is a fetch round through the queues, not another wait.
   */
  /** How many jobs this worker runs at once. */
  get concurrency(): number {
    return this.gate.concurrency
  }

  /** A new concurrency at runtime: running jobs go on; new slots are filled, or freed ones not refilled. */
  setConcurrency(n: number): void {
    this.gate.setConcurrency(n)
    this.kick()
  }

  refresh(): void {
    this.gate.refresh()
    this.kick()
  }

  /** Re-checks state soon (slot freed, resumed, outcome waiting to be written). */
  kick(): void {
    if (this.pumpScheduled) return
    this.pumpScheduled = true
    // setImmediate: every handler that finishes in this turn of the event loop is in the batch.
    setImmediate(() => {
      this.pumpScheduled = false
      this.pump()
    })
  }

  /**
   * The fetch engine. Keeps up to FETCHES_IN_FLIGHT fetch calls going while there are free
   * slots; each carries the outcomes finished since the last one (complete + deliver fused, one
   * round trip), so Redis is never idle while handlers run. When a fetch finds nothing, waits
   * in a blocking XREAD for the next entry; outcomes finished meanwhile are written on their own.
   */
  private pump(): void {
    if (this.stopping) {
      this.flushCompletions()
      if (this.gate.inflight === 0 && !this.gate.waiting) this.stopped?.()
      return
    }
    if (!this.started) return
    const queues = this.o.queues.filter((q) => !this.pausedQueues.has(q))
    const open = !this.paused && !this.leasesDown && queues.length > 0
    // A slot frees when its handler finishes, not when its outcome is written: the next batch is
    // fetched while outcomes are in flight.
    for (
      let want = this.gate.nextFetch(open, this.held);
      want > 0;
      want = this.gate.nextFetch(open, this.held)
    )
      void this.fetch(queues, want)
    this.flushCompletions()
    const tails = this.gate.waitFor(this.paused)
    if (tails) void this.block(tails)
  }

  private async fetch(queues: string[], want: number): Promise<void> {
    this.gate.fetchStarted(want, Date.now())
    const store = this.idleStores.pop() ?? this.o.store
    let got = 0
    const tails: Array<{ queue: string; tails: string[] }> = []
    try {
      // Each round starts one queue further, from a start of its own: rounds run concurrently,
      // and one that read the shared rotation after an await would visit a queue twice and skip
      // another, then wait on the wrong streams until the next full round.
      this.rotation = (this.rotation + 1) % queues.length
      const start = this.rotation
      for (let k = 0; k < queues.length && got < want && !this.stopping; k++) {
        const queue = queues[(start + k) % queues.length]!
        // At most a batch of outcomes per call: calls of even size keep Redis and Node overlapping
        // (one big call would hold Redis while Node waits, then the reverse).
        const waiting = this.pendingCompletions.get(queue) ?? []
        const finished = waiting.splice(0, this.gate.batch)
        if (!waiting.length) this.pendingCompletions.delete(queue)
        let d: Delivered
        if (finished.length) {
          try {
            const r = await store.fetch(queue, this.o.consumer, want - got, finished)
            finished.forEach((it, i) => {
              it.done(r.completed[i] ?? 0)
            })
            d = r
          } catch (err) {
            for (const it of finished) it.fail(err)
            throw err
          }
        } else {
          d = await store.deliver(queue, this.o.consumer, want - got)
        }
        for (let i = 0; i < d.jobs.length; i++) this.begin(d.jobs[i]!, d.entries[i]!)
        got += d.jobs.length
        if (d.tails.length) tails.push({ queue, tails: d.tails })
      }
      this.gate.fetchEnded(want, got, tails)
    } catch (err) {
      const ms = this.gate.fetchFailed(want, got)
      if (!this.stopping) this.backOff(err, ms)
    } finally {
      if (store !== this.o.store) this.idleStores.push(store)
      this.pump()
    }
  }

  /**
   * Nothing to fetch: waits until an entry lands after `tails` (or blockMs passes), then
   * fetches. A wait that ends with nothing new is followed by another wait, not a fetch round:
   * every way a job becomes ready (enqueue, promote, reclaim, hand-back, retry) adds an entry,
   * so an idle worker costs Redis one XREAD per block time whatever the number of queues. A
   * full round still goes every IDLE_ROUND_MS, as a safety net.
   */
  private async block(tails: Tails): Promise<void> {
    this.gate.waitStarted(Date.now())
    try {
      const woke = await this.o.waiter.wait(tails, this.o.blockMs ?? 1000)
      this.gate.waitEnded(woke, Date.now())
    } catch (err) {
      const ms = this.gate.waitFailed()
      if (!this.stopping) this.backOff(err, ms)
    } finally {
      this.pump()
    }
  }

  /** Logs a failed fetch or wait and ends the backoff the gate asked for after `ms`. */
  private backOff(err: unknown, ms: number): void {
    this.o.log.warn({ err: (err as Error).message }, 'fetch failed; retrying')
    clearTimeout(this.retryTimer)
    this.retryTimer = setTimeout(() => {
      // The wait is over when the timer fires (see FetchGate.retryElapsed).
      this.gate.retryElapsed()
      this.pump()
    }, ms)
  }

  private begin(job: Job, entry: string): void {
    const deadline = job.timeout_ms > 0 ? Date.now() + job.timeout_ms + this.o.timeoutGraceMs : 0
    const delivery: DeliveryFacts = {
      entry,
      priority: job.priority,
      task_type: job.task_type,
      started_at: job.started_at,
      attempts: job.attempts,
    }
    const r: Running = { job, delivery, disowned: false, finished: false, deadline, done: Promise.resolve() }
    // Delivered again while an older run still goes: that run's lease lapsed (the job was
    // reclaimed and came back to us), so it is no longer ours -- stop it now.
    const key = jobKey(job.queue, job.id)
    const older = this.running.get(key)
    if (older) {
      this.superseded.set(runKey(job.queue, job.id, older.job.epoch), older)
      this.abandon(older, 'lease_lost')
      this.o.log.warn(
        { job_id: job.id, queue: job.queue, epoch: older.job.epoch },
        'lease lost; older run abandoned',
      )
    }
    this.running.set(key, r)
    this.gate.jobStarted()
    this.o.leases.track(job.queue, job.id, job.epoch, deadline)
    if (job.timeout_ms > 0) {
      r.timer = setTimeout(
        () => abortRun(r, new JobAbortedError('timeout', `timed out after ${job.timeout_ms} ms`)),
        job.timeout_ms,
      )
    }
    r.done = this.execute(r)
  }

  private context(r: Running): JobContext {
    return new RunContext(r, this.o)
  }

  private async execute(r: Running): Promise<void> {
    const { job } = r
    let outcome: Outcome
    // The handler runs inside the run's span: the spans it starts are its children.
    const span = activeTracer?.process(job, this.o.consumer)
    try {
      const handler = this.o.handlers.get(job.task_type)
      if (!handler) throw new PermanentJobError(`no handler for task type "${job.task_type}"`)
      const ctx = this.context(r)
      // The handler starts in a microtask: after every job of its batch has begun.
      const work = Promise.resolve().then(() =>
        span ? span.run(() => handler(job, ctx)) : handler(job, ctx),
      )
      const value = await new Promise((resolve, reject) => {
        r.interrupt = reject
        if (r.reason !== undefined) reject(r.reason)
        work.then(resolve, reject)
      })
      const problems: string[] = []
      const result = encodeJson(problems, 'result', value, this.o.maxResultBytes)
      outcome =
        result === null
          ? { kind: 'fail', mode: 'permanent', error: new Error(problems.join('; ')), delayMs: 0 }
          : { kind: 'complete', result }
    } catch (err) {
      outcome = this.classify(r, err)
    }
    clearTimeout(r.timer)
    r.interrupt = undefined
    r.finished = true
    this.gate.handlerEnded()
    this.kick()
    let res = 'abandoned'
    try {
      if (!r.disowned) res = await this.settle(r, outcome)
    } finally {
      if (outcome.kind === 'fail' && outcome.mode !== 'cancel' && res !== 'abandoned') {
        this.o.log.debug(
          {
            ...span?.ids,
            job_id: job.id,
            queue: job.queue,
            task_type: job.task_type,
            attempt: job.attempts,
            outcome: res,
            err: outcome.error.message,
          },
          'job attempt failed',
        )
      }
      span?.end(res, outcome.kind === 'fail' && outcome.mode !== 'cancel' ? outcome.error : undefined)
      this.o.leases.untrack(job.queue, job.id, job.epoch)
      const key = jobKey(job.queue, job.id)
      if (this.running.get(key) === r) this.running.delete(key)
      else this.superseded.delete(runKey(job.queue, job.id, job.epoch))
      this.kick()
    }
  }

  private classify(r: Running, err: unknown): Outcome {
    const { job } = r
    const reason = r.reason
    if (reason instanceof JobAbortedError) {
      if (reason.reason === 'cancelled') return { kind: 'fail', mode: 'cancel', error: reason, delayMs: 0 }
      if (reason.reason === 'lease_lost' || reason.reason === 'shutdown') return { kind: 'drop' }
    }
    const error = err instanceof Error ? err : new Error(String(err))
    if (error instanceof SnoozeJob) {
      const d = error.delayMs
      if (typeof d === 'number' && Number.isFinite(d) && d >= 0)
        return { kind: 'snooze', delayMs: Math.min(Math.round(d), MAX_DELAY_MS) }
      this.o.log.warn(
        { job_id: job.id, delayMs: String(d) },
        'snooze delay is not a finite number of ms; failing the attempt',
      )
    }
    if (error instanceof PermanentJobError) return { kind: 'fail', mode: 'permanent', error, delayMs: 0 }
    if (error instanceof RateLimitedError && Number.isFinite(error.pauseMs) && error.pauseMs > 0)
      return { kind: 'pause', ms: Math.min(Math.round(error.pauseMs), 86_400_000) }
    if (error instanceof RetryJobError) {
      const d = error.delayMs
      // A delay from a header that was missing (NaN), or absurd: the job must still come back.
      if (typeof d === 'number' && Number.isFinite(d) && d >= 0)
        return { kind: 'fail', mode: 'retry', error, delayMs: Math.min(Math.round(d), MAX_DELAY_MS) }
      this.o.log.warn(
        { job_id: job.id, delayMs: String(d) },
        'RetryJobError delay is not a finite number of ms; using the backoff',
      )
    }
    const b = job.backoff ?? {}
    const delayMs = backoffDelayMs(
      {
        initialMs: b.initial_ms ?? this.o.backoff.initialMs,
        multiplier: b.multiplier ?? this.o.backoff.multiplier,
        maxMs: b.max_ms ?? this.o.backoff.maxMs,
      },
      job.failures + 1,
      this.o.random,
    )
    return { kind: 'fail', mode: 'retry', error, delayMs }
  }

  /** Writes the outcome, retrying while Redis is away (the lease thread keeps the job ours). */
  private async settle(r: Running, outcome: Outcome): Promise<string> {
    const { job } = r
    if (outcome.kind === 'drop') return 'abandoned'
    if (this.o.epochOf) {
      job.epoch = await this.o.epochOf(this.o.store, job.queue, job.id).catch(() => job.epoch)
      r.delivery = undefined
    }
    for (let attempt = 0; ; attempt++) {
      try {
        let res: string
        if (outcome.kind === 'complete') {
          res = COMPLETE_OUTCOMES[await this.completeBatched(r, outcome.result)] ?? 'stale'
        } else if (outcome.kind === 'pause') {
          res = await this.o.store.pauseType(job.queue, job.id, job.epoch, outcome.ms, r.delivery?.entry)
        } else if (outcome.kind === 'snooze') {
          res = await this.o.store.snooze(
            job.queue,
            job.id,
            job.epoch,
            outcome.delayMs,
            this.o.maxSnoozes ?? 0,
            r.delivery?.entry,
          )
        } else {
          res = await this.o.store.fail(
            job.queue,
            job.id,
            job.epoch,
            outcome.mode,
            {
              message: outcome.error.message.slice(0, 2000),
              class: failureClass(outcome.error),
              stack: outcome.error.stack?.slice(0, 4000),
              worker: this.o.consumer,
              attempt: job.attempts,
              started_at: job.started_at ?? undefined,
            },
            outcome.delayMs,
            r.delivery?.entry,
          )
        }
        if (res === 'stale')
          this.o.log.warn({ job_id: job.id, queue: job.queue }, 'outcome rejected: job no longer owned')
        else if (res === 'completed') {
          this.processed++
          this.activity.record('completed')
        } else if (res === 'failed' || res === 'retrying') {
          this.failed++
          if (outcome.kind === 'fail')
            this.activity.record(res, {
              id: job.id,
              queue: job.queue,
              task_type: job.task_type,
              attempt: job.attempts,
              error: outcome.error.message,
              error_class: failureClass(outcome.error),
            })
          const t =
            this.failedByType.has(job.task_type) || this.failedByType.size < 200 ? job.task_type : '_other'
          this.failedByType.set(t, (this.failedByType.get(t) ?? 0) + 1)
        }
        if (job.flow_id && res !== 'stale' && res !== 'retrying') this.o.releaseFlows?.(job.queue)
        this.o.onSettled?.(job, res)
        return res
      } catch (err) {
        if (r.disowned) return 'abandoned'
        if (isRefused(err)) {
          // The script refused what we sent: a bug, not an outage. Retrying would hold the job
          // for ever; record it as a permanent failure that says so (once), else let it lapse.
          this.o.log.error({ err: (err as Error).message, job_id: job.id }, 'outcome refused by Redis')
          if (outcome.kind === 'fail' && outcome.mode === 'permanent') return 'refused'
          outcome = {
            kind: 'fail',
            mode: 'permanent',
            error: new Error(`outcome refused: ${(err as Error).message}`),
            delayMs: 0,
          }
          continue
        }
        if (attempt % 10 === 0)
          this.o.log.warn(
            { err: (err as Error).message, job_id: job.id },
            'could not record outcome; retrying',
          )
        await new Promise((res) => setTimeout(res, Math.min(100 * 2 ** Math.min(attempt, 5), 2000)))
      }
    }
  }

  /** Queues a completion for the next fetch call of its queue (or a complete call of its own). */
  private completeBatched({ job, delivery }: Running, result: string): Promise<number> {
    return new Promise((done, fail) => {
      const list = this.pendingCompletions.get(job.queue) ?? []
      list.push({
        id: job.id,
        epoch: job.epoch,
        result,
        idemHash: job.idempotency_key ? hashIdempotencyKey(job.idempotency_key) : undefined,
        flow: job.flow_id !== null,
        dedupUnique: job.dedup?.mode === 'unique',
        delivery,
        done,
        fail,
      })
      this.pendingCompletions.set(job.queue, list)
      this.kick()
    })
  }

  /** Writes the completions no fetch took (nothing to fetch, paused, stopping, all slots held). */
  private flushCompletions(): void {
    if (!this.pendingCompletions.size) return
    const batches = this.pendingCompletions
    this.pendingCompletions = new Map()
    for (const [queue, items] of batches) {
      this.o.store.complete(queue, items).then(
        (res) => {
          items.forEach((it, i) => {
            it.done(res[i] ?? 0)
          })
        },
        (err) => {
          for (const it of items) it.fail(err)
        },
      )
    }
  }

  /** This delivery of the job is no longer ours (lease lost or expired): abort its handler, write nothing. */
  disown(queue: string, id: string, epoch: number, why: 'lease_lost' | 'shutdown'): Running | undefined {
    const newest = this.running.get(jobKey(queue, id))
    const r = newest?.job.epoch === epoch ? newest : this.superseded.get(runKey(queue, id, epoch))
    if (!r || r.disowned) return undefined
    this.abandon(r, why)
    return r
  }

  private abandon(r: Running, why: 'lease_lost' | 'shutdown'): void {
    r.disowned = true
    // A handler that has returned is not told to stop: its outcome write, maybe in flight, is
    // fenced by the epoch in Redis either way (a heartbeat that raced the completion reads the
    // job as no longer active and reports it lost). Disowned, the write is not retried.
    if (r.finished) return
    abortRun(
      r,
      new JobAbortedError(
        why,
        why === 'lease_lost' ? 'the job lease was lost' : 'the worker is shutting down',
      ),
    )
  }

  /** The jobs whose handlers run now, longest-running first, at most RUNNING_LISTED (activity.ts). */
  runningJobs(): RunningJob[] {
    return [...this.running.values()]
      .filter((r) => !r.finished && !r.disowned)
      .map((r) => ({
        id: r.job.id,
        queue: r.job.queue,
        task_type: r.job.task_type,
        attempt: r.job.attempts,
        started_at: r.job.started_at ?? 0,
      }))
      .sort((a, b) => a.started_at - b.started_at)
      .slice(0, RUNNING_LISTED)
  }

  /** The deliveries this worker holds and their lease deadlines (to re-track after a lease thread restart). */
  leases(): Array<{ queue: string; id: string; epoch: number; deadline: number }> {
    return [...this.running.values(), ...this.superseded.values()]
      .filter((r) => !r.disowned)
      .map((r) => ({ queue: r.job.queue, id: r.job.id, epoch: r.job.epoch, deadline: r.deadline }))
  }

  /** Aborts a running job because it was cancelled; the worker then records it cancelled. */
  cancel(queue: string, id: string): boolean {
    const r = this.running.get(jobKey(queue, id))
    if (!r) return false
    return abortRun(r, new JobAbortedError('cancelled', 'the job was cancelled'))
  }

  /** Waits until no job runs or `deadline` (ms since the epoch) passes. */
  async drain(deadline: number): Promise<void> {
    while ((this.running.size || this.superseded.size) && Date.now() < deadline) {
      await Promise.race([
        Promise.all([...this.running.values(), ...this.superseded.values()].map((r) => r.done)),
        new Promise((r) => setTimeout(r, Math.max(0, deadline - Date.now()))),
      ])
    }
  }

  /**
   * Aborts every still-running job and hands it back for immediate redelivery (fenced).
   * `handBack: false` is the negative control: abandon them to the reclaimers instead.
   */
  async handBackAll(handBack = true): Promise<number> {
    const byQueue = new Map<string, Array<{ id: string; epoch: number }>>()
    for (const r of [...this.running.values()]) {
      // A run whose handler has ended is not handed back: its outcome is being written (a
      // completion made in the same tick as the deadline must not be followed by a hand-back).
      if (r.finished || r.disowned) continue
      this.abandon(r, 'shutdown')
      byQueue.set(r.job.queue, [...(byQueue.get(r.job.queue) ?? []), { id: r.job.id, epoch: r.job.epoch }])
    }
    if (!handBack) return 0
    let n = 0
    for (const [queue, items] of byQueue) {
      try {
        const res = await this.o.store.handBack(queue, items)
        n += res.filter((x) => x === 1).length
      } catch (err) {
        // Redis is away: the leases lapse and the reclaimers redeliver these after CLAIM_IDLE_MS.
        this.o.log.error({ err: (err as Error).message, queue, jobs: items.length }, 'hand-back failed')
      }
    }
    return n
  }
}
