/**
 * The library API for producers and operators: add jobs, inspect them, cancel and retry,
 * manage the dead-letter queue and queues. The CLI and the REST API are thin clients of it.
 *
 *   const queue = await Queue.connect(loadConfig())
 *   const { job } = await queue.add('send_email', { to: 'a@b.c' }, { priority: 'high' })
 */

import { createHash } from 'node:crypto'
import type { Config } from '../config.ts'
import { DtqError, type ErrorCode, ErrorCodes, isRedisFull, isRedisUnavailable } from '../errors.ts'
import { AlertStore } from '../redis/alerts.ts'
import { RedisClock } from '../redis/clock.ts'
import type { RedisClient } from '../redis/connection.ts'
import { connectRedis, createRedis, redisTarget } from '../redis/connection.ts'
import { type FlowNodeRecord, FlowStore, type FlowView } from '../redis/flows.ts'
import { HISTORY_RANGES, type HistoryRange, historyPoints, typedPoints } from '../redis/history.ts'
import { type BreakerAction, LimitStore, type LimitsView } from '../redis/limits.ts'
import { type CreatedIndexState, createdAcross } from '../redis/reads.ts'
import { type DlqEntry, dlqPage, dlqTails } from '../redis/redrive.ts'
import { Registry, type WorkerCommand, type WorkerDetail, type WorkerInfo } from '../redis/registry.ts'
import { type ScheduleDetail, Schedules, type ScheduleView } from '../redis/schedule-service.ts'
import {
  type Clock,
  type EnqueueResult,
  JobStore,
  type NewJobRecord,
  type Page,
  type QueueStats,
  type WriteFailure,
  writeFailure,
} from '../redis/store.ts'
import { activeTracer, type Outgoing, type SendSpans } from '../tracing/index.ts'
import { lacksWorkers, liveWorkersByQueue } from './consumers.ts'
import { type DedupSpec, dedupField, startByOf } from './flow-control.ts'
import {
  type DependencySpec,
  type FlowSpec,
  flowId,
  isFlowId,
  nodeJobId,
  planDependencies,
  planFlow,
} from './flows.ts'
import { GENERATED_ID } from './ids.ts'
import type { Backoff, Job, JobState, Priority } from './job.ts'
import { F, PRIORITIES, STATES } from './job.ts'
import { type LimitsSpec, limitFields } from './limits.ts'
import { logicalQueue, MAX_PARTITIONS, PHYSICAL_QUEUE_PATTERN, pickPartition } from './partitions.ts'
import type { ScheduleSpec } from './schedule.ts'
import { TEMPLATE_FIELDS } from './schedule.ts'
import { BULK_STATES, type BulkAction, type DlqFilter, type JobFilter } from './system-tasks.ts'
import {
  checkInt,
  checkName,
  checkPriority,
  checkText,
  encodeJson,
  JOB_ID_PATTERN,
  MAX_DELAY_MS,
  type Problems,
  parseIsoTime,
  QUEUE_PATTERN,
  RESERVED_TASK_PREFIX,
  TASK_TYPE_PATTERN,
  throwIfProblems,
} from './validate.ts'

export interface AddOptions {
  queue?: string
  priority?: Priority
  /** Run no sooner than this many ms from now. */
  delay_ms?: number
  /** Run no sooner than this time (ms since the epoch, or an ISO 8601 string). */
  run_at?: number | string
  max_retries?: number
  timeout_ms?: number
  idempotency_key?: string
  partition_key?: string
  /** A caller-chosen job id; adding an id that exists returns that job and creates nothing. */
  id?: string
  /** W3C traceparent of the producer, carried to the worker. */
  trace?: string
  backoff?: Backoff
  /**
   * Existing jobs this one waits for (ADR 0019): it is `waiting` until each has completed and
   * reads their results in `parent_results` (keyed by job id, `<queue>/<id>` for another
   * queue's). Ids in its own queue, or {job_id, queue?, on_failure?: fail | ignore | cancel}.
   * For a job added alone (add, POST /jobs); a graph of new jobs is a flow (addFlow).
   */
  depends_on?: Array<string | DependencySpec>
  /** Deduplication beyond idempotency keys (ADR 0021): unique, throttle or debounce. */
  dedup?: DedupSpec
  /** A start deadline: not started by then (ms since the epoch or ISO 8601), the job ends cancelled, expired. */
  start_by?: number | string
  /** The same, as ms from now. */
  expires_in_ms?: number
  /** The job this one replays, `<queue>/<id>` (ADR 0028: set by replay, shown on the job). */
  replay_of?: string
}

export interface JobSpec extends AddOptions {
  task_type: string
  payload?: unknown
}

const SPEC_FIELDS = new Set([
  'task_type',
  'payload',
  'queue',
  'priority',
  'delay_ms',
  'run_at',
  'max_retries',
  'timeout_ms',
  'idempotency_key',
  'partition_key',
  'id',
  'trace',
  'backoff',
  'dedup',
  'start_by',
  'expires_in_ms',
  'replay_of',
])
/** A flow node must exist once created (its children wait for it): no add may be answered by another job. */
const NO_DEDUP_IN_FLOWS = 'dedup is for jobs without depends_on, and not for flow nodes'
const BACKOFF_FIELDS = new Set(['initial_ms', 'multiplier', 'max_ms'])
/** A job named with its queue: `<queue>/<id>` (a physical queue: a partition's name has a ~). */
const REPLAY_REF = /^[A-Za-z0-9_.~-]{1,80}\/[A-Za-z0-9_.-]{1,128}$/
const QUEUE_RULE = '1-64 letters, digits, _ . - (not . or ..)'
const ID_RULE = '1-128 letters, digits, _ . - (not . or ..)'

export interface AddResult {
  job: Job
  created: boolean
}

export type QueueSettings = Pick<
  Config,
  | 'keyPrefix'
  | 'defaultQueue'
  | 'maxRetries'
  | 'jobTimeoutMs'
  | 'maxPayloadBytes'
  | 'idempotencyTtlS'
  | 'eventsMaxLen'
  | 'completedRetentionS'
  | 'failedRetentionS'
> &
  Partial<
    Pick<
      Config,
      | 'testClockSkewMs'
      | 'maxQueues'
      | 'enqueueWaitReplicas'
      | 'enqueueWaitTimeoutMs'
      | 'flowMaxNodes'
      | 'flowRetentionS'
    >
  >

/**
 * How many jobs of one queue addBulk writes per call: 500, where Redis's cost per job is lowest
 * (measured: ~4.6 µs a job in calls of 500, ~5.9 in calls of 1000 -- a bigger call costs more per
 * job in the Lua VM). A failure part-way says per job what was written (BulkAddError).
 * `allOrNothing` (the batch endpoint) writes each queue's jobs in one call instead, up to
 * ATOMIC_MAX_JOBS: all or none.
 */
const BULK_CHUNK = 500

/** An add's result from the store's: the job is built when the caller reads it (createdResult). */
function resultOf(r: EnqueueResult): AddResult {
  return {
    created: r.created,
    get job() {
      return r.job
    },
  }
}

/**
 * How many of addBulk's calls are in flight at once: 2 gave +11 to +13 % jobs/s over 1 for
 * serial addBulks of 1000 (interleaved, 8 rounds, twice); 4, or 3 calls of 250, less.
 */
const BULK_WINDOW = 2
/** DLQ pages (500 entries) `recentFailures` reads per queue at most: 2000 dead letters. */
const RECENT_FAILURE_PAGES = 4

/** A group of what is failing now (GET /stats/failures, ADR 0032). */
export interface FailureGroup {
  queue: string
  task_type: string
  error_class: string
  /** Dead letters of the group that failed within the window. */
  count: number
  /** When the newest of them failed (ms). */
  last_seen: number
  /** The newest dead letter's error (500 characters at most). */
  last_message: string | null
}

interface FailureRate {
  completed: number
  failed: number
  failure_rate: number | null
}

/** GET /stats/failures's answer. */
export interface RecentFailures extends FailureRate {
  minutes: number
  since: number
  groups: FailureGroup[]
  total: number
  truncated: boolean
  queues: Array<FailureRate & { queue: string }>
}

const ATOMIC_MAX_JOBS = 10_000

/** What became of one job of an addBulk that failed part-way (see BulkAddError). */
export type BulkOutcome = 'created' | 'existing' | WriteFailure

export interface BulkItem {
  outcome: BulkOutcome
  /** The job, when it was created or already existed. */
  job?: Job
}

/**
 * An addBulk that failed part-way: Redis refused or did not answer a write. Each queue's jobs
 * are written at once (all or none), queue after queue, and the first failure stops the rest.
 * `items` says for every job given, in order: `created`, `existing` (an idempotent repeat),
 * `not_created` (nothing of it was written -- its call was refused or never sent, or its turn
 * never came: safe to add again) or `unknown` (its call timed out or lost its connection and
 * may have run: add it again with its id or idempotency key to be safe). The code and status
 * are the failure's (REDIS_UNAVAILABLE, 503, when Redis is away or out of memory); `cause` is
 * the error itself.
 */
export class BulkAddError extends DtqError {
  readonly items: BulkItem[]

