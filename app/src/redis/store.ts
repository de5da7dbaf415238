/**
 * The typed store: the only code that talks to Redis about jobs. Every state change is one
 * Lua script (app/src/redis/scripts); reads are plain commands or read-only functions (one
 * call per queue), pipelined.
 */
import type { Redis } from 'ioredis'
import { DtqError } from '../errors.ts'
import { GENERATED_ID, idBlock } from '../queue/ids.ts'
import {
  decodeJob,
  F,
  type Job,
  type JobState,
  PRIORITIES,
  type Priority,
  pairsToRecord,
  STATES,
} from '../queue/job.ts'
import { JOB_ID_PATTERN, QUEUE_PATTERN } from '../queue/validate.ts'
import { IdAllocator } from './id-allocator.ts'
import { GROUP, Keys } from './keys.ts'
import { functions, type ScriptName } from './scripts.ts'

export interface Clock {
  now(): number
}
export const systemClock: Clock = { now: () => Date.now() }

export interface StoreOptions {
  prefix: string
  eventsMaxLen: number
  completedRetentionS: number
  failedRetentionS: number
  /** Attempt errors kept on a job. */
  errorsKept?: number
  /** Log lines kept per job. */
  logsKept?: number
  /** The most queues the registry holds (MAX_QUEUES): a new queue beyond it is refused. */
  maxQueues?: number
  clock?: Clock
  /** Where the store reports what an operator should know (default: process.emitWarning). */
  warn?: (detail: object, message: string) => void
}

/** A validated job ready to be written (see Queue for validation and defaults). */
export interface NewJobRecord {
  id: string
  task_type: string
  payload: string
  priority: Priority
  max_retries: number
  timeout_ms: number
  /** 0: now; -d: d ms after the script's now; otherwise ms since the epoch. */
  run_at: number
  idem_hash: string
  idempotency_key: string
  idem_ttl_s: number
  partition_key: string
  /** Optional extra hash fields by their stored names (F.trace, F.backoff). */
  extra: Record<string, string>
}

export interface EnqueueResult {
  id: string
  created: boolean
  job: Job
}

/**
 * The hash fields the enqueue script stores for a new job, rebuilt from what was sent and the
 * script's now (the script answers a created job with its id alone: every value returned from
 * a function costs Redis ~0.5 µs). Must agree with scripts/enqueue.lua (a test compares the
 * returned job with the stored one for every kind of field).
 */
function storedFields(j: NewJobRecord, now: number): Record<string, string> {
  const h: Record<string, string> = {
    [F.task_type]: j.task_type,
    [F.payload]: j.payload,
    [F.max_retries]: String(j.max_retries),
    [F.created_at]: String(now),
  }
  if (j.priority !== 'normal') h[F.priority] = j.priority
  if (j.timeout_ms !== 0) h[F.timeout_ms] = String(j.timeout_ms)
  if (j.partition_key !== '') h[F.partition_key] = j.partition_key
  Object.assign(h, j.extra)
  if (j.idem_hash !== '') h[F.idempotency_key] = j.idempotency_key
  const runAt = j.run_at < 0 ? now - j.run_at : j.run_at
  if (runAt > now) {
    h[F.state] = 'scheduled'
    h[F.run_at] = String(runAt)
  } else h[F.state] = 'queued'
  return h
}

/** MAX_QUEUES when none is given (config.ts has the same default). */
export const DEFAULT_MAX_QUEUES = 1000

/** How often a process records that its function library is in use (see pruneFunctionLibraries). */
const LIBRARY_SEEN_EVERY_MS = 3_600_000

/** ARGV[5..] of the enqueue function for these jobs (scripts/enqueue.lua). */
function enqueueArgs(jobs: NewJobRecord[]): Array<string | number> {
  const args: Array<string | number> = [jobs.length]
  for (const j of jobs) {
    const extra = Object.entries(j.extra).flat()
    args.push(
      j.id,
      j.task_type,
      j.payload,
      j.priority,
      j.max_retries,
      j.timeout_ms,
      j.run_at,
      j.idem_hash,
      j.idempotency_key,
      j.idem_ttl_s,
      j.partition_key,
      extra.length ? JSON.stringify(extra) : '',
    )
  }
  return args
}

/** Group commit of small enqueue calls (see JobStore.enqueue): a batch's bounds. */
const COALESCE_MAX_JOBS = 200
const COALESCE_MAX_BYTES = 1 << 20

/** A block hint lives 30 days (one key per thousand generated ids). */
const LOC_BLOCK_TTL_S = 30 * 86_400
/** Calls in a row whose generated ids were taken before an enqueue gives up (see enqueueNow). */
const MAX_ID_ROUNDS = 40

/** The enqueue function's answer: per job, or a refusal that wrote nothing (scripts/enqueue.lua). */
type EnqueueReply = Array<[string, number, string[]?]> | ['refused', number[], Array<number | string>]

/** Errors of the steps before an enqueue call (the queue registry, ids): nothing was written. */
const beforeTheCall = new WeakSet<object>()

/** Runs a step that comes before the enqueue call, marking its error as such. */
async function beforeCall<T>(step: Promise<T>): Promise<T> {
  try {
    return await step
  } catch (err) {
    if (err instanceof Object) beforeTheCall.add(err)
    throw err
  }
}

/** What a failed enqueue call means for the jobs it carried. */
export type WriteFailure = 'not_created' | 'unknown'

/**
 * Whether the jobs of a failed enqueue call may exist: 'not_created' when nothing of the call
 * was written -- a refusal of DTQ's (DtqError: the enqueue function refused a job, no free ids),
 * a failure before the call (registry, id reservation), an error reply Redis gave instead of
 * running the call (OOM, READONLY, NOPERM, ...), or a call never sent (not connected);
 * 'unknown' when it may have run: a timeout, a connection lost with the call in flight, or an
 * error raised inside the function (it raises only in its write pass).
 */
export function writeFailure(err: unknown): WriteFailure {
  if (err instanceof DtqError || (err instanceof Object && beforeTheCall.has(err))) return 'not_created'
  if (!(err instanceof Error)) return 'unknown'
  if (err.name === 'ReplyError') return / script: /.test(err.message) ? 'unknown' : 'not_created'
  return err.message.startsWith("Stream isn't writeable") ? 'not_created' : 'unknown'
}

interface EnqueueBatch {
  jobs: NewJobRecord[]
  bytes: number
  waiters: Array<{
    from: number
    n: number
    resolve: (r: EnqueueResult[]) => void
    reject: (e: unknown) => void
  }>
}

export interface Delivered {
  jobs: Job[]
  /** Last entry id per priority stream when the read came up short (for a blocking wait). */
  tails: string[]
}

/**
 * A started job as deliver returns it: one JSON array of the job hash's field/value pairs as
 * stored, then the pairs the start changed (state, worker, started_at, epoch,
 * attempts) and the id -- a later pair wins.
 */
function decodeDelivered(queue: string, packed: string): Job {
  const row = JSON.parse(packed) as Array<string | number>
  const h: Record<string, string> = {}
  for (let i = 0; i + 1 < row.length; i += 2) h[row[i] as string] = String(row[i + 1])
  return decodeJob(queue, h)
}

/**
 * States kept in an index zset (`idx:<state>`). Queued and active jobs are found in the ready
 * streams: the consumer group delivers in entry order and acknowledged entries are deleted in
 * the same call, so a stream's entries up to the group's last-delivered id are exactly the
 * pending ones (active jobs) and those after it the undelivered ones (queued jobs).
 */
const STREAM_STATES: readonly JobState[] = ['queued', 'active']
const INDEXED_STATES = STATES.filter((s) => !STREAM_STATES.includes(s))

/** A finished job's result, written under the epoch it was delivered with (the fence). */
export interface Completion {
  id: string
  epoch: number
  result: string
  /** The SHA-256 of the job's idempotency key, if it has one: its outcome is recorded there. */
  idemHash?: string
}

export type FailMode = 'retry' | 'permanent' | 'cancel'

export interface QueueStats {
  queue: string
  paused: boolean
  counts: Record<JobState, number>
  totals: Record<string, number>
  streams: Record<
    Priority,
    { length: number; pending: number; lag: number; oldest_waiting_ms: number | null }
  >
  delayed: number
  dlq: number
  oldest_waiting_ms: number | null
}

export interface ListCursor {
  score: number
  id: string
  queue: string
}

export interface Page<T> {
  items: T[]
  next_cursor: string | null
}

export function encodeCursor(c: ListCursor): string {
  return Buffer.from(JSON.stringify([c.score, c.id, c.queue])).toString('base64url')
}

/**
 * The position a cursor names, or null unless it is exactly what encodeCursor gives for a position
 * (a whole score from 0, a job id, a queue name): a crafted score (negative, fractional, huge,
 * spelled with an exponent) never reaches a script.
 */
export function decodeCursor(s: string): ListCursor | null {
  try {
    const v = JSON.parse(Buffer.from(s, 'base64url').toString('utf8'))
    if (
      Array.isArray(v) &&
      v.length === 3 &&
      Number.isSafeInteger(v[0]) &&
      v[0] >= 0 &&
      typeof v[1] === 'string' &&
      JOB_ID_PATTERN.test(v[1]) &&
      typeof v[2] === 'string' &&
      QUEUE_PATTERN.test(v[2])
    ) {
      const c = { score: v[0], id: v[1], queue: v[2] }
      if (encodeCursor(c) === s) return c
    }
  } catch {}
  return null
}

/** A listing's starting position: none, or the cursor given (a 400 when it is not one of ours). */
function startAt(cursor: string | null | undefined): ListCursor | null {
  if (cursor === undefined || cursor === null) return null
  const c = decodeCursor(cursor)
  if (!c) throw new DtqError('VALIDATION', "cursor is not valid: pass a page's next_cursor as it was given")
  return c
}

interface Candidate {
  score: number
  id: string
  queue: string
  /** Extra data carried by the source (the DLQ entry fields). */
  extra?: Record<string, string>
}

/**
 * Newest-first order: score desc, then id desc, then queue desc (the cursor's total order).
 * True when `a` comes after `b`.
 */
function before(a: ListCursor, b: ListCursor): boolean {
  if (a.score !== b.score) return a.score < b.score
  if (a.id !== b.id) return a.id < b.id
  return a.queue < b.queue
}

/** A queue's part in a listing page (see JobStore.scanPage). */
interface QueueScan {
  queue: string
  /** Matches the `list` function returned that are not on the page yet, in order. */
  buf: Candidate[]
  done: boolean
  /** The last candidate examined: everything up to it is in `buf` or on the page already. */
  last: ListCursor | null
}

/**
 * Whether a queue may still hold a match ahead of candidate `c` (or of anything, without `c`):
 * it has nothing buffered and has not examined that far.
 */
function blocks(s: QueueScan, c: Candidate | undefined): boolean {
  return !s.done && !s.buf.length && (!c || !s.last || before(c, s.last))
}

/** `list`: matches (flat: score, id, entry, failed_at), done, last score, last id, examined. */
type ListReply = [string[], number, string, string, number]

/** `queue_stats`: index counts, stats hash (flat), delayed, DLQ length, paused, per priority. */
type QueueStatsReply = [
  number[],
  string[],
  number,
  number,
  number,
  Array<[length: number, pending: number, lag: number, oldest: string]>,
]

export class JobStore {
  readonly redis: Redis
  readonly keys: Keys
  readonly opts: Required<Omit<StoreOptions, 'clock' | 'warn'>>
  readonly clock: Clock
  private readonly lib = functions()
  private readonly knownQueues = new Set<string>()
  private readonly pendingEnqueue = new Map<string, EnqueueBatch>()
  private readonly enqueuesInFlight = new Set<Promise<unknown>>()
  private librarySeenAt = 0
  /**
   * A listing page's work bounds: candidates one `list` call examines at most (~6 ms of Redis
   * at 2000, so one call never holds Redis long), and one page at most over all its calls (a
   * page stopped there ends short, with a cursor). Tests lower them.
   */
  readonly listScan = { perCall: 2000, perPage: 100_000 }
  /** Id blocks are reserved per queue, so a block's hint names the queue of all its ids. */
  private readonly allocators = new Map<string, IdAllocator>()
  private readonly warn: (detail: object, message: string) => void
  private warnedIdsBehind = false