  constructor(cause: unknown, items: BulkItem[]) {
    const code: ErrorCode =
      cause instanceof DtqError
        ? cause.code
        : isRedisFull(cause)
          ? 'REDIS_OUT_OF_MEMORY'
          : isRedisUnavailable(cause)
            ? 'REDIS_UNAVAILABLE'
            : 'INTERNAL'
    const count = (o: BulkOutcome) => items.filter((i) => i.outcome === o).length
    // A 5xx never carries its cause's text (it may hold internals).
    const why = cause instanceof DtqError && cause.status < 500 ? cause.message : ErrorCodes[code].message
    super(
      code,
      `jobs not all added (${count('created')} created, ${count('existing')} existing, ${count('not_created')} not created, ${count('unknown')} unknown): ${why}`,
    )
    this.name = 'BulkAddError'
    this.items = items
    this.cause = cause
  }
}

/** Checks a filter of dead letters (listing, redrive). */
function checkDlqFilter(problems: Problems, f: DlqFilter): void {
  if (f.queue !== undefined) checkName(problems, 'queue', f.queue, QUEUE_PATTERN, QUEUE_RULE)
  if (f.task_type !== undefined)
    checkName(problems, 'task_type', f.task_type, TASK_TYPE_PATTERN, 'a task type')
  if (f.error_contains !== undefined) checkText(problems, 'error_contains', f.error_contains, 256)
  if (f.older_than_ms !== undefined)
    checkInt(problems, 'older_than_ms', f.older_than_ms, 0, 10 * 365 * 86_400_000)
  if (f.priority !== undefined && !PRIORITIES.includes(f.priority))
    problems.push(`priority must be one of ${PRIORITIES.join(', ')}`)
  const ec = (f as { error_class?: unknown }).error_class
  if (ec !== undefined && (typeof ec !== 'string' || !/^[A-Za-z0-9_.:-]{1,64}$/.test(ec)))
    problems.push('error_class must be 1-64 of A-Za-z0-9_.:-')
}

/** The latest `from` a listing takes: the year 9999 (ms). */
const MAX_LIST_TIME_MS = 253_402_300_799_999

/** Checks a bulk operation's action and filter (Queue.bulkJobs, POST /jobs/bulk). */
function checkBulk(problems: Problems, action: BulkAction, f: JobFilter): void {
  if (action !== 'cancel' && action !== 'retry' && action !== 'delete')
    problems.push('action must be cancel, retry or delete')
  if (!f || typeof f !== 'object') {
    problems.push('filter must be an object')
    return
  }
  const known = new Set(['queue', 'state', 'task_type', 'older_than_ms', 'error_contains'])
  for (const k of Object.keys(f)) if (!known.has(k)) problems.push(`filter.${k} is not a known field`)
  checkDlqFilter(problems, f)
  const states = BULK_STATES[action]
  if (states && f.state !== undefined && !states.includes(f.state))
    problems.push(
      action === 'delete'
        ? `state must be one of ${states.join(', ')} to delete: a bulk delete removes finished jobs only (cancel the others first)`
        : `state must be one of ${states.join(', ')} to ${action}`,
    )
  // Like BullMQ's clean and obliterate, a bulk delete is per queue: never every queue at once.
  if (action === 'delete' && f.queue === undefined) problems.push('queue is required to delete by filter')
}

/** A day-2 script's answer: fine, or the error it means (NOT_FOUND, INVALID_STATE). */
function answer(res: string, id: string, what: string): void {
  if (res === 'not_found') throw new DtqError('NOT_FOUND', `job ${id} not found`)
  if (res.startsWith('state:')) {
    const state = res.slice('state:'.length)
    throw new DtqError('INVALID_STATE', `job ${id} is ${state}: cannot ${what}`, { state })
  }
}

/** Waits `ms`, or less if `signal` aborts first. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(t)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    const t = setTimeout(done, ms)
    signal?.addEventListener('abort', done, { once: true })
  })
}

/** The one job found, null for none, or AMBIGUOUS_JOB_ID (409) naming the queues of several. */
function onlyOne(jobs: Job[], what: string): Job | null {
  if (jobs.length < 2) return jobs[0] ?? null
  const queues = jobs.map((j) => j.queue)
  throw new DtqError(
    'AMBIGUOUS_JOB_ID',
    `${what} names a job in each of the queues ${queues.join(', ')}: give the queue (?queue=)`,
    { queues },
  )
}

export function hashIdempotencyKey(key: string): string {
  return createHash('sha256').update(key).digest('base64url')
}

/** A prepared job as the tracer sees it (it writes the job's `trace` field into `extra`). */
const outgoing = (p: { queue: string; record: NewJobRecord } | null): Outgoing => ({
  queue: p!.queue,
  task_type: p!.record.task_type,
  priority: p!.record.priority,
  extra: p!.record.extra,
})

/** Ends an enqueue's producer spans (if any) with the outcome of `write`. */
async function sent<T>(
  sending: SendSpans | undefined,
  write: () => Promise<T>,
  ids: (r: T) => Array<{ id: string; created: boolean } | undefined>,
): Promise<T> {
  if (!sending) return write()
  try {
    const r = await sending.run(write)
    sending.end(ids(r))
    return r
  } catch (err) {
    sending.end([], err)
    throw err
  }
}

export class Queue {
  readonly store: JobStore
  readonly flows: FlowStore
  /** Flow control (ADR 0022). */
  readonly limits: LimitStore
  /** Alerts (ADR 0025): rules, alerts, silences, history, the outbox. */
  readonly alerts: AlertStore
  readonly registry: Registry
  /** Schedules (ADR 0018); the methods below are its library API. */
  readonly schedules: Schedules
  readonly settings: QueueSettings
  /**
   * Redis's clock (a RedisClock, measuring from the constructor on) unless one was given: the
   * fleet's one time base (ADR 0012). A given clock is used as is.
   */
  readonly clock: Clock
  private readonly ownsRedis: boolean
  /** The next partition for the keyless jobs of a call to a partitioned queue. */
  private roundRobin = 0
  private readonly ownClock: RedisClock | undefined

  constructor(
    redis: RedisClient,
    settings: QueueSettings,
    opts: { clock?: Clock; ownsRedis?: boolean; warn?: (detail: object, message: string) => void } = {},
  ) {
    this.settings = settings
    this.ownClock = opts.clock ? undefined : new RedisClock(redis, { skewMs: settings.testClockSkewMs })
    void this.ownClock?.start().catch(() => {})
    this.clock = opts.clock ?? this.ownClock!
    this.ownsRedis = opts.ownsRedis ?? false
    this.store = new JobStore(redis, {
      prefix: settings.keyPrefix,
      eventsMaxLen: settings.eventsMaxLen,
      completedRetentionS: settings.completedRetentionS,
      failedRetentionS: settings.failedRetentionS,
      maxQueues: settings.maxQueues,
      enqueueWaitReplicas: settings.enqueueWaitReplicas,
      enqueueWaitTimeoutMs: settings.enqueueWaitTimeoutMs,
      clock: this.clock,
      warn: opts.warn,
    })
    this.flows = new FlowStore(this.store, { retentionS: settings.flowRetentionS })
    this.limits = new LimitStore(this.store)
    this.alerts = new AlertStore(this.store)
    this.registry = new Registry(redis, this.store.keys)
    this.schedules = new Schedules(this.store, this.clock, (job, problems) => {
      // The template's own fields only (buildDef names the others); its problems under `job.`.
      const own = Object.fromEntries(
        Object.entries(job).filter(([k]) => (TEMPLATE_FIELDS as readonly string[]).includes(k)),
      ) as unknown as JobSpec
      const mine: Problems = []
      const r = this.toRecord(own, mine)
      for (const p of mine) problems.push(`job.${p}`)
      return r
    })
  }

  /**
   * Opens its own connection from the settings and waits until Redis answers and its clock
   * has been measured.
   */
  static async connect(config: Config, opts: { clock?: Clock } = {}): Promise<Queue> {
    const redis = createRedis({
      target: redisTarget(config),
      commandTimeoutMs: config.redisCommandTimeoutMs,
      name: 'dtq-queue',
    })
    await connectRedis(redis)
    const queue = new Queue(redis, config, { ...opts, ownsRedis: true })
    try {
      await queue.ownClock?.sync()
    } catch (err) {
      await queue.close()
      throw err
    }
    return queue
  }

  get redis(): RedisClient {
    return this.store.redis
  }

  /** Closes the queue's connection (if it owns it) once the jobs being added are written. */
  async close(): Promise<void> {
    this.ownClock?.stop()
    await this.store.settle()
    if (this.ownsRedis) this.store.redis.disconnect()
  }

  // ---- adding jobs -------------------------------------------------------------------------