  constructor(redis: Redis, opts: StoreOptions) {
    this.redis = redis
    this.keys = new Keys(opts.prefix)
    this.warn =
      opts.warn ??
      ((detail, message) => process.emitWarning(`${message} ${JSON.stringify(detail)}`, 'DtqWarning'))
    this.clock = opts.clock ?? systemClock
    this.opts = {
      prefix: opts.prefix,
      eventsMaxLen: opts.eventsMaxLen,
      completedRetentionS: opts.completedRetentionS,
      failedRetentionS: opts.failedRetentionS,
      errorsKept: opts.errorsKept ?? 25,
      logsKept: opts.logsKept ?? 100,
      maxQueues: opts.maxQueues ?? DEFAULT_MAX_QUEUES,
    }
  }

  private run<T>(
    name: ScriptName,
    queue: string,
    args: ReadonlyArray<string | number>,
    now = this.clock.now(),
  ): Promise<T> {
    if (now - this.librarySeenAt > LIBRARY_SEEN_EVERY_MS) {
      // This version's library is in use: recorded so the janitor never deletes it (hourly).
      this.librarySeenAt = now
      void this.redis.hset(this.keys.functionLibraries(), this.lib.name, now).catch(() => {
        this.librarySeenAt = 0
      })
    }
    return this.lib.call<T>(this.redis, name, this.keys.base(queue), [...this.common(now), ...args])
  }

  /** ARGV[1..4] of every script (see scripts/lib/1-context.lua). */
  private common(now: number): number[] {
    return [now, this.opts.eventsMaxLen, this.opts.completedRetentionS, this.opts.failedRetentionS]
  }

  // ---- producer ----------------------------------------------------------------------------

  /**
   * Adds jobs to a queue, all or none: they go to Redis in one enqueue function call, which
   * checks every job before it writes any (scripts/enqueue.lua). Small calls made in the same
   * turn of the event loop (concurrent `POST /jobs` requests, a loop of `queue.add`) are written
   * together in one call at the end of the turn -- group commit: one round trip and one function
   * call for many jobs. Each caller still gets its own results, and a job is created exactly as
   * if added alone (the function handles duplicates within a call as across calls). A call the
   * function refuses because of one caller's jobs is made again per caller, so only that caller
   * fails; when Redis fails the call (unavailable, OOM, a timeout) every caller in it gets that
   * error -- nothing of it was written, or the outcome is unknown for all its jobs alike.
   */
  enqueue(queue: string, jobs: NewJobRecord[]): Promise<EnqueueResult[]> {
    let bytes = 0
    for (const j of jobs) bytes += j.payload.length
    if (jobs.length >= COALESCE_MAX_JOBS || bytes >= COALESCE_MAX_BYTES) return this.enqueueNow(queue, jobs)
    let batch = this.pendingEnqueue.get(queue)
    if (
      batch &&
      (batch.jobs.length + jobs.length > COALESCE_MAX_JOBS || batch.bytes + bytes > COALESCE_MAX_BYTES)
    ) {
      this.flushEnqueue(queue, batch)
      batch = undefined
    }
    if (!batch) {
      const b: EnqueueBatch = { jobs: [], bytes: 0, waiters: [] }
      batch = b
      this.pendingEnqueue.set(queue, b)
      setImmediate(() => this.flushEnqueue(queue, b))
    }
    const from = batch.jobs.length
    for (const j of jobs) batch.jobs.push(j)
    batch.bytes += bytes
    return new Promise((resolve, reject) => {
      batch.waiters.push({ from, n: jobs.length, resolve, reject })
    })
  }

  /** Writes the enqueue batches still gathering now, and waits for every one in flight. */
  async settle(): Promise<void> {
    for (const [queue, batch] of this.pendingEnqueue) this.flushEnqueue(queue, batch)
    while (this.enqueuesInFlight.size) await Promise.allSettled([...this.enqueuesInFlight])
  }

  private track(p: Promise<unknown>): void {
    this.enqueuesInFlight.add(p)
    const done = () => this.enqueuesInFlight.delete(p)
    p.then(done, done)
  }

  private flushEnqueue(queue: string, batch: EnqueueBatch): void {
    if (this.pendingEnqueue.get(queue) !== batch) return // already written
    this.pendingEnqueue.delete(queue)
    this.track(
      this.enqueueNow(queue, batch.jobs).then(
        (res) => {
          for (const w of batch.waiters) w.resolve(res.slice(w.from, w.from + w.n))
        },
        (err) => {
          if (batch.waiters.length < 2 || !(err instanceof DtqError && err.code === 'VALIDATION')) {
            for (const w of batch.waiters) w.reject(err)
            return
          }
          // Refused for some caller's jobs (nothing was written): each caller again on its own.
          for (const w of batch.waiters) {
            this.track(
              this.enqueueNow(queue, batch.jobs.slice(w.from, w.from + w.n)).then(w.resolve, w.reject),
            )
          }
        },
      ),
    )
  }

  /** The id allocator of a queue: blocks of the shared counter, each recorded as the queue's. */
  private allocator(queue: string): IdAllocator {
    let a = this.allocators.get(queue)
    if (!a) {
      // Bounded like the registry (queues come and go): a dropped allocator's unused ids are a gap.
      if (this.allocators.size >= 2 * this.opts.maxQueues) this.allocators.clear()
      a = new IdAllocator(this.redis, this.keys.ids(), undefined, {
        hints: { key: (b) => this.keys.locBlock(b), queue, ttlS: LOC_BLOCK_TTL_S },
        onBehind: (detail) => this.idsBehind(detail),
      })
      this.allocators.set(queue, a)
    }
    return a
  }

  /** The id counter is behind the jobs in Redis: said once per store; the allocator skips ahead. */
  private idsBehind(detail: object): void {
    if (this.warnedIdsBehind) return
    this.warnedIdsBehind = true
    this.warn(
      detail,
      `the job id counter ${this.keys.ids()} is behind the ids in use (deleted or restored on its own?): moving it forward past them`,
    )
  }