  /** Validates one job and turns it into the record the enqueue script writes. */
  private toRecord(spec: JobSpec, problems: Problems): { queue: string; record: NewJobRecord } | null {
    const start = problems.length
    const s = this.settings
    // A misspelt or foreign option (BullMQ's `delay`, `attempts`) must not be ignored silently.
    for (const k of Object.keys(spec)) {
      if (!SPEC_FIELDS.has(k)) problems.push(`${k} is not a known field (${[...SPEC_FIELDS].join(', ')})`)
    }
    const queue = spec.queue ?? s.defaultQueue
    checkName(problems, 'queue', queue, QUEUE_PATTERN, QUEUE_RULE)
    checkName(problems, 'task_type', spec.task_type, TASK_TYPE_PATTERN, '1-128 letters, digits, _ . : / -')
    const priority = spec.priority ?? 'normal'
    checkPriority(problems, priority)
    const maxRetries = spec.max_retries ?? s.maxRetries
    checkInt(problems, 'max_retries', maxRetries, 0, 1000)
    const timeoutMs = spec.timeout_ms ?? s.jobTimeoutMs
    checkInt(problems, 'timeout_ms', timeoutMs, 0, 7 * 24 * 3600 * 1000)
    if (spec.id !== undefined) {
      checkName(problems, 'id', spec.id, JOB_ID_PATTERN, ID_RULE)
      if (typeof spec.id === 'string' && GENERATED_ID.test(spec.id))
        problems.push('id must not be all digits (DTQ numbers the jobs it names itself)')
    }
    if (spec.idempotency_key !== undefined) checkText(problems, 'idempotency_key', spec.idempotency_key, 256)
    if (spec.partition_key !== undefined) checkText(problems, 'partition_key', spec.partition_key, 256)
    if (spec.trace !== undefined) checkText(problems, 'trace', spec.trace, 512)

    const now = this.clock.now()
    let runAt = 0
    if (spec.delay_ms !== undefined && spec.run_at !== undefined)
      problems.push('give delay_ms or run_at, not both')
    else if (spec.delay_ms !== undefined) {
      if (checkInt(problems, 'delay_ms', spec.delay_ms, 0, MAX_DELAY_MS) && spec.delay_ms > 0)
        runAt = -spec.delay_ms
    } else if (spec.run_at !== undefined) {
      const t = typeof spec.run_at === 'string' ? parseIsoTime(spec.run_at) : spec.run_at
      if (typeof t !== 'number' || !Number.isFinite(t) || t < 0 || t > now + MAX_DELAY_MS) {
        problems.push(
          'run_at must be a time within a year: ms since the epoch, or ISO 8601 -- a date (2025-03-01, midnight UTC) or a date and time with its zone (2025-03-01T09:30:00Z, 2025-03-01T10:30+01:00)',
        )
      } else runAt = Math.round(t)
    }
    const extra: Record<string, string> = {}
    if (spec.trace) extra[F.trace] = spec.trace
    if (spec.replay_of !== undefined) {
      if (typeof spec.replay_of !== 'string' || !REPLAY_REF.test(spec.replay_of))
        problems.push('replay_of must be <queue>/<id>')
      else extra[F.replay_of] = spec.replay_of
    }
    if (spec.backoff !== undefined) {
      const b = spec.backoff
      if (b === null || typeof b !== 'object') problems.push('backoff must be an object')
      else {
        for (const k of Object.keys(b)) {
          if (!BACKOFF_FIELDS.has(k))
            problems.push(`backoff.${k} is not a known field (${[...BACKOFF_FIELDS].join(', ')})`)
        }
        if (b.initial_ms !== undefined) checkInt(problems, 'backoff.initial_ms', b.initial_ms, 0, 86_400_000)
        if (b.max_ms !== undefined) checkInt(problems, 'backoff.max_ms', b.max_ms, 0, 604_800_000)
        if (
          b.multiplier !== undefined &&
          !(typeof b.multiplier === 'number' && b.multiplier >= 1 && b.multiplier <= 100)
        ) {
          problems.push('backoff.multiplier must be a number from 1 to 100')
        }
        extra[F.backoff] = JSON.stringify({
          initial_ms: b.initial_ms,
          multiplier: b.multiplier,
          max_ms: b.max_ms,
        })
      }
    }
    if (spec.dedup !== undefined) {
      const dd = dedupField(problems, spec.dedup, spec.task_type, spec.payload)
      if (dd) extra[F.dedup] = dd
    }
    const startBy = startByOf(problems, spec, now, runAt)
    if (startBy !== null) extra[F.start_by] = String(startBy)
    const payload = encodeJson(problems, 'payload', spec.payload, s.maxPayloadBytes)
    if (problems.length > start || payload === null) return null
    return {
      queue,
      record: {
        id: spec.id ?? '', // '': the store gives it the next generated id
        task_type: spec.task_type,
        payload,
        priority,
        max_retries: maxRetries,
        timeout_ms: timeoutMs,
        run_at: runAt,
        idem_hash: spec.idempotency_key ? hashIdempotencyKey(spec.idempotency_key) : '',
        idempotency_key: spec.idempotency_key ?? '',
        idem_ttl_s: s.idempotencyTtlS,
        partition_key: spec.partition_key ?? '',
        extra,
      },
    }
  }

  /**
   * Checks one job as add() would and answers the record it would write and its (logical)
   * queue, writing nothing; throws the same DtqError (dry runs, ADR 0028).
   */
  prepare(spec: JobSpec): { queue: string; record: NewJobRecord } {
    this.validate(spec)
    const { depends_on: _, ...own } = spec
    return this.toRecord(own, [])!
  }

  /** Checks one job as add() would, writing nothing; throws the same DtqError. */
  validate(spec: JobSpec): void {
    const problems: Problems = []
    if (spec && typeof spec === 'object') {
      const { depends_on, ...own } = spec
      const r = this.toRecord(own, problems)
      if (depends_on !== undefined) {
        const queue = r?.queue ?? own.queue ?? this.settings.defaultQueue
        const max = (this.settings.flowMaxNodes ?? 1000) - 1
        planDependencies(depends_on, { queue, id: own.id }, max, problems)
        if (own.delay_ms !== undefined || own.run_at !== undefined)
          problems.push(
            'delay_ms and run_at are for jobs without depends_on (it starts when its parents completed)',
          )
        if (own.dedup !== undefined) problems.push(NO_DEDUP_IN_FLOWS)
      }
    } else problems.push('must be an object')
    throwIfProblems(problems)
  }

  /**
   * Adds one job. With a known idempotency key or id, returns the existing job (created: false).
   * A failed write throws its own error (as addBulk's BulkAddError `cause`).
   */
  async add(taskType: string, payload?: unknown, opts: AddOptions = {}): Promise<AddResult> {
    if (opts?.depends_on !== undefined) return this.addDependent({ ...opts, task_type: taskType, payload })
    try {
      const [res] = await this.addBulk([{ ...opts, task_type: taskType, payload }])
      return res!
    } catch (err) {
      throw err instanceof BulkAddError ? err.cause : err
    }
  }

  /**
   * Adds many jobs; all are validated first, and nothing is written if any is invalid (the
   * error's details name each problem with its index). Each queue's jobs are then written in
   * calls of up to 500, two in flight at once, queue after queue in the order they first appear
   * (with `allOrNothing`: each queue's in one call, all or none, one call at a time); once a
   * write fails no further call is sent, and a BulkAddError says what became of each job (its
   * own call's outcome) -- what it says is what Redis holds.
   */
  async addBulk(specs: JobSpec[], opts: { allOrNothing?: boolean } = {}): Promise<AddResult[]> {
    if (!Array.isArray(specs)) throw new DtqError('VALIDATION', 'jobs must be an array')
    const problems: Problems = []
    const prepared = specs.map((spec, i) => {
      const mine: Problems = []
      let r: ReturnType<Queue['toRecord']> = null
      if (spec && typeof spec === 'object' && spec.depends_on !== undefined)
        mine.push(
          'depends_on is for a job added alone (add, POST /jobs); a graph of new jobs is a flow (POST /flows)',
        )
      else if (spec && typeof spec === 'object') r = this.toRecord(spec, mine)
      else mine.push('must be an object')
      for (const p of mine) problems.push(specs.length > 1 ? `jobs[${i}]: ${p}` : p)
      return r
    })
    throwIfProblems(problems, specs.length > 1 ? 'invalid jobs' : 'invalid job')
    // Tracing (ADR 0023): producer spans, whose contexts the jobs carry to the workers.
    const sending = activeTracer?.send(prepared.map(outgoing), F.trace)
    return sent(
      sending,
      () => this.writeBulk(specs, prepared, opts),
      (results) => results.map((r) => ({ id: r.job.id, created: r.created })),
    )
  }

  /** What routes a job to a partition: its partition key, else its dedup key (its jobs meet in one). */
  private routeOf(spec: JobSpec, record: NewJobRecord): JobSpec {
    return { ...spec, partition_key: spec.partition_key ?? record.extra[F.dedup]?.split(' ')[2] }
  }

  /**
   * The partition of a job of a partitioned queue. A job that can meet an earlier copy -- by
   * its own id, its idempotency key or its dedup key -- is looked for where its routing key led
   * before the queue grew (the counts it had: partitionsBefore): found there, it goes there, and
   * its enqueue meets that copy as it would have before the growth. Without growths, or for a
   * job with none of these keys, no lookup at all.
   */
  private partitionOf(
    names: string[],
    logical: string,
    spec: JobSpec,
    record: NewJobRecord,
    turn: number,
  ): string | Promise<string> {
    const routed = this.routeOf(spec, record)
    const here = names[pickPartition(names.length, routed, turn)]!
    const key = routed.partition_key || routed.idempotency_key || routed.id
    const dedup = record.extra[F.dedup]?.split(' ')[2]
    if (!key || !(spec.id || record.idem_hash || dedup)) return here
    const earlier = this.store.partitionsOnceRouted(logical, key, here)
    return earlier.length ? this.lookForEarlierCopy(earlier, here, spec, record, dedup) : here
  }

  /** The first of `earlier` holding a job by `spec`'s id, idempotency or dedup key, else `here`. */
  private async lookForEarlierCopy(
    earlier: string[],
    here: string,
    spec: JobSpec,
    record: NewJobRecord,
    dedup: string | undefined,
  ): Promise<string> {
    const k = this.store.keys
    for (const p of earlier) {
      const found = await Promise.all([
        spec.id ? this.redis.exists(k.job(p, spec.id)) : 0,
        record.idem_hash ? this.redis.exists(k.idempotency(p, record.idem_hash)) : 0,
        dedup ? this.redis.exists(k.dedup(p, dedup)) : 0,
      ])
      if (found.some((n) => n > 0)) return p
    }
    return here
  }