  private async enqueueNow(queue: string, jobs: NewJobRecord[]): Promise<EnqueueResult[]> {
    // The registry lives outside the queue's slot, so it is written before (never after) the jobs.
    if (!this.knownQueues.has(queue)) await beforeCall(this.registerQueue(queue))
    // Jobs without an id of their caller's get the next ones from the queue's block.
    const ids = this.allocator(queue)
    const fresh = jobs.filter((j) => j.id === '')
    if (fresh.length) {
      const got = await beforeCall(ids.take(fresh.length))
      fresh.forEach((j, k) => {
        j.id = got[k]!
      })
    }
    for (let round = 0; ; round++) {
      const now = this.clock.now()
      const res = await this.run<EnqueueReply>('enqueue', queue, enqueueArgs(jobs), now)
      if (res[0] !== 'refused') {
        if (res.length > jobs.length) {
          // The queue was new to Redis, or forgotten by the janitor since this process last added to it.
          await this.redis.sadd(this.keys.queues(), queue).catch(() => {
            this.knownQueues.delete(queue)
          })
          res.length = jobs.length
        }
        return (res as Array<[string, number, string[]?]>).map(([id, created, flat], i) =>
          created === 1
            ? { id, created: true, job: decodeJob(queue, storedFields(jobs[i]!, now), id) }
            : { id, created: false, job: decodeJob(queue, pairsToRecord(flat ?? []), id) },
        )
      }
      const [, taken, bad] = res as ['refused', number[], Array<number | string>]
      if (bad.length) {
        const problems: string[] = []
        for (let k = 0; k + 1 < bad.length; k += 2)
          problems.push(`jobs[${Number(bad[k]) - 1}]: ${bad[k + 1]}`)
        throw new DtqError('VALIDATION', `invalid job: ${problems.join('; ')}`, problems)
      }
      // Generated ids named live jobs (nothing was written): the counter is behind the data.
      // It is moved forward, by a jump that doubles each round, and every generated id of the
      // call is drawn again.
      if (round + 1 >= MAX_ID_ROUNDS) {
        throw new DtqError(
          'INTERNAL',
          `no free job ids after ${MAX_ID_ROUNDS} rounds (counter ${this.keys.ids()})`,
        )
      }
      ids.behind(
        round,
        taken.map((p) => jobs[p - 1]!.id),
      )
      const again = jobs.filter((j) => GENERATED_ID.test(j.id))
      const got = await beforeCall(ids.take(again.length))
      again.forEach((j, k) => {
        j.id = got[k]!
      })
    }
  }

  // ---- worker ------------------------------------------------------------------------------

  async deliver(queue: string, consumer: string, count: number): Promise<Delivered> {
    const [raw, tails] = await this.run<[string[], string[]]>('deliver', queue, [consumer, count])
    return { jobs: raw.map((row) => decodeDelivered(queue, row)), tails }
  }

  /**
   * Blocks until a new entry lands after `tails` in any of the streams, or `blockMs` passes.
   * True when an entry landed.
   */
  async waitForEntries(
    blocking: Redis,
    streams: Array<{ queue: string; tails: string[] }>,
    blockMs: number,
  ): Promise<boolean> {
    const keys: string[] = []
    const ids: string[] = []
    for (const s of streams) {
      PRIORITIES.forEach((p, i) => {
        keys.push(this.keys.stream(s.queue, p))
        ids.push(s.tails[i] ?? '0-0')
      })
    }
    if (!keys.length) return false
    return (await blocking.xread('COUNT', 1, 'BLOCK', blockMs, 'STREAMS', ...keys, ...ids)) !== null
  }

  complete(queue: string, items: ReadonlyArray<Completion>): Promise<number[]> {
    const args: Array<string | number> = [items.length]
    for (const it of items) args.push(it.id, it.epoch, it.result, it.idemHash ?? '')
    return this.run<number[]>('complete', queue, args)
  }

  /**
   * A worker's steady-state call: records `finished` (as complete) and starts up to `count`
   * new jobs (as deliver) in one function call and one round trip.
   */
  async fetch(
    queue: string,
    consumer: string,
    count: number,
    finished: ReadonlyArray<Completion>,
  ): Promise<Delivered & { completed: number[] }> {
    const args: Array<string | number> = [consumer, count, finished.length]
    for (const it of finished) args.push(it.id, it.epoch, it.result, it.idemHash ?? '')
    const [completed, raw, tails] = await this.run<[number[], string[], string[]]>('fetch', queue, args)
    return { completed, jobs: raw.map((row) => decodeDelivered(queue, row)), tails }
  }

  fail(
    queue: string,
    id: string,
    epoch: number,
    mode: FailMode,
    error: { message: string; stack?: string; worker: string; attempt: number; started_at?: number },
    delayMs: number,
  ): Promise<'retrying' | 'failed' | 'cancelled' | 'stale'> {
    const err = JSON.stringify({ ...error, at: this.clock.now() })
    return this.run('fail', queue, [
      id,
      epoch,
      mode,
      err,
      Math.max(0, Math.round(delayMs)),
      this.opts.errorsKept,
    ])
  }

  async promote(queue: string, limit = 500): Promise<{ moved: number; nextDue: number | null }> {
    const [moved, next] = await this.run<[number, number]>('promote', queue, [limit])
    return { moved, nextDue: next < 0 ? null : next }
  }

  /**
   * NEGATIVE CONTROL ONLY (DTQ_UNSAFE=no-delayed-gating): the promote step without the ZREM
   * gate, as separate commands, so racing schedulers can move one job twice.
   */
  async promoteUngated(queue: string, limit = 500): Promise<{ moved: number; nextDue: number | null }> {
    const now = this.clock.now()
    const ids = await this.redis.zrangebyscore(this.keys.delayed(queue), '-inf', now, 'LIMIT', 0, limit)
    for (const id of ids) {
      const [prio] = await this.redis.hmget(this.keys.job(queue, id), F.priority)
      const entry = await this.redis.xadd(
        this.keys.stream(queue, (prio as Priority) ?? 'normal'),
        '*',
        'id',
        id,
      )
      await this.redis.hset(
        this.keys.job(queue, id),
        F.state,
        'queued',
        F.entry,
        entry ?? '',
        F.queued_at,
        now,
      )
      await this.redis.zrem(this.keys.delayed(queue), id)
    }
    const next = await this.redis.zrange(this.keys.delayed(queue), 0, 0, 'WITHSCORES')
    return { moved: ids.length, nextDue: next[1] ? Number(next[1]) : null }
  }