  /** addBulk's writes, once every job is valid. */
  private async writeBulk(
    specs: JobSpec[],
    prepared: Array<{ queue: string; record: NewJobRecord } | null>,
    opts: { allOrNothing?: boolean },
  ): Promise<AddResult[]> {
    // A partitioned queue's jobs go to their partitions (partitions.ts): by routing key, and the
    // keyless jobs of one call all to the next partition in turn (so a call stays one write).
    const partitions = await this.store.partitionNames()
    // One job (add, POST /jobs): one call, none of the grouping below (it allocated ~15 % of a
    // single add's garbage: maps, lanes, closures).
    if (specs.length === 1) {
      const p = prepared[0]!
      const names = partitions.get(p.queue)
      const queue =
        names && names.length > 1
          ? await this.partitionOf(names, p.queue, specs[0]!, p.record, this.roundRobin++)
          : p.queue
      try {
        const [r] = await this.store.enqueue(queue, [p.record])
        return [resultOf(r!)]
      } catch (err) {
        throw new BulkAddError(err, [{ outcome: writeFailure(err) }])
      }
    }
    const turn = new Map<string, number>()
    const byQueue = new Map<string, number[]>()
    const physical = prepared.map((p, i) => {
      const names = partitions.get(p!.queue)
      if (!names || names.length <= 1) return p!.queue
      if (!turn.has(p!.queue)) turn.set(p!.queue, this.roundRobin++)
      return this.partitionOf(names, p!.queue, specs[i]!, p!.record, turn.get(p!.queue)!)
    })
    // Lookups only for keyed jobs of queues that grew (partitionOf): awaited together.
    const homes = physical.some((q) => typeof q !== 'string')
      ? await Promise.all(physical)
      : (physical as string[])
    homes.forEach((q, i) => {
      const list = byQueue.get(q) ?? []
      list.push(i)
      byQueue.set(q, list)
    })
    const results: AddResult[] = new Array(specs.length)
    const chunk = opts.allOrNothing ? ATOMIC_MAX_JOBS : BULK_CHUNK
    const parts: Array<{ queue: string; part: number[] }> = []
    for (const [queue, idxs] of byQueue)
      for (let k = 0; k < idxs.length; k += chunk) parts.push({ queue, part: idxs.slice(k, k + chunk) })
    // Up to BULK_WINDOW calls in flight (allOrNothing: one, each queue's call after the one
    // before succeeded): Redis runs one call while the next is encoded and sent, and the first's
    // reply is read while it runs the next. After a failure no further call is sent; each job
    // of a call that failed gets that call's fate, the rest what their own call did.
    const window = opts.allOrNothing ? 1 : BULK_WINDOW
    const fates = new Map<number, WriteFailure>()
    let failure: { err: unknown } | undefined
    let next = 0
    const lane = async (): Promise<void> => {
      while (next < parts.length && !failure) {
        const { queue, part } = parts[next++]!
        try {
          const res = await this.store.enqueue(
            queue,
            part.map((i) => prepared[i]!.record),
          )
          part.forEach((i, j) => {
            results[i] = resultOf(res[j]!)
          })
        } catch (err) {
          failure ??= { err }
          const fate = writeFailure(err)
          for (const i of part) fates.set(i, fate)
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(window, parts.length) }, lane))
    if (failure)
      throw new BulkAddError(
        failure.err,
        specs.map((_, i): BulkItem => {
          const r = results[i]
          if (r) return { outcome: r.created ? 'created' : 'existing', job: r.job }
          return { outcome: fates.get(i) ?? 'not_created' }
        }),
      )
    return results
  }

  // ---- flows (docs/decisions/0019) ---------------------------------------------------------

  /**
   * A job added with `depends_on` (existing jobs): a small flow of its own -- the parents as
   * existing nodes, the job as their child -- so it waits, is released, reads its parents'
   * results, and follows the edges' failure policies exactly as a flow node does, on a Cluster
   * too. Checked whole first: bad fields, and parents that do not exist, are a VALIDATION
   * error that writes nothing. An existing job with its id or idempotency key is answered as
   * add answers it (created: false).
   */
  private async addDependent(spec: JobSpec): Promise<AddResult> {
    const { depends_on, ...own } = spec
    const problems: Problems = []
    const r = this.toRecord(own, problems)
    const queue = r?.queue ?? own.queue ?? this.settings.defaultQueue
    const parents = planDependencies(
      depends_on,
      { queue, id: own.id },
      (this.settings.flowMaxNodes ?? 1000) - 1,
      problems,
    )
    if (own.delay_ms !== undefined || own.run_at !== undefined)
      problems.push(
        'delay_ms and run_at are for jobs without depends_on (it starts when its parents completed)',
      )
    if (own.dedup !== undefined) problems.push(NO_DEDUP_IN_FLOWS)
    throwIfProblems(problems, 'invalid job')
    const existing = await this.findExisting(queue, own)
    if (existing) return { job: existing, created: false }
    const found = await Promise.all(parents.map((p) => this.store.getJob(p.queue, p.id)))
    const unknown = parents.filter((_, i) => !found[i]).map((p) => `${p.id} (queue ${p.queue})`)
    if (unknown.length)
      throw new DtqError('VALIDATION', `depends_on names jobs that do not exist: ${unknown.join(', ')}`, {
        problems: unknown.map((u) => `depends_on: no job ${u}`),
      })

    const flow = flowId(own.idempotency_key ? `job\n${queue}\n${own.idempotency_key}` : undefined)
    const id = r!.record.id || nodeJobId(flow, 'job')
    const nodes: FlowNodeRecord<NewJobRecord>[] = parents.map((p, i) => ({
      i,
      k: p.key,
      q: p.queue,
      id: p.id,
      p: [],
      x: 1,
    }))
    nodes.push({
      i: nodes.length,
      k: id,
      q: queue,
      id,
      p: parents.map((p) => [p.key, p.on_failure]),
      r: { ...r!.record, id },
    })
    const { created, missing } = await sent(
      activeTracer?.send([outgoing({ queue, record: nodes.at(-1)!.r! })], F.trace),
      () => this.flows.create(flow, own.idempotency_key ?? '', nodes),
      (c) => [{ id, created: c.created }],
    )
    if (missing.length)
      throw new DtqError(
        'VALIDATION',
        `depends_on: ${missing.join(', ')} no longer exist (removed while this job was added); job ${id} was cancelled`,
      )
    // A repeated idempotency key answers the job its flow made the first time.
    const child = created ? id : ((await this.flows.get(flow))?.nodes.find((n) => !n.existing)?.job_id ?? id)
    const job = await this.store.getJob(queue, child)
    if (!job) throw new DtqError('NOT_FOUND', `job ${child} not found`)
    return { job, created }
  }

  /** The job add() would answer instead of creating one: the same id, or idempotency key, in `queue`. */
  private async findExisting(queue: string, spec: AddOptions): Promise<Job | null> {
    if (spec.id) return this.store.getJob(queue, spec.id)
    if (spec.idempotency_key)
      return (
        (await this.store.findByIdempotencyKey(hashIdempotencyKey(spec.idempotency_key), queue))[0] ?? null
      )
    return null
  }

  /**
   * Adds a flow: a graph of jobs, each node a job spec with a `key` and the keys it
   * `depends_on`; a node starts when all its parents completed, and reads their results in
   * `job.parent_results`. Checked whole first (every node's fields, unknown keys, cycles, at
   * most FLOW_MAX_NODES nodes): an invalid flow writes nothing. With the same
   * `idempotency_key`, the same flow is answered (and a creation cut short is finished).
   */
  async addFlow(spec: FlowSpec): Promise<{ flow: FlowView; created: boolean }> {
    const problems: Problems = []
    const plan = planFlow(spec, this.settings.flowMaxNodes ?? 1000, problems)
    if (spec?.idempotency_key !== undefined) checkText(problems, 'idempotency_key', spec.idempotency_key, 256)
    const flow = flowId(spec?.idempotency_key)
    const nodes: FlowNodeRecord<NewJobRecord>[] = []
    for (const p of plan) {
      const mine: Problems = []
      const r = this.toRecord(p.spec as unknown as JobSpec, mine)
      if ((p.spec as unknown as JobSpec).dedup !== undefined) mine.push(NO_DEDUP_IN_FLOWS)
      for (const m of mine) problems.push(`node ${p.key}: ${m}`)
      if (!r) continue
      const record = { ...r.record, id: nodeJobId(flow, p.key) }
      nodes.push({ i: nodes.length, k: p.key, q: r.queue, id: record.id, p: p.parents, r: record })
    }
    throwIfProblems(problems, 'invalid flow')
    const { created } = await sent(
      activeTracer?.sendFlow(
        flow,
        nodes.map((n) => outgoing({ queue: n.q, record: n.r! })),
        F.trace,
      ),
      () => this.flows.create(flow, spec.idempotency_key ?? '', nodes),
      () => [],
    )
    const view = await this.flows.get(flow)
    if (!view) throw new DtqError('NOT_FOUND', `flow ${flow} not found`)
    return { flow: view, created }
  }

  /** A flow with its nodes' live states and its edges, or null. */
  async getFlow(id: string): Promise<FlowView | null> {
    if (!isFlowId(id)) throw new DtqError('VALIDATION', 'invalid flow id: f and 20 letters, digits, _ -')
    return this.flows.get(id)
  }