  /** NEGATIVE CONTROL ONLY (DTQ_UNSAFE=no-fencing): the current epoch, whoever owns the job. */
  async currentEpoch(queue: string, id: string): Promise<number> {
    return Number(await this.redis.hget(this.keys.job(queue, id), F.epoch))
  }

  async reclaim(
    queue: string,
    consumer: string,
    priority: Priority,
    minIdleMs: number,
    maxDeliveries: number,
    cursor = '0-0',
    page = 100,
  ): Promise<{ cursor: string; requeued: number; poisoned: number; cancelled: number; lost: number }> {
    const [next, requeued, poisoned, cancelled, lost] = await this.run<
      [string, number, number, number, number]
    >('reclaim', queue, [consumer, minIdleMs, cursor, page, priority, maxDeliveries])
    return { cursor: next, requeued, poisoned, cancelled, lost }
  }

  heartbeat(queue: string, consumer: string, items: Array<{ id: string; epoch: number }>): Promise<number[]> {
    const args: Array<string | number> = [consumer, items.length]
    for (const it of items) args.push(it.id, it.epoch)
    return this.run<number[]>('heartbeat', queue, args)
  }

  handBack(queue: string, items: Array<{ id: string; epoch: number }>): Promise<number[]> {
    const args: Array<string | number> = [items.length]
    for (const it of items) args.push(it.id, it.epoch)
    return this.run<number[]>('handback', queue, args)
  }

  async progress(queue: string, id: string, epoch: number, progress: number | null, line: string | null) {
    const ok = await this.run<number>('progress', queue, [
      id,
      epoch,
      progress === null ? '' : progress,
      line ?? '',
      this.opts.logsKept,
    ])
    return ok === 1
  }

  removeConsumer(queue: string, consumer: string): Promise<number> {
    return this.run<number>('remove_consumer', queue, [consumer])
  }

  /** Creates the consumer group of each priority stream (idempotent). */
  async ensureGroups(queue: string): Promise<void> {
    await Promise.all(
      PRIORITIES.map((p) =>
        this.redis
          .xgroup('CREATE', this.keys.stream(queue, p), GROUP, '0', 'MKSTREAM')
          .catch((err: Error) => {
            if (!err.message.includes('BUSYGROUP')) throw err
          }),
      ),
    )
  }

  // ---- admin -------------------------------------------------------------------------------

  cancel(queue: string, id: string): Promise<string> {
    return this.run<string>('cancel', queue, [id, this.keys.cancelChannel(), queue])
  }

  requeue(queue: string, ids: string[]): Promise<string[]> {
    return this.run<string[]>('requeue', queue, [ids.length, ...ids])
  }

  dlqDelete(queue: string, ids: string[]): Promise<number> {
    return this.run<number>('dlq_delete', queue, ['ids', ids.length, ...ids])
  }

  /** Deletes every dead-lettered job that failed before `beforeMs`, in pages. */
  async dlqPurgeBefore(queue: string, beforeMs: number, page = 500): Promise<number> {
    let total = 0
    for (;;) {
      const n = await this.run<number>('dlq_delete', queue, ['before', beforeMs, page])
      total += n
      if (n < page) return total
    }
  }

  /**
   * Adds a queue to the registry (function `register_queue`: one call, whatever the number of
   * queues), or throws QUEUE_LIMIT, writing nothing, when it is new and the registry already holds
   * MAX_QUEUES queues. Queues that stay empty leave the registry (the janitor, QUEUE_FORGET_S).
   */
  async registerQueue(queue: string): Promise<void> {
    const max = this.opts.maxQueues
    const args = [this.clock.now(), 0, 0, 0, queue, max]
    if ((await this.lib.call<number>(this.redis, 'register_queue', this.keys.queues(), args)) !== 1) {
      throw new DtqError(
        'QUEUE_LIMIT',
        `queue ${queue} is new and the registry holds ${max} queues, its limit (MAX_QUEUES); queues that stay empty leave it after QUEUE_FORGET_S`,
      )
    }
    // What this process knows is registered (bounded like the registry: forgotten names go).
    if (this.knownQueues.size >= 2 * max) this.knownQueues.clear()
    this.knownQueues.add(queue)
  }

  /**
   * Pauses or resumes a queue: the flag in its meta hash (what its stats show, and what keeps
   * the janitor from forgetting it) and in the paused set workers read (one command per
   * heartbeat for all their queues). A queue not in the registry is added to it (QUEUE_LIMIT).
   */
  async setPaused(queue: string, paused: boolean): Promise<void> {
    await this.registerQueue(queue)
    if (paused) {
      await this.redis.hset(this.keys.meta(queue), 'paused', '1')
      await this.redis.sadd(this.keys.paused(), queue)
    } else {
      await this.redis.srem(this.keys.paused(), queue)
      await this.redis.hdel(this.keys.meta(queue), 'paused')
    }
  }

  async pausedQueues(queues: string[]): Promise<Set<string>> {
    const paused = new Set(await this.redis.smembers(this.keys.paused()))
    return new Set(queues.filter((q) => paused.has(q)))
  }

  async queues(): Promise<string[]> {
    return (await this.redis.smembers(this.keys.queues())).sort()
  }

  // ---- reads -------------------------------------------------------------------------------

  async getJob(queue: string, id: string): Promise<Job | null> {
    const h = await this.redis.hgetall(this.keys.job(queue, id))
    return h[F.state] ? decodeJob(queue, h, id) : null
  }

  /**
   * The live jobs with this id: in `queue`, or without one wherever they are (ADR 0016: an id is
   * unique within its queue). A generated id is unique across queues too (ADR 0011): its block's
   * locator hint names the queue, then one read there -- two round trips however many queues
   * there are; when the hint misses (expired), every queue is read and the hint written again.
   * A caller's own id may name a job in several queues: every queue is read, in one pipelined
   * round trip after the registry's (O(queues) commands; give the queue to read one key).
   */
  async findJobs(id: string, queue?: string): Promise<Job[]> {
    if (queue) {
      const job = await this.getJob(queue, id)
      return job ? [job] : []
    }
    if (!GENERATED_ID.test(id)) return this.readEverywhere(id)
    const hint = this.keys.locBlock(idBlock(id))
    const hinted = await this.redis.get(hint)
    if (hinted) {
      const job = await this.getJob(hinted, id)
      if (job) return [job]
    }
    const found = await this.readEverywhere(id, hinted)
    if (found[0]) await this.rehint(hint, found[0].queue, LOC_BLOCK_TTL_S)
    return found
  }

  /** The jobs with this id in every queue (but `skip`), in queue name order: one pipelined round. */
  private async readEverywhere(id: string, skip?: string | null): Promise<Job[]> {
    const queues = (await this.queues()).filter((q) => q !== skip)
    const p = this.redis.pipeline()
    for (const q of queues) p.hgetall(this.keys.job(q, id))
    const res = (await p.exec()) ?? []
    return queues.flatMap((q, i) => {
      const h = res[i]?.[1] as Record<string, string> | undefined
      return h?.[F.state] ? [decodeJob(q, h, id)] : []
    })
  }

  /**
   * The jobs added with an idempotency key (its SHA-256): in `queue`, or without one in every
   * queue whose key names a job (a key is unique within its queue, ADR 0016), read in one
   * pipelined round trip after the registry's; in queue name order.
   */
  async findByIdempotencyKey(keyHash: string, queue?: string): Promise<Job[]> {
    const queues = queue ? [queue] : await this.queues()
    const p = this.redis.pipeline()
    for (const q of queues) p.get(this.keys.idempotency(q, keyHash))
    const values = ((await p.exec()) ?? []).map((r) => (r[1] as string | null) ?? null)
    const jobs = await Promise.all(queues.map((q, i) => this.jobOfKey(q, values[i] ?? null)))
    return jobs.filter((j): j is Job => j !== null)
  }

  /**
   * The job an idempotency key's value names in a queue: the live job, or -- once it has
   * finished and been removed after its retention -- what the key recorded of its end (id,
   * state, finished_at; `removed: true`).
   */
  private async jobOfKey(queue: string, value: string | null): Promise<Job | null> {
    if (!value) return null
    const [id = '', state, at] = value.split(' ')
    const job = await this.getJob(queue, id)
    if (job || !state) return job
    return decodeJob(
      queue,
      { [F.state]: state, [F.finished_at]: at ?? '', [F.created_at]: at ?? '', _removed: '1' },
      id,
    )
  }

  /** Writes a locator hint a lookup found missing or wrong (best effort: it is only a hint). */
  private async rehint(key: string, queue: string, ttlS: number): Promise<void> {
    await this.redis.set(key, queue, 'EX', ttlS).catch(() => {})
  }

  async jobLogs(queue: string, id: string): Promise<string[]> {
    return this.redis.lrange(this.keys.logs(queue, id), 0, -1)
  }

  /** Reads the hashes of the candidates that made a page (one pipelined HGETALL each). */
  private async hydrate(
    cands: Candidate[],
  ): Promise<Array<{ job: Job; raw: Record<string, string> } | null>> {
    if (!cands.length) return []
    const p = this.redis.pipeline()
    for (const c of cands) p.hgetall(this.keys.job(c.queue, c.id))
    const res = (await p.exec()) ?? []
    return cands.map((c, i) => {
      const h = res[i]?.[1] as Record<string, string> | undefined
      return h?.[F.state] ? { job: decodeJob(c.queue, h, c.id), raw: h } : null
    })
  }

  /**
   * One page of a listing over `queues`, newest first. The `list` function filters each queue's
   * candidates in Redis and answers positions only, so a job that does not match is never read
   * into Node; here the queues' answers are merged in the cursor's order and only the page's
   * jobs are read (hydrate), re-checked by `accept` (a job may have changed since).
   *
   * Every queue is asked in one pipelined round; a queue is asked again (all such queues in one
   * round) only while it may still hold a match ahead of the next candidate, that is while it
   * has nothing buffered and has not examined that far. Work is bounded by `listScan`; a page
   * stopped by it ends short, with a cursor at the point every queue has been examined to.
   * `args` are the filter arguments of `list` from ARGV[11] on.
   */
  private async scanPage<T>(
    kind: 'jobs' | 'dlq',
    queues: string[],
    cursor: ListCursor | null,
    limit: number,
    args: ReadonlyArray<string | number>,
    accept: (job: Job, c: Candidate, raw: Record<string, string>) => T | null,
  ): Promise<Page<T>> {
    const scans: QueueScan[] = queues.map((queue) => ({ queue, buf: [], done: false, last: null }))
    const page: Candidate[] = []
    let examined = 0
    let stoppedAt: ListCursor | null = null
    for (;;) {
      // Take the newest buffered candidate while no queue may hold one ahead of it.
      let head: QueueScan | undefined
      for (;;) {
        head = undefined
        for (const s of scans) if (s.buf.length && (!head || before(head.buf[0]!, s.buf[0]!))) head = s
        const c = head?.buf[0]
        if (!c || page.length >= limit || scans.some((s) => blocks(s, c))) break
        page.push(head!.buf.shift()!)
      }
      const waiting = scans.filter((s) => blocks(s, head?.buf[0]))
      if (page.length >= limit || !waiting.length) break
      if (examined >= this.listScan.perPage) {
        // Every queue is examined down to its last position; the page resumes after the newest.
        stoppedAt = waiting.map((s) => s.last!).reduce((a, b) => (before(a, b) ? b : a))
        break
      }
      const want = limit - page.length + 1
      const budget = Math.min(
        this.listScan.perCall,
        Math.max(1, Math.ceil((this.listScan.perPage - examined) / waiting.length)),
      )
      const replies = await Promise.all(
        waiting.map((s) => {
          const at = s.last ?? cursor
          // A candidate at the cursor's very score and id is still to come if its queue sorts first.
          const incl = at && s.queue < at.queue ? '1' : '0'
          return this.run<ListReply>('list', s.queue, [
            kind,
            want,
            budget,
            at ? at.score : '',
            at ? at.id : '',
            incl,
            ...args,
          ])
        }),
      )
      waiting.forEach((s, i) => {
        const [flat, done, lastScore, lastId, n] = replies[i]!
        for (let k = 0; k + 3 < flat.length; k += 4) {
          const extra = { entry: flat[k + 2]!, failed_at: flat[k + 3]! }
          s.buf.push({ score: Number(flat[k]), id: flat[k + 1]!, queue: s.queue, extra })
        }
        s.done = done === 1
        if (n > 0) s.last = { score: Number(lastScore), id: lastId, queue: s.queue }
        examined += n
      })
    }
    const jobs = await this.hydrate(page)
    const items: T[] = []
    page.forEach((c, i) => {
      const h = jobs[i]
      const v = h ? accept(h.job, c, h.raw) : null
      if (v !== null) items.push(v)
    })
    let next: ListCursor | null = stoppedAt
    if (page.length >= limit && scans.some((s) => s.buf.length || !s.done)) next = page[page.length - 1]!
    return { items, next_cursor: next ? encodeCursor(next) : null }
  }