  // ---- reading -----------------------------------------------------------------------------

  private checkQueue(queue: string | undefined): void {
    if (queue !== undefined) {
      const problems: Problems = []
      checkName(problems, 'queue', queue, QUEUE_PATTERN, QUEUE_RULE)
      throwIfProblems(problems, 'invalid request')
    }
  }

  private checkId(id: unknown): asserts id is string {
    const problems: Problems = []
    checkName(problems, 'id', id, JOB_ID_PATTERN, ID_RULE)
    throwIfProblems(problems, 'invalid request')
  }

  /**
   * The job with this id, in `queue` or wherever it is. An id is unique within its queue (ADR
   * 0016): a caller's own id used in several queues names a job in each, and without the queue
   * that is an AMBIGUOUS_JOB_ID error (409) naming them.
   */
  async getJob(id: string, queue?: string): Promise<Job | null> {
    this.checkId(id)
    this.checkQueue(queue)
    return onlyOne(await this.store.findJobs(id, queue), `job id ${id}`)
  }

  async getJobOrThrow(id: string, queue?: string): Promise<Job> {
    const job = await this.getJob(id, queue)
    if (!job) throw new DtqError('NOT_FOUND', `job ${id} not found`)
    return job
  }

  /** The job added with an idempotency key, in `queue` or wherever it is (as getJob: 409 when in several). */
  async findByIdempotencyKey(key: string, queue?: string): Promise<Job | null> {
    return onlyOne(await this.jobsByIdempotencyKey(key, queue), 'idempotency key')
  }

  /** The jobs added with an idempotency key: in `queue`, or one per queue that has the key. */
  async jobsByIdempotencyKey(key: string, queue?: string): Promise<Job[]> {
    const problems: Problems = []
    checkText(problems, 'idempotency_key', key, 256)
    throwIfProblems(problems, 'invalid request')
    this.checkQueue(queue)
    return this.store.findByIdempotencyKey(hashIdempotencyKey(key), queue)
  }

  async jobLogs(id: string, queue?: string): Promise<string[]> {
    const job = await this.getJobOrThrow(id, queue)
    return this.store.jobLogs(job.queue, job.id)
  }

  async listJobs(
    q: {
      queue?: string
      state?: JobState
      task_type?: string
      cursor?: string
      /** Without a cursor: start at this time (ms), jobs listed at or before it (at or after: asc). */
      from?: number
      /** desc (default): newest first; asc: oldest first -- by the time a job entered its state. */
      order?: 'asc' | 'desc'
      /** updated (default): by the time a job entered its state; created: by created_at (ADR 0035). */
      sort?: 'updated' | 'created'
      limit?: number
    } = {},
  ): Promise<Page<Job>> {
    const problems: Problems = []
    if (q.queue !== undefined) checkName(problems, 'queue', q.queue, QUEUE_PATTERN, QUEUE_RULE)
    if (q.state !== undefined && !STATES.includes(q.state))
      problems.push(`status must be one of ${STATES.join(', ')}`)
    if (q.task_type !== undefined)
      checkName(problems, 'task_type', q.task_type, TASK_TYPE_PATTERN, 'a task type')
    const limit = q.limit ?? 50
    checkInt(problems, 'limit', limit, 1, 1000)
    if (q.from !== undefined) checkInt(problems, 'from', q.from, 0, MAX_LIST_TIME_MS)
    if (q.order !== undefined && q.order !== 'asc' && q.order !== 'desc')
      problems.push('order must be asc or desc')
    if (q.sort !== undefined && q.sort !== 'updated' && q.sort !== 'created')
      problems.push('sort must be updated or created')
    if (q.sort === 'created' && q.queue === undefined)
      problems.push("sort=created needs a queue: the created-time index is a queue's (ADR 0035)")
    throwIfProblems(problems, 'invalid request')
    if (q.sort !== 'created' || q.queue === undefined) return this.store.listJobs({ ...q, limit })
    const state = await this.store.createdIndexState(q.queue)
    if (state !== 'on') {
      throw new DtqError(
        'CREATED_INDEX_OFF',
        state === 'building'
          ? `the created-time index of queue ${q.queue} is building: try again when GET /queues says created_index: on`
          : `the created-time index of queue ${q.queue} is off: an admin turns it on with PUT /queues/${q.queue}/created-index {"on": true} (or \`dtq queues created-index ${q.queue} on\`)`,
      )
    }
    return this.store.listCreated({ ...q, queue: q.queue, limit })
  }

  /**
   * Switches a queue's created-time index on or off (ADR 0035). On: the switch reads 'building'
   * at once, then the backfill runs here for up to `waitMs` (the janitor continues whatever is
   * left: it is resumable). NOT_FOUND when no queue of that name is registered.
   */
  async setCreatedIndex(queue: string, on: boolean, waitMs = 2000): Promise<CreatedIndexState> {
    this.checkQueue(queue)
    const physical = await this.partitionsFresh(queue)
    const registered = new Set(await this.store.queues())
    if (!physical.some((q) => registered.has(q))) throw new DtqError('NOT_FOUND', `queue ${queue} not found`)
    await this.store.setCreatedIndex(queue, on)
    if (!on) return 'off'
    const until = Date.now() + waitMs
    let state = await this.store.createdIndexState(queue)
    while (state === 'building' && Date.now() < until) state = await this.store.createdBackfill(queue, 1)
    return state
  }

  /** The created-time index's state in a queue: off, building or on (ADR 0035). */
  createdIndexState(queue: string): Promise<CreatedIndexState> {
    return this.store.createdIndexState(queue)
  }

  /** How many jobs `listJobs` would walk with this filter, when that is cheap; else null (ADR 0033). */
  listTotal(q: {
    queue?: string
    state?: JobState
    task_type?: string
  }): Promise<{ total: number; by_state: Partial<Record<JobState, number>> } | null> {
    return this.store.listTotal(q)
  }

  async stats(): Promise<{ queues: QueueStats[]; totals: Record<JobState, number> & { dlq: number } }> {
    // Two round trips whatever the number of queues: the registry, then one call per queue; a
    // partitioned queue's partitions are summed into one row.
    const [physical, counts] = await Promise.all([
      this.store.queuesStats(await this.store.queues()),
      this.store.partitionNames(),
    ])
    const queues = mergePartitions(physical, new Map([...counts].map(([q, names]) => [q, names.length])))
    const totals = Object.fromEntries(STATES.map((s) => [s, 0])) as Record<JobState, number> & { dlq: number }
    totals.dlq = 0
    for (const q of queues) {
      for (const s of STATES) totals[s] += q.counts[s]
      totals.dlq += q.dlq
    }
    return { queues, totals }
  }

  /**
   * `stats()` with each queue's live consumers (ADR 0032): `live_workers` (live workers consuming
   * it, from the worker registry) and `no_workers` (work waiting or running, not paused, and no
   * live worker: `lacksWorkers`, the alert no_worker's condition). The registry is read beside the
   * stats, in the same round trips.
   */
  async statsWithConsumers(): Promise<{
    queues: Array<QueueStats & { live_workers: number; no_workers: boolean }>
    totals: Record<JobState, number> & { dlq: number }
    workers: WorkerInfo[]
  }> {
    const [stats, workers] = await Promise.all([this.stats(), this.workers()])
    const live = liveWorkersByQueue(workers)
    const queues = stats.queues.map((q) => {
      const n = live.get(q.queue) ?? 0
      return {
        ...q,
        live_workers: n,
        no_workers: lacksWorkers({ paused: q.paused, waiting: q.counts.queued, active: q.counts.active }, n),
      }
    })
    return { queues, totals: stats.totals, workers }
  }

  /** The queues, a partitioned queue once. */
  async queueNames(): Promise<string[]> {
    return [...new Set((await this.store.queues()).map(logicalQueue))]
  }

  /**
   * Spreads a queue over `count` partitions (ADR 0017): on a Redis Cluster, over as many slots.
   * A count only grows. Workers serving the queue pick the new partitions up at their next
   * heartbeat; producers route to them within PARTITIONS_FRESH_MS.
   */
  async setPartitions(
    queue: string,
    count: number,
  ): Promise<{ queue: string; partitions: number; before: number }> {
    const problems: Problems = []
    checkName(problems, 'queue', queue, QUEUE_PATTERN, QUEUE_RULE)
    checkInt(problems, 'partitions', count, 1, MAX_PARTITIONS)
    throwIfProblems(problems, 'invalid request')
    const { before, after } = await this.store.setPartitions(queue, count)
    // New partitions of a queue whose created-time index is set get theirs too (ADR 0035).
    await this.store.partitionNames(true)
    if (after > before && (await this.store.createdIndexState(queue)) !== 'off')
      await this.setCreatedIndex(queue, true)
    return { queue, partitions: after, before }
  }

  /** How many partitions a queue has (1: not partitioned). */
  async partitions(queue: string): Promise<number> {
    this.checkQueue(queue)
    return (await this.store.partitionNames(true)).get(queue)?.length ?? 1
  }

  async throughput(minutes = 60) {
    return this.store.throughput(await this.store.queues(), minutes)
  }

  /**
   * Throughput and run/wait latency percentiles per interval over a range (1h, 6h, 24h), of one
   * queue (its partitions summed) or all: one `history` call per queue, in one round (ADR 0026).
   */
  async statsHistory(range: HistoryRange, queue?: string, taskType?: string) {
    const r = HISTORY_RANGES[range]
    if (!r) throw new DtqError('VALIDATION', `range must be one of ${Object.keys(HISTORY_RANGES).join(', ')}`)
    this.checkQueue(queue)
    if (taskType !== undefined) {
      const problems: Problems = []
      checkName(problems, 'task_type', taskType, TASK_TYPE_PATTERN, 'a task type')
      throwIfProblems(problems, 'invalid request')
    }
    const now = this.clock.now()
    const from = Math.floor(now / 60_000) - r.stepMinutes * r.intervals + 1
    const queues = await this.store.physicalQueues(queue)
    const raw = await Promise.all(
      queues.map((q) => this.store.historyOf(q, from, r.stepMinutes, r.intervals, taskType)),
    )
    const all = queues.length
      ? historyPoints(
          from,
          r.stepMinutes,
          raw.map(([tp, snaps]) => [tp, snaps] as [number[], string[]]),
        )
      : historyPoints(from, r.stepMinutes, [[[], new Array<string>(r.intervals + 1).fill('')]])
    // One task type (ADR 0032): its counts from the per-type snapshots; no latency per type.
    const points =
      taskType === undefined
        ? all
        : typedPoints(
            all,
            raw.map(([, , typed]) => typed),
          )
    return {
      range,
      queue: queue ?? null,
      task_type: taskType ?? null,
      step_ms: r.stepMinutes * 60_000,
      points,
    }
  }

  // ---- changing jobs -----------------------------------------------------------------------

  /** Cancels a job: at once when it waits, by request when it runs. */
  async cancel(id: string, queue?: string): Promise<{ job: Job; outcome: 'cancelled' | 'requested' }> {
    const job = await this.getJobOrThrow(id, queue)
    const res = await this.store.cancel(job.queue, job.id)
    if (res === 'not_found') throw new DtqError('NOT_FOUND', `job ${id} not found`)
    if (res !== 'cancelled' && res !== 'requested') {
      const state = res.replace(/^state:/, '')
      throw new DtqError('INVALID_STATE', `job ${id} is ${state} and cannot be cancelled`, { state })
    }
    // A flow member's waiting descendants are cancelled now (the leader's sweep would, later).
    if (job.flow_id && res === 'cancelled') await this.flows.drain(job.queue).catch(() => {})
    return { job: (await this.store.getJob(job.queue, job.id)) ?? job, outcome: res }
  }

  /** Runs a failed or cancelled job again (out of the DLQ, with fresh retries). */
  async retry(id: string, queue?: string): Promise<Job> {
    const job = await this.getJobOrThrow(id, queue)
    const [res] = await this.store.requeue(job.queue, [job.id])
    if (res === 'not_found') throw new DtqError('NOT_FOUND', `job ${id} not found`)
    if (res !== 'queued') {
      const state = String(res).replace(/^state:/, '')
      throw new DtqError('INVALID_STATE', `job ${id} is ${state} and cannot be retried`, { state })
    }
    return (await this.store.getJob(job.queue, job.id)) ?? job
  }

  // ---- day-2 operations (ADR 0020) -------------------------------------------------------

  /** Runs a scheduled or retrying job now (it joins the tail of its priority's stream). */
  async runNow(id: string, queue?: string): Promise<Job> {
    const job = await this.getJobOrThrow(id, queue)
    answer(await this.store.runNow(job.queue, job.id), id, 'run now (only a scheduled or retrying job can)')
    return (await this.store.getJob(job.queue, job.id)) ?? job
  }

  /**
   * Changes the priority of a job that has not started (waiting, queued, scheduled, retrying).
   * A queued job moves to the tail of its new priority's stream, in one step.
   */
  async setPriority(id: string, priority: Priority, queue?: string): Promise<Job> {
    const problems: Problems = []
    checkPriority(problems, priority)
    throwIfProblems(problems, 'invalid request')
    const job = await this.getJobOrThrow(id, queue)
    answer(await this.store.setPriority(job.queue, job.id, priority), id, 'change priority (it has started)')
    return (await this.store.getJob(job.queue, job.id)) ?? job
  }

  /**
   * Replaces the payload of a job that has not started or has failed; the job records the edit
   * (`edits`: count, by, at, the SHA-1 of the payload replaced).
   */
  async editPayload(id: string, payload: unknown, opts: { queue?: string; by?: string } = {}): Promise<Job> {
    const problems: Problems = []
    const encoded = encodeJson(problems, 'payload', payload, this.settings.maxPayloadBytes)
    const by = opts.by ?? 'library'
    checkText(problems, 'by', by, 200)
    if (by === '') problems.push('by must not be empty')
    throwIfProblems(problems, 'invalid request')
    const job = await this.getJobOrThrow(id, opts.queue)
    answer(
      await this.store.editPayload(job.queue, job.id, encoded!, by),
      id,
      'edit its payload (only a job that has not started, or has failed, can)',
    )
    return (await this.store.getJob(job.queue, job.id)) ?? job
  }

  /**
   * Deletes a job in any state, and every trace of it (stream entry, delayed set, DLQ entry,
   * index, logs, its idempotency key). A running job is fenced: its worker's outcome is
   * rejected as stale and its handler is asked to stop. A flow member that has not ended is
   * refused (409): cancel it first, so its children follow their policies.
   */
  async deleteJob(id: string, queue?: string): Promise<{ id: string; queue: string; state: JobState }> {
    const job = await this.getJobOrThrow(id, queue)
    const res = await this.store.deleteJob(job.queue, job.id)
    if (res.startsWith('flow:')) {
      throw new DtqError(
        'INVALID_STATE',
        `job ${id} is a member of flow ${job.flow_id ?? '(another flow)'} and has not ended (${res.slice(5)}): cancel it first, so its children follow their policies`,
        { state: res.slice(5), flow_id: job.flow_id },
      )
    }
    answer(res, id, 'delete')
    return { id: job.id, queue: job.queue, state: res.slice('deleted:'.length) as JobState }
  }

  /**
   * Removes up to `limit` (default 1000) of a queue's jobs waiting to run -- queued, scheduled,
   * retrying; flow members among them are cancelled instead. Call again while `more`.
   */
  async emptyQueue(
    queue: string,
    opts: { limit?: number } = {},
  ): Promise<{ queue: string; removed: number; cancelled: number; more: boolean }> {
    const limit = opts.limit ?? 1000
    const problems: Problems = []
    checkName(problems, 'queue', queue, QUEUE_PATTERN, QUEUE_RULE)
    checkInt(problems, 'limit', limit, 1, 10_000)
    throwIfProblems(problems, 'invalid request')
    const out = { queue, removed: 0, cancelled: 0, more: false }
    for (const q of await this.partitionsFresh(queue)) {
      const left = limit - out.removed - out.cancelled
      if (left <= 0) {
        out.more = true
        break
      }
      const r = await this.store.emptyQueue(q, left)
      out.removed += r.removed
      out.cancelled += r.cancelled
      out.more ||= r.more
    }
    if (out.cancelled) await this.flows.drain(queue).catch(() => {})
    return out
  }

  /**
   * Deletes a queue and all its keys (every partition), its registry entries and the schedules
   * that make its jobs. Refused (409) while jobs run in it unless `force`: their workers' outcomes
   * are then rejected as stale. NOT_FOUND when no queue of that name is registered.
   */
  async deleteQueue(queue: string, opts: { force?: boolean } = {}): Promise<{ queue: string; keys: number }> {
    this.checkQueue(queue)
    const physical = await this.partitionsFresh(queue)
    const registered = new Set(await this.store.queues())
    if (!physical.some((q) => registered.has(q))) throw new DtqError('NOT_FOUND', `queue ${queue} not found`)
    const stats = await this.store.queuesStats(physical)
    const active = stats.reduce((a, s) => a + s.counts.active, 0)
    if (active > 0 && !opts.force) {
      throw new DtqError(
        'INVALID_STATE',
        `queue ${queue} has ${active} running jobs: wait for them, or force (their workers' results are then rejected)`,
        { active },
      )
    }
    let keys = 0
    for (const q of physical) keys += await this.store.dropQueue(q)
    if (physical.length > 1) {
      await this.redis.hdel(this.store.keys.partitions(), queue)
      await this.redis.hdel(this.store.keys.partitionsBefore(), queue)
    }
    await this.store.partitionNames(true)
    return { queue, keys }
  }

  /**
   * Cancels, retries or deletes (finished ones only) the jobs matching `filter`, at most `ratePerSec` a second, up to `max`.
   * Walks each state the action applies to (or the filter's one) newest first with a cursor, so
   * a job that enters the state after the walk began is not touched. DTQ's own system jobs are
   * skipped (a bulk cancel never cancels itself). Returns how many jobs it examined and changed.
   */
  async bulkJobs(
    action: BulkAction,
    filter: JobFilter,
    opts: {
      ratePerSec?: number
      max?: number
      signal?: AbortSignal
      onPage?: (p: { examined: number; done: number }) => Promise<void> | void
    } = {},
  ): Promise<{ examined: number; done: number }> {
    const rate = opts.ratePerSec ?? 100
    const max = opts.max ?? Number.MAX_SAFE_INTEGER
    this.checkBulk(action, filter, rate, opts.max)
    const states = filter.state ? [filter.state] : BULK_STATES[action]
    const needle = filter.error_contains?.toLowerCase()
    let examined = 0
    let done = 0
    const startedAt = Date.now()
    for (const state of states) {
      let cursor: string | undefined
      while (done < max && !opts.signal?.aborted) {
        const page = await this.store.listJobs({
          queue: filter.queue,
          state,
          task_type: filter.task_type,
          cursor,
          limit: Math.min(100, rate, max - done),
        })
        const now = this.clock.now()
        const hits = page.items.filter(
          (j) =>
            !j.task_type.startsWith(RESERVED_TASK_PREFIX) &&
            (!needle || (j.error ?? '').toLowerCase().includes(needle)) &&
            (filter.older_than_ms === undefined || j.updated_at <= now - filter.older_than_ms),
        )
        examined += page.items.length
        done += await this.applyBulk(action, hits)
        await opts.onPage?.({ examined, done })
        if (!page.next_cursor) break
        cursor = page.next_cursor
        const aheadMs = (done / rate) * 1000 - (Date.now() - startedAt)
        if (aheadMs > 0) await sleep(aheadMs, opts.signal)
      }
    }
    return { examined, done }
  }