  /** Jobs newest first (by the time they entered their current state), filtered, paginated. */
  async listJobs(q: {
    queue?: string
    state?: JobState
    task_type?: string
    cursor?: string | null
    limit: number
  }): Promise<Page<Job>> {
    const cursor = startAt(q.cursor)
    const queues = q.queue ? [q.queue] : await this.queues()
    // Queued and active jobs have no index: their entries in the ready streams are it (newest
    // first by entry time); the other states have an index zset each.
    const streams = !q.state ? 'all' : STREAM_STATES.includes(q.state) ? q.state : 'none'
    const indexed = !q.state ? INDEXED_STATES : streams === 'none' ? [q.state] : []
    return this.scanPage(
      'jobs',
      queues,
      cursor,
      q.limit,
      [q.task_type ?? '', streams, ...indexed],
      (job, c, raw) => {
        if (q.task_type && job.task_type !== q.task_type) return null
        if (q.state && job.state !== q.state) return null
        if (c.extra?.entry && (!STREAM_STATES.includes(job.state) || raw[F.entry] !== c.extra.entry))
          return null
        return job
      },
    )
  }

  /** Dead-lettered jobs newest first, filtered by type, error text and age. */
  async listDlq(q: {
    queue?: string
    task_type?: string
    error_contains?: string
    older_than_ms?: number
    cursor?: string | null
    limit: number
  }): Promise<Page<Job & { dlq_entry: string; failed_at: number }>> {
    const cursor = startAt(q.cursor)
    const queues = q.queue ? [q.queue] : await this.queues()
    const now = this.clock.now()
    const needle = q.error_contains?.toLowerCase()
    const maxFailedAt = q.older_than_ms === undefined ? '' : Math.max(0, now - q.older_than_ms)
    return this.scanPage(
      'dlq',
      queues,
      cursor,
      q.limit,
      [q.task_type ?? '', needle ?? '', maxFailedAt],
      (job, c) => {
        const e = c.extra ?? {}
        if (job.state !== 'failed') return null
        if (q.task_type && job.task_type !== q.task_type) return null
        if (needle && !(job.error ?? '').toLowerCase().includes(needle)) return null
        if (q.older_than_ms !== undefined && Number(e.failed_at) > now - q.older_than_ms) return null
        return { ...job, dlq_entry: e.entry ?? '', failed_at: Number(e.failed_at) }
      },
    )
  }

  /** Jobs waiting in a queue's ready streams (undelivered entries), cheaply: for admission control. */
  async queuedCount(queue: string): Promise<number> {
    const p = this.redis.pipeline()
    for (const pr of PRIORITIES) {
      p.xlen(this.keys.stream(queue, pr))
      p.xpending(this.keys.stream(queue, pr), GROUP)
    }
    const res = (await p.exec()) ?? []
    let n = 0
    for (let i = 0; i < res.length; i += 2) {
      const length = Number(res[i]?.[1] ?? 0)
      const summary = res[i + 1]?.[0] ? null : (res[i + 1]?.[1] as [number] | undefined)
      n += Math.max(0, length - Number(summary?.[0] ?? 0))
    }
    return n
  }

  async queueStats(queue: string): Promise<QueueStats> {
    return (await this.queuesStats([queue]))[0]!
  }

  /** Stats of many queues: one `queue_stats` call each, all in one pipelined round trip. */
  queuesStats(queues: string[]): Promise<QueueStats[]> {
    const now = this.clock.now()
    return Promise.all(
      queues.map(async (queue): Promise<QueueStats> => {
        const [indexCounts, totalsFlat, delayed, dlq, paused, perPriority] = await this.run<QueueStatsReply>(
          'queue_stats',
          queue,
          INDEXED_STATES,
          now,
        )
        const counts = {} as Record<JobState, number>
        INDEXED_STATES.forEach((s, i) => {
          counts[s] = indexCounts[i] ?? 0
        })
        // Queued and active jobs are counted from the streams: an entry is either pending (its
        // job is active) or undelivered (queued); acknowledged entries are deleted.
        counts.queued = 0
        counts.active = 0
        const streams = {} as QueueStats['streams']
        PRIORITIES.forEach((pr, i) => {
          const [length, pending, lag, oldest] = perPriority[i]!
          const oldestMs = oldest ? Math.max(0, now - Number(oldest.split('-')[0])) : null
          streams[pr] = { length, pending, lag, oldest_waiting_ms: oldestMs }
          counts.queued += Math.max(0, length - pending)
          counts.active += pending
        })
        const totals = pairsToRecord(totalsFlat)
        const ages = PRIORITIES.map((pr) => streams[pr].oldest_waiting_ms).filter(
          (x): x is number => x !== null,
        )
        return {
          queue,
          paused: paused === 1,
          counts,
          totals: Object.fromEntries(Object.entries(totals).map(([k, v]) => [k, Number(v)])),
          streams,
          delayed,
          dlq,
          oldest_waiting_ms: ages.length ? Math.max(...ages) : null,
        }
      }),
    )
  }