  /** Checks a bulk operation as bulkJobs() would, writing nothing (VALIDATION). */
  checkBulk(action: BulkAction, filter: JobFilter, ratePerSec?: number, max?: number): void {
    const problems: Problems = []
    checkBulk(problems, action, filter ?? {})
    if (ratePerSec !== undefined) checkInt(problems, 'rate_per_sec', ratePerSec, 1, 100_000)
    if (max !== undefined) checkInt(problems, 'max', max, 1, 10_000_000)
    throwIfProblems(problems, 'invalid request')
  }

  /** One page of a bulk operation: how many of `jobs` it changed. */
  private async applyBulk(action: BulkAction, jobs: Job[]): Promise<number> {
    let n = 0
    const byQueue = new Map<string, string[]>()
    for (const j of jobs) byQueue.set(j.queue, [...(byQueue.get(j.queue) ?? []), j.id])
    for (const [q, ids] of byQueue) {
      if (action === 'delete') {
        // Only if still finished when the call runs (invariant 36): a job retried since the page
        // was read is queued or running now, and stays.
        for (const id of ids)
          if ((await this.store.deleteJob(q, id, BULK_STATES.delete)).startsWith('deleted:')) n++
        continue
      }
      if (action === 'retry') {
        n += (await this.store.requeue(q, ids)).filter((r) => r === 'queued').length
        continue
      }
      for (const id of ids) {
        const r = await this.store.cancel(q, id)
        if (r === 'cancelled' || r === 'requested') n++
      }
      if (jobs.some((j) => j.flow_id)) await this.flows.drain(q).catch(() => {})
    }
    return n
  }

  /** Sets a live worker's concurrency (taken at its next command check; running jobs go on). */
  async setWorkerConcurrency(id: string, concurrency: number): Promise<void> {
    const problems: Problems = []
    checkInt(problems, 'concurrency', concurrency, 1, 10_000)
    throwIfProblems(problems, 'invalid request')
    await this.commandWorker(id, `concurrency:${concurrency}`)
  }

  // ---- dead letters ------------------------------------------------------------------------

  async listDlq(
    q: {
      queue?: string
      task_type?: string
      priority?: Priority
      error_class?: string
      error_contains?: string
      older_than_ms?: number
      cursor?: string
      limit?: number
    } = {},
  ) {
    const problems: Problems = []
    checkDlqFilter(problems, q)
    const limit = q.limit ?? 50
    checkInt(problems, 'limit', limit, 1, 1000)
    throwIfProblems(problems, 'invalid request')
    return this.store.listDlq({ ...q, limit })
  }

  /**
   * The bounds of a DLQ redrive started now: per queue (the given one, or every queue), its DLQ's
   * last entry id. A redrive walks only the entries at or below them, so failures after this
   * moment -- jobs the redrive requeued that failed again among them -- are never touched.
   */
  async dlqBounds(queue?: string): Promise<Record<string, string>> {
    this.checkQueue(queue)
    return dlqTails(this.store, await this.store.physicalQueues(queue))
  }

  /**
   * Retries dead-lettered jobs matching a filter, at most `ratePerSec` jobs a second (so a
   * recovered downstream is not flooded), up to `max` jobs. Returns how many were requeued.
   *
   * It touches each job that matched when the redrive was asked for at most once: it walks each
   * queue's DLQ newest first from `bounds` (dlqBounds(), taken now when not given) down with a
   * cursor. A run resumed with the same bounds (the `dtq.dlq_retry` job after a crash) skips
   * what the first run requeued: those entries are gone, and a job that failed again has a
   * new entry above the bound.
   */
  async retryDlqMany(
    filter: DlqFilter,
    opts: { ratePerSec?: number; max?: number; signal?: AbortSignal; bounds?: Record<string, string> } = {},
  ): Promise<number> {
    const rate = opts.ratePerSec ?? 100
    const max = opts.max ?? Number.MAX_SAFE_INTEGER
    const problems: Problems = []
    checkInt(problems, 'rate', rate, 1, 100_000)
    checkDlqFilter(problems, filter)
    if (opts.bounds !== undefined) {
      if (!opts.bounds || typeof opts.bounds !== 'object')
        problems.push('bounds must map queues to entry ids')
      else
        for (const [q, id] of Object.entries(opts.bounds)) {
          checkName(problems, 'bounds', q, PHYSICAL_QUEUE_PATTERN, 'queue names')
          if (typeof id !== 'string' || !/^\d{1,20}-\d{1,20}$/.test(id))
            problems.push(`bounds.${q} must be a stream entry id`)
        }
    }
    throwIfProblems(problems, 'invalid request')
    const bounds = opts.bounds ?? (await this.dlqBounds(filter.queue))
    const needle = filter.error_contains?.toLowerCase()
    const matches = (e: DlqEntry, now: number) =>
      e.current &&
      (!filter.task_type || e.type === filter.task_type) &&
      (!filter.priority || e.priority === filter.priority) &&
      (!needle || e.error.toLowerCase().includes(needle)) &&
      (filter.older_than_ms === undefined || e.failed_at <= now - filter.older_than_ms)
    let done = 0
    const startedAt = Date.now()
    for (const queue of Object.keys(bounds).sort()) {
      if (filter.queue !== undefined && logicalQueue(queue) !== filter.queue) continue
      let hi = bounds[queue]!
      while (done < max && !opts.signal?.aborted) {
        const page = await dlqPage(this.store, queue, hi, Math.min(100, rate, max - done))
        if (!page.length) break
        hi = `(${page[page.length - 1]!.entry}`
        const now = this.clock.now()
        const ids = page.filter((e) => matches(e, now)).map((e) => e.id)
        if (ids.length) done += (await this.store.requeue(queue, ids)).filter((r) => r === 'queued').length
        // Pace: never ahead of `rate` jobs per second since the start.
        const aheadMs = (done / rate) * 1000 - (Date.now() - startedAt)
        if (aheadMs > 0) await sleep(aheadMs, opts.signal)
      }
    }
    return done
  }

  async deleteDlq(id: string, queue?: string): Promise<void> {
    const job = await this.getJobOrThrow(id, queue)
    if (job.state !== 'failed')
      throw new DtqError('INVALID_STATE', `job ${id} is ${job.state}, not in the DLQ`)
    if ((await this.store.dlqDelete(job.queue, [job.id])) === 1) return
    // Deleted or moved on since it was read (a racing delete, a retry): say which.
    const now = await this.store.getJob(job.queue, job.id)
    if (!now) throw new DtqError('NOT_FOUND', `job ${id} not found`)
    throw new DtqError('INVALID_STATE', `job ${id} is ${now.state}, not in the DLQ`)
  }

  /** Dead letters counted by queue × task type × priority × error class, exact (GET /dlq/stats). */
  async dlqStats(f: { queue?: string; task_type?: string; priority?: Priority } = {}) {
    const problems: Problems = []
    checkDlqFilter(problems, f)
    throwIfProblems(problems, 'invalid request')
    return this.store.dlqStats(await this.store.physicalQueues(f.queue), f)
  }