  /**
   * Completed and failed per minute over the last `minutes` minutes, oldest first, summed over
   * `queues` (one `throughput` call per queue, all in one pipelined round trip).
   */
  async throughput(
    queues: string[],
    minutes = 60,
  ): Promise<Array<{ minute: number; completed: number; failed: number }>> {
    const now = this.clock.now()
    const from = Math.floor(now / 60000) - minutes + 1
    const res = await Promise.all(
      queues.map((q) => this.run<number[]>('throughput', q, [from, minutes], now)),
    )
    const out = Array.from({ length: minutes }, (_, k) => ({
      minute: (from + k) * 60000,
      completed: 0,
      failed: 0,
    }))
    for (const flat of res) {
      for (let k = 0; k < minutes; k++) {
        out[k]!.completed += flat[2 * k] ?? 0
        out[k]!.failed += flat[2 * k + 1] ?? 0
      }
    }
    return out
  }

  // ---- housekeeping ------------------------------------------------------------------------

  /**
   * Removes up to `batches` × `limit` jobs completed more than the retention ago (calls that
   * complete jobs do this as they go; this is for queues where nothing completes any more).
   */
  async pruneCompleted(queue: string, limit = 1000, batches = 20, retentionS?: number): Promise<number> {
    let pruned = 0
    for (let i = 0; i < batches; i++) {
      const n = await this.run<number>('prune', queue, [limit, retentionS ?? ''])
      pruned += n
      if (n < limit) break
    }
    return pruned
  }

  /** The maintenance lease (script `lead`): true while `token` holds it. */
  async lead(token: string, ttlMs: number, release = false): Promise<boolean> {
    const key = this.keys.leader()
    const args = [this.clock.now(), 0, 0, 0, token, ttlMs, release ? 'release' : 'hold']
    return (await this.lib.call<number>(this.redis, 'lead', key, args)) === 1
  }

  /**
   * Dead-letters jobs left active whose stream entry was deleted behind DTQ's back while their
   * owner was gone (the reclaimer saw XAUTOCLAIM report deleted entries). Scans the queue's job
   * keys: costly, so it runs only after such an alarm. Returns how many it repaired.
   */
  async repairLostJobs(queue: string): Promise<number> {
    const prefix = `${this.keys.base(queue)}:job:`
    let cursor = '0'
    let repaired = 0
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
      cursor = next
      const ids = keys.map((k) => k.slice(prefix.length))
      for (let i = 0; i < ids.length; i += 500) {
        const part = ids.slice(i, i + 500)
        repaired += await this.run<number>('repair', queue, [part.length, ...part])
      }
    } while (cursor !== '0')
    return repaired
  }

  /**
   * Forgets a queue that has held nothing for `idleMs` (script `forget_queue`): its keys go and
   * it leaves the registry. Never one a live worker serves (the caller checks). True if forgotten.
   */
  async forgetQueueIfIdle(queue: string, idleMs: number): Promise<boolean> {
    if ((await this.run<number>('forget_queue', queue, [idleMs])) !== 1) return false
    await this.redis.srem(this.keys.queues(), queue)
    this.knownQueues.delete(queue)
    return true
  }

  /** Redis's memory use against its maxmemory (null when no limit is set). */
  async memoryUse(): Promise<{ used: number; max: number } | null> {
    const info = await this.redis.info('memory')
    const num = (name: string) => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(info)?.[1] ?? 0)
    const max = num('maxmemory')
    return max > 0 ? { used: num('used_memory'), max } : null
  }

  /**
   * Deletes this deployment's function libraries of other DTQ versions that no process has
   * used for `maxAgeMs` (each process records its own in the functions hash when it loads it and
   * hourly while it runs). A process of an old version still running reloads its library when
   * it finds it gone. Libraries this deployment never recorded are left alone.
   */
  async pruneFunctionLibraries(maxAgeMs: number): Promise<string[]> {
    const seen = await this.redis.hgetall(this.keys.functionLibraries())
    const now = this.clock.now()
    const gone: string[] = []
    for (const [name, at] of Object.entries(seen)) {
      if (name === this.lib.name || now - Number(at) < maxAgeMs) continue
      await this.redis.call('FUNCTION', 'DELETE', name).catch((err: Error) => {
        if (!/not found|no such library/i.test(err.message)) throw err
      })
      await this.redis.hdel(this.keys.functionLibraries(), name)
      gone.push(name)
    }
    return gone
  }

  /**
   * Bounds what grows: completed jobs past retention, index entries of expired jobs, old DLQ
   * entries, idle consumers that hold nothing. Returns what it removed. Safe to run from many
   * processes (each step is idempotent).
   */
  async sweep(queue: string, liveConsumers: Set<string>, consumerIdleMs: number) {
    const now = this.clock.now()
    const completedBefore = now - this.opts.completedRetentionS * 1000
    const failedBefore = now - this.opts.failedRetentionS * 1000
    const completedJobs = await this.pruneCompleted(queue)
    const p = this.redis.pipeline()
    p.zremrangebyscore(this.keys.index(queue, 'cancelled'), '-inf', `(${completedBefore}`)
    p.zremrangebyscore(this.keys.index(queue, 'failed'), '-inf', `(${failedBefore}`)
    // Written by versions before active jobs were listed from the streams (ADR 0005): dropped.
    p.del(this.keys.index(queue, 'active'))
    // The DLQ stream has no consumer group: trimming by age loses nothing a reader owes.
    p.xtrim(this.keys.dlq(queue), 'MINID', failedBefore)
    const res = (await p.exec()) ?? []
    const indexEntries = res.slice(0, 2).reduce((a, r) => a + Number(r?.[1] ?? 0), 0)
    const dlqEntries = Number(res[3]?.[1] ?? 0)

    let consumers = 0
    for (const pr of PRIORITIES) {
      const info = (await this.redis
        .xinfo('CONSUMERS', this.keys.stream(queue, pr), GROUP)
        .catch(() => [])) as unknown[][]
      for (const raw of info) {
        const c = pairsToRecord(raw.map(String))
        if (!c.name || liveConsumers.has(c.name)) continue
        if (Number(c.pending) === 0 && Number(c.idle) > consumerIdleMs) {
          consumers += await this.removeConsumer(queue, c.name)
        }
      }
    }
    return { completedJobs, indexEntries, dlqEntries, consumers }
  }
}