  /**
   * What is failing now (GET /stats/failures, ADR 0032): the dead letters of the last `minutes`
   * grouped by queue × task type × error class (the DLQ stats walk started at the window's first
   * entry id, at most 4 pages of 500 per queue), each top group's newest message (one listing
   * call each), and per queue the completed and failed jobs of the window's minute buckets.
   */
  async recentFailures(
    o: { minutes?: number; queue?: string; task_type?: string; limit?: number } = {},
  ): Promise<RecentFailures> {
    const minutes = o.minutes ?? 15
    const limit = o.limit ?? 10
    const problems: Problems = []
    checkInt(problems, 'minutes', minutes, 1, 1440)
    checkInt(problems, 'limit', limit, 1, 50)
    checkDlqFilter(problems, { queue: o.queue, task_type: o.task_type })
    throwIfProblems(problems, 'invalid request')
    const since = this.clock.now() - minutes * 60_000
    const queues = await this.store.physicalQueues(o.queue)
    const [dlq, tps] = await Promise.all([
      this.store.dlqStats(queues, { task_type: o.task_type }, { since, maxRounds: RECENT_FAILURE_PAGES }),
      Promise.all(queues.map((q) => this.store.throughput([q], minutes))),
    ])
    // Priorities merged: the console's link filters the DLQ by queue, type and class.
    const merged = new Map<string, FailureGroup>()
    for (const g of dlq.groups) {
      const key = [g.queue, g.task_type, g.error_class].join('\0')
      const m = merged.get(key)
      if (m) {
        m.count += g.count
        m.last_seen = Math.max(m.last_seen, g.newest)
      } else
        merged.set(key, {
          queue: g.queue,
          task_type: g.task_type,
          error_class: g.error_class,
          count: g.count,
          last_seen: g.newest,
          last_message: null,
        })
    }
    const groups = [...merged.values()]
      .sort((a, b) => b.count - a.count || b.last_seen - a.last_seen)
      .slice(0, limit)
    await Promise.all(
      groups.map(async (g) => {
        // A class the listing's filter cannot name (a message's odd `Name:`) keeps no message.
        if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(g.error_class)) return
        const page = await this.store.listDlq({
          queue: g.queue,
          task_type: g.task_type,
          error_class: g.error_class,
          limit: 1,
        })
        g.last_message = page.items[0]?.error?.slice(0, 500) ?? null
      }),
    )
    const rate = (completed: number, failed: number) => ({
      completed,
      failed,
      failure_rate: completed + failed ? failed / (completed + failed) : null,
    })
    const perQueue = new Map<string, { completed: number; failed: number }>()
    queues.forEach((q, i) => {
      const acc = perQueue.get(logicalQueue(q)) ?? { completed: 0, failed: 0 }
      for (const m of tps[i]!) {
        acc.completed += m.completed
        acc.failed += m.failed
      }
      perQueue.set(logicalQueue(q), acc)
    })
    const rows = [...perQueue].map(([queue, r]) => ({ queue, ...rate(r.completed, r.failed) }))
    const sum = (k: 'completed' | 'failed') => rows.reduce((n, r) => n + r[k], 0)
    return {
      minutes,
      since,
      groups,
      total: dlq.total,
      truncated: dlq.truncated,
      ...rate(sum('completed'), sum('failed')),
      queues: rows.sort((a, b) => b.failed - a.failed || (a.queue < b.queue ? -1 : 1)),
    }
  }

  /** Deletes dead-lettered jobs that failed more than `days` days ago (0: all), of one priority or all. */
  async purgeDlq(days: number, queue?: string, priority?: Priority): Promise<number> {
    const problems: Problems = []
    if (typeof days !== 'number' || !Number.isFinite(days) || days < 0 || days > 3650) {
      problems.push('older_than_days must be a number from 0 to 3650')
    }
    checkDlqFilter(problems, { priority })
    throwIfProblems(problems, 'invalid request')
    this.checkQueue(queue)
    const before = days === 0 ? this.clock.now() + 1 : this.clock.now() - days * 86_400_000
    let total = 0
    for (const q of await this.store.physicalQueues(queue))
      total += await this.store.dlqPurgeBefore(q, before, 500, priority)
    // The purge summary (ADR 0025): a notification through the alert channels.
    if (total > 0) await this.alerts.purgeSummary(total, days, queue).catch(() => {})
    return total
  }

  // ---- schedules (ADR 0018) ---------------------------------------------------------------

  /** Creates or replaces the schedule `name` (bad input: VALIDATION, nothing written). */
  upsertSchedule(name: string, spec: ScheduleSpec): Promise<ScheduleDetail> {
    return this.schedules.upsert(name, spec)
  }
  listSchedules(): Promise<ScheduleView[]> {
    return this.schedules.list()
  }
  /** A schedule with its next five fire times and its history, or null. */
  getSchedule(name: string): Promise<ScheduleDetail | null> {
    return this.schedules.get(name)
  }
  removeSchedule(name: string): Promise<void> {
    return this.schedules.remove(name)
  }
  pauseSchedule(name: string): Promise<ScheduleDetail> {
    return this.schedules.pause(name)
  }
  resumeSchedule(name: string): Promise<ScheduleDetail> {
    return this.schedules.resume(name)
  }
  /** One job now from the schedule's template (next_fire untouched). */
  triggerSchedule(name: string): Promise<{ job_id: string; schedule: ScheduleDetail }> {
    return this.schedules.trigger(name)
  }

  // ---- queues and workers ------------------------------------------------------------------

  /** Pauses a queue (every partition of a partitioned one). */
  async pauseQueue(queue: string): Promise<void> {
    this.checkQueue(queue)
    for (const q of await this.partitionsFresh(queue)) await this.store.setPaused(q, true)
  }

  async resumeQueue(queue: string): Promise<void> {
    this.checkQueue(queue)
    for (const q of await this.partitionsFresh(queue)) await this.store.setPaused(q, false)
  }

  // ---- flow control (docs/decisions/0022) ----------------------------------------------------

  /**
   * Replaces a queue's limits: rate, concurrency (fleet-wide), per-key concurrency on
   * partition_key (1: FIFO per key), and per task type rate, concurrency and breaker. `{}`
   * removes them all (held jobs go back to their streams). Checked whole first: a bad spec is a
   * VALIDATION error that changes nothing. Not for a partitioned queue (a limit there would be
   * per partition): CONFLICT.
   */
  async setLimits(queue: string, spec: LimitsSpec): Promise<LimitsView & { released: number }> {
    this.checkQueue(queue)
    const problems: Problems = []
    const fields = limitFields(spec, problems)
    throwIfProblems(problems, 'invalid limits')
    await this.refusePartitioned(queue)
    await this.store.registerQueue(queue)
    const released = await this.limits.set(queue, fields)
    return { ...(await this.limits.view(queue)), released }
  }

  async getLimits(queue: string): Promise<LimitsView> {
    this.checkQueue(queue)
    return this.limits.view(queue)
  }

  /** Opens (for `openMs`, default the breaker's cool-down), closes or resets a task type's breaker. */
  async breaker(queue: string, taskType: string, action: BreakerAction, openMs = 0): Promise<LimitsView> {
    this.checkQueue(queue)
    const problems: Problems = []
    checkName(problems, 'task_type', taskType, TASK_TYPE_PATTERN, '1-128 letters, digits, _ . : / -')
    if (!['open', 'close', 'reset'].includes(action)) problems.push('action must be open, close or reset')
    checkInt(problems, 'open_ms', openMs, 0, 7 * 86_400_000)
    throwIfProblems(problems, 'invalid request')
    await this.refusePartitioned(queue)
    await this.store.registerQueue(queue)
    await this.limits.breaker(queue, taskType, action, openMs)
    return this.limits.view(queue)
  }

  private async refusePartitioned(queue: string): Promise<void> {
    if ((await this.partitionsFresh(queue)).length > 1)
      throw new DtqError(
        'PARTITIONED_QUEUE',
        `queue ${queue} is partitioned: limits apply per physical queue, so a partitioned queue cannot have them`,
      )
  }

  private async partitionsFresh(queue: string): Promise<string[]> {
    return (await this.store.partitionNames(true)).get(queue) ?? [queue]
  }

  workers(): Promise<WorkerInfo[]> {
    return this.registry.list()
  }

  /** One live worker with its running jobs, outcomes per minute and latest failures (404 when not live). */
  async worker(id: string): Promise<WorkerDetail> {
    this.checkWorkerId(id)
    const w = await this.registry.get(id)
    if (!w) throw new DtqError('NOT_FOUND', `worker ${id} not found`)
    return w
  }

  async commandWorker(id: string, cmd: WorkerCommand): Promise<void> {
    if (id !== '*') this.checkWorkerId(id)
    if (!(await this.registry.command(id, cmd))) throw new DtqError('NOT_FOUND', `worker ${id} not found`)
  }

  private checkWorkerId(id: string): void {
    const problems: Problems = []
    checkName(problems, 'worker id', id, /^[A-Za-z0-9_.-]{1,200}$/, 'a worker id')
    throwIfProblems(problems, 'invalid request')
  }
}

/**
 * Queue stats with each partitioned queue's partitions summed into one row, named by the queue
 * and carrying `partitions` (its count); other rows as they are. A queue is paused when any of
 * its partitions is (pausing one pauses all); its oldest waiting job is the oldest of them all.
 */
function mergePartitions(rows: QueueStats[], counts: Map<string, number>): QueueStats[] {
  const out = new Map<string, QueueStats>()
  for (const r of rows) {
    const name = logicalQueue(r.queue)
    const acc = out.get(name)
    if (!acc) {
      const row = structuredClone(r)
      row.queue = name
      if ((counts.get(name) ?? 1) > 1 || name !== r.queue) row.partitions = Math.max(counts.get(name) ?? 1, 1)
      out.set(name, row)
      continue
    }
    acc.partitions = Math.max(counts.get(name) ?? 1, acc.partitions ?? 1)
    acc.paused ||= r.paused
    acc.created_index = createdAcross([acc.created_index, r.created_index])
    for (const k of Object.keys(r.counts) as Array<keyof QueueStats['counts']>) acc.counts[k] += r.counts[k]
    for (const [k, v] of Object.entries(r.totals)) acc.totals[k] = (acc.totals[k] ?? 0) + v
    for (const p of Object.keys(r.streams) as Array<keyof QueueStats['streams']>) {
      const a = acc.streams[p]
      const b = r.streams[p]
      a.length += b.length
      a.pending += b.pending
      // Unknown in one partition: unknown in the sum.
      a.lag = a.lag === null || b.lag === null ? null : a.lag + b.lag
      a.oldest_waiting_ms = oldest(a.oldest_waiting_ms, b.oldest_waiting_ms)
    }
    acc.delayed += r.delayed
    acc.dlq += r.dlq
    acc.oldest_waiting_ms = oldest(acc.oldest_waiting_ms, r.oldest_waiting_ms)
  }
  return [...out.values()].sort((a, b) => (a.queue < b.queue ? -1 : a.queue > b.queue ? 1 : 0))
}

const oldest = (a: number | null, b: number | null) => (a === null ? b : b === null ? a : Math.max(a, b))
