/// <reference path="../types/cluster-key-slot.d.ts" />
/**
 * The typed store: the only code that talks to Redis about jobs. Every state change is one
 * Lua script (app/src/redis/scripts); reads are plain commands or read-only functions (one
 * call per queue), pipelined.
 */

import calculateSlot from 'cluster-key-slot'
import { DtqError } from '../errors.ts'
import { GENERATED_ID } from '../queue/ids.ts'
import {
  decodeJob,
  F,
  type Job,
  MAX_RETRIES_UNSTORED,
  PRIORITIES,
  type Priority,
  pairsToRecord,
} from '../queue/job.ts'
import { placePartitions } from '../queue/partitions.ts'
import { callOnKey, isCluster, primaries, type RedisClient, scanKeys } from './connection.ts'
import { IdAllocator } from './id-allocator.ts'
import { GROUP } from './keys.ts'
import { JobReads } from './reads.ts'
import { LOC_BLOCK_TTL_S, type StoreOptions } from './store-base.ts'

export { decodeCursor, encodeCursor, type ListCursor, type Page } from './listing.ts'
export type { QueueStats } from './reads.ts'
export { type Clock, DEFAULT_MAX_QUEUES, type StoreOptions, systemClock } from './store-base.ts'

/** What a scheduler asks of `schedule_fire` (scripts/schedule_fire.lua). */
export interface ScheduleFireCall {
  mode: 'fire' | 'trigger'
  /** fire: the next_fire the caller planned from (compare-and-set). */
  expected?: number
  /** fire: next_fire after the call (null: the schedule ends). */
  next?: number | null
  missed?: boolean
  /** The fire times to make jobs for. */
  fires: number[]
}

/** Its answer: 'fired' (with the jobs made), or why nothing was written. */
export interface ScheduleFireReply {
  outcome: 'fired' | 'stale' | 'paused' | 'gone'
  jobs: string[]
  /** next_fire as stored after the call (null: none). */
  next: number | null
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
export function storedFields(j: NewJobRecord, now: number): Record<string, string> {
  const h: Record<string, string> = {
    [F.task_type]: j.task_type,
    [F.payload]: j.payload,
    [F.created_at]: String(now),
  }
  if (j.max_retries !== MAX_RETRIES_UNSTORED) h[F.max_retries] = String(j.max_retries)
  if (j.priority !== 'normal') h[F.priority] = j.priority
  if (j.timeout_ms !== 0) h[F.timeout_ms] = String(j.timeout_ms)
  if (j.partition_key !== '') h[F.partition_key] = j.partition_key
  Object.assign(h, j.extra)
  if (j.idem_hash !== '') h[F.idempotency_key] = j.idempotency_key
  let runAt = j.run_at < 0 ? now - j.run_at : j.run_at
  // A debounced job waits at least its window (scripts/lib/2b-dedup.lua, dedup_enqueue).
  const dd = j.extra[F.dedup]
  if (dd?.startsWith('debounce ')) runAt = Math.max(runAt, now + Number(dd.split(' ')[1]))
  if (runAt > now) {
    h[F.state] = 'scheduled'
    h[F.run_at] = String(runAt)
  } else h[F.state] = 'queued'
  return h
}

/** ARGV[5..] of the enqueue function for these jobs (scripts/enqueue.lua). */
function enqueueArgs(jobs: NewJobRecord[]): Array<string | number> {
  const args: Array<string | number> = [jobs.length]
  // A call of plain jobs (the common bulk) sends 5 values per job, not 12 (scripts/enqueue.lua).
  if (jobs.every(isPlain)) {
    for (const j of jobs) args.push(j.id, j.task_type, j.payload, j.max_retries, j.timeout_ms)
    return args
  }
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

/**
 * A new job's result. Its Job is rebuilt from what was sent (storedFields) when first read, not
 * before: a bulk's callers often read only the ids, and building 1000 jobs' objects (payloads
 * parsed back included) was ~10 % of a producer's CPU per job.
 */
function createdResult(id: string, build: () => Job): EnqueueResult {
  let job: Job | undefined
  return {
    id,
    created: true,
    get job() {
      job ??= build()
      return job
    },
  }
}

/** Normal priority, due now, no idempotency key, no partition, no extra fields. */
function isPlain(j: NewJobRecord): boolean {
  if (j.priority !== 'normal' || j.run_at !== 0 || j.idem_hash !== '' || j.partition_key !== '') return false
  for (const _ in j.extra) return false
  return true
}

/** Group commit of small enqueue calls (see JobStore.enqueue): a batch's bounds. */
const COALESCE_MAX_JOBS = 200
const COALESCE_MAX_BYTES = 1 << 20

/** Calls in a row whose generated ids were taken before an enqueue gives up (see enqueueNow). */
const MAX_ID_ROUNDS = 40

/** The enqueue function's answer: per job, or a refusal that wrote nothing (scripts/enqueue.lua). */
type EnqueueReply = Array<1 | [string, 0, string[], string?]> | ['refused', number[], Array<number | string>]

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
 * error raised inside the function (it raises only in its write pass), or a write the replicas
 * did not confirm in time (REPLICATION_TIMEOUT: it is on the primary, which may fail over
 * without it).
 */
export function writeFailure(err: unknown): WriteFailure {
  if (err instanceof DtqError && err.code === 'REPLICATION_TIMEOUT') return 'unknown'
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
  /** Each job's stream entry id, as delivered (what its completion acknowledges). */
  entries: string[]
  /** Last entry id per priority stream when the read came up short (for a blocking wait). */
  tails: string[]
}

/**
 * The started jobs as deliver returns them (scripts/lib/5-deliver.lua): one JSON array whose
 * first row holds the pairs every start of the call set alike (state, worker, started_at), then
 * a row per job -- its hash's field/value pairs as stored, then the pairs its start changed
 * (epoch, attempts, maybe the entry id) and the id. A job's row first, then the first row: a
 * later pair wins.
 */
function decodeDelivered(queue: string, packed: string | string[]): Pick<Delivered, 'jobs' | 'entries'> {
  // [] when none started.
  if (typeof packed !== 'string') return { jobs: [], entries: [] }
  const rows = JSON.parse(packed) as Array<Array<string | number>>
  const common = rows[0] ?? []
  const jobs = new Array<Job>(Math.max(0, rows.length - 1))
  const entries = new Array<string>(jobs.length)
  for (let r = 1; r < rows.length; r++) {
    const row = rows[r]!
    const h: Record<string, string> = {}
    for (let i = 0; i + 1 < row.length; i += 2) h[row[i] as string] = String(row[i + 1])
    for (let i = 0; i + 1 < common.length; i += 2) h[common[i] as string] = String(common[i + 1])
    jobs[r - 1] = decodeJob(queue, h)
    // A started job's `en` is its entry id whole (the start stores it so: ADR 0037).
    entries[r - 1] = h[F.entry] ?? ''
  }
  return { jobs, entries }
}

/** A finished job's result, written under the epoch it was delivered with (the fence). */
export interface Completion {
  id: string
  epoch: number
  result: string
  /** The SHA-256 of the job's idempotency key, if it has one: its outcome is recorded there. */
  idemHash?: string
  /** Whether the job is a flow member (its end goes to the flow outbox, ADR 0019); unknown: looked up. */
  flow?: boolean
  /** Whether it holds a unique dedup key, which its completion lets go of (ADR 0021). */
  dedupUnique?: boolean
  /**
   * What the delivery said of the job, as it said it (copied when the job started: a handler
   * may change its job object). Given, the complete function takes these from here instead of
   * reading them from the job's hash -- once the fence (state, epoch) holds they cannot differ
   * (ADR 0038); not given, it reads them.
   */
  delivery?: DeliveryFacts
}

/** A delivery's facts about its job that stay true while that delivery (its epoch) lasts. */
export interface DeliveryFacts {
  /** The stream entry id the job was delivered from. */
  entry: string
  priority: Priority
  task_type: string
  started_at: number | null
  attempts: number
}

/** Arguments per completion in a complete or fetch call (scripts/lib/4-complete.lua). */
export const COMPLETION_ARGS = 10

/** A completion's arguments (scripts/lib/4-complete.lua): the owner says what it knows of the job. */
function pushCompletions(args: Array<string | number>, items: ReadonlyArray<Completion>): void {
  for (const it of items) {
    const d = it.delivery
    args.push(
      it.id,
      it.epoch,
      it.result,
      (it.idemHash ?? '') + (it.dedupUnique ? '+' : ''),
      it.flow === undefined ? '' : it.flow ? '1' : '0',
    )
    if (d?.entry)
      args.push(
        d.entry,
        d.priority === 'normal' ? '' : d.priority,
        d.task_type,
        d.started_at ?? '',
        d.attempts,
      )
    else args.push('', '', '', '', '')
  }
}

export type FailMode = 'retry' | 'permanent' | 'cancel'

export class JobStore extends JobReads {
  private readonly knownQueues = new Set<string>()
  private readonly pendingEnqueue = new Map<string, EnqueueBatch>()
  private readonly enqueuesInFlight = new Set<Promise<unknown>>()
  /** Id blocks are reserved per queue, so a block's hint names the queue of all its ids. */
  private readonly allocators = new Map<string, IdAllocator>()
  private readonly warn: (detail: object, message: string) => void
  private warnedIdsBehind = false

  constructor(redis: RedisClient, opts: StoreOptions) {
    super(redis, opts)
    this.warn =
      opts.warn ??
      ((detail, message) => process.emitWarning(`${message} ${JSON.stringify(detail)}`, 'DtqWarning'))
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
      const res = await this.runEnqueue(queue, enqueueArgs(jobs), now)
      if (res[0] !== 'refused') {
        if (res.length > jobs.length) {
          // The queue was new to Redis, or forgotten by the janitor since this process last added to it.
          await this.redis.sadd(this.keys.queues(), queue).catch(() => {
            this.knownQueues.delete(queue)
          })
          res.length = jobs.length
        }
        // A new job is 1 (its id is the one sent: no array per job to build and convert, ~8 %
        // of the call in Redis); one that already existed is [id, 0, its hash, dedup mode?].
        return (res as Array<1 | [string, 0, string[], string?]>).map((r, i) => {
          if (r === 1) {
            const rec = jobs[i]!
            return createdResult(rec.id, () => decodeJob(queue, storedFields(rec, now), rec.id))
          }
          const [id, , flat, deduped] = r
          return {
            id,
            created: false,
            job: {
              ...decodeJob(queue, pairsToRecord(flat ?? []), id),
              ...(deduped ? { deduplicated: true } : {}),
            },
          }
        })
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

  /**
   * The enqueue function call; with ENQUEUE_WAIT_REPLICAS, followed on the same connection by
   * WAIT, so the call is acknowledged only once that many replicas of its primary have it (and
   * everything written before it). Too few in time: REPLICATION_TIMEOUT (503), the jobs' fate
   * unknown -- they are on the primary, and a failover before the replicas catch up loses them.
   * A refusal wrote nothing: it needs no replica.
   */
  private async runEnqueue(queue: string, args: Array<string | number>, now: number): Promise<EnqueueReply> {
    const replicas = this.opts.enqueueWaitReplicas
    if (replicas <= 0) return this.run<EnqueueReply>('enqueue', queue, args, now)
    const { reply, acked } = await this.lib.callAndWait<EnqueueReply>(
      this.redis,
      'enqueue',
      this.keys.base(queue),
      [...this.common(now), ...args],
      replicas,
      this.opts.enqueueWaitTimeoutMs,
    )
    if (reply[0] !== 'refused' && acked < replicas) {
      throw new DtqError(
        'REPLICATION_TIMEOUT',
        `queue ${queue}: ${acked} of ${replicas} replicas confirmed the write within ${this.opts.enqueueWaitTimeoutMs} ms (ENQUEUE_WAIT_REPLICAS); it is on the primary and may not survive a failover: send it again with the same job_id or idempotency_key`,
      )
    }
    return reply
  }

  // ---- schedules (ADR 0018) -----------------------------------------------------------------

  /**
   * One call of the `schedule_fire` function: in mode 'fire', a compare-and-set on the
   * schedule's next_fire (`expected`), a job per fire time as its policies allow, next_fire
   * moved to `next`; in mode 'trigger', one job now. The jobs get generated ids of the queue's
   * block (a stale call wastes them: a gap in the ids, as an abandoned block leaves). The
   * queue is registered before (never after) its jobs, as by an enqueue.
   */
  async fireSchedule(queue: string, name: string, call: ScheduleFireCall): Promise<ScheduleFireReply> {
    if (!this.knownQueues.has(queue)) await this.registerQueue(queue)
    const ids = this.allocator(queue)
    for (let round = 0; ; round++) {
      const got = call.fires.length ? await ids.take(call.fires.length) : []
      const args: Array<string | number> = [
        name,
        call.mode,
        call.expected ?? '',
        call.next ?? '',
        call.missed ? '1' : '0',
        call.fires.length,
      ]
      for (const [k, at] of call.fires.entries()) args.push(at, got[k]!)
      const r = await this.run<[string, ...unknown[]]>('schedule_fire', queue, args)
      if (r[0] === 'fired') {
        if (r[3] === '1') await this.redis.sadd(this.keys.queues(), queue).catch(() => {})
        const next = r[2] === '' ? null : Number(r[2])
        return { outcome: 'fired', jobs: r[1] as string[], next }
      }
      if (r[0] !== 'taken') {
        const next = r[1] === undefined || r[1] === '' ? null : Number(r[1])
        return { outcome: r[0] as 'stale' | 'paused' | 'gone', jobs: [], next }
      }
      if (round + 1 >= MAX_ID_ROUNDS)
        throw new DtqError(
          'INTERNAL',
          `no free job ids after ${MAX_ID_ROUNDS} rounds (counter ${this.keys.ids()})`,
        )
      ids.behind(round, [String(r[1])])
    }
  }

  // ---- worker ------------------------------------------------------------------------------

  async deliver(queue: string, consumer: string, count: number): Promise<Delivered> {
    const [raw, tails] = await this.run<[string | string[], string[]]>('deliver', queue, [consumer, count])
    return { ...decodeDelivered(queue, raw), tails }
  }

  complete(queue: string, items: ReadonlyArray<Completion>): Promise<number[]> {
    const args: Array<string | number> = [items.length]
    pushCompletions(args, items)
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
    pushCompletions(args, finished)
    const [completed, raw, tails] = await this.run<[number[], string | string[], string[]]>(
      'fetch',
      queue,
      args,
    )
    return { completed, ...decodeDelivered(queue, raw), tails }
  }

  fail(
    queue: string,
    id: string,
    epoch: number,
    mode: FailMode,
    error: {
      message: string
      /** errorClass(): 1 to 64 of [A-Za-z0-9_.:-] (the script refuses anything else). */
      class?: string
      stack?: string
      worker: string
      attempt: number
      started_at?: number
    },
    delayMs: number,
    /** The delivery's entry id: fenced by it too when given (as complete is, ADR 0038). */
    entry?: string,
  ): Promise<'retrying' | 'failed' | 'cancelled' | 'stale'> {
    const err = JSON.stringify({ ...error, at: this.clock.now() })
    const args = [id, epoch, mode, err, Math.max(0, Math.round(delayMs)), this.opts.errorsKept]
    if (entry) args.push(entry)
    return this.run('fail', queue, args)
  }

  /**
   * A handler's upstream 429: the job's type pauses in its queue and the job waits (ADR 0022);
   * a job whose cancel was requested while it ran ends cancelled instead.
   */
  pauseType(
    queue: string,
    id: string,
    epoch: number,
    ms: number,
    entry?: string,
  ): Promise<'paused' | 'cancelled' | 'stale'> {
    const args = [id, epoch, Math.max(1, Math.round(ms))]
    if (entry) args.push(entry)
    return this.run('pause_type', queue, args)
  }

  /**
   * A handler's snooze (scripts/snooze.lua, ADR 0021): the job goes back to `scheduled` for
   * `delayMs` without using an attempt; fenced by the delivery's epoch. Past `maxSnoozes`
   * (0: no limit) it is dead-lettered instead.
   */
  snooze(
    queue: string,
    id: string,
    epoch: number,
    delayMs: number,
    maxSnoozes: number,
    entry?: string,
  ): Promise<'snoozed' | 'failed' | 'cancelled' | 'stale'> {
    const args = [id, epoch, Math.round(delayMs), maxSnoozes]
    if (entry) args.push(entry)
    return this.run('snooze', queue, args)
  }

  async promote(queue: string, limit = 500): Promise<{ moved: number; nextDue: number | null }> {
    const [moved, next] = await this.run<[number, number]>('promote', queue, [limit])
    return { moved, nextDue: next < 0 ? null : next }
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
        Promise.resolve(
          callOnKey(
            this.redis,
            this.keys.stream(queue, p),
            'XGROUP',
            'CREATE',
            this.keys.stream(queue, p),
            GROUP,
            '0',
            'MKSTREAM',
          ),
        ).catch((err: Error) => {
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
  async dlqPurgeBefore(queue: string, beforeMs: number, page = 500, priority?: Priority): Promise<number> {
    let total = 0
    // By priority: entries of other priorities stay, so the walk goes on after the last examined.
    for (let after = ''; priority; ) {
      const [n, last] = await this.run<[number, string]>('dlq_delete', queue, [
        'before_prio',
        beforeMs,
        page,
        priority,
        after,
      ])
      total += n
      if (!last) return total
      after = last
    }
    for (;;) {
      const n = await this.run<number>('dlq_delete', queue, ['before', beforeMs, page])
      total += n
      if (n < page) return total
    }
  }

  /** Records the queue's histograms for this minute when they changed (history_snapshot). */
  async snapshotHistograms(queue: string): Promise<boolean> {
    const now = this.clock.now()
    return (await this.run<number>('history_snapshot', queue, [Math.floor(now / 60000)], now)) === 1
  }

  // ---- day-2 operations (ADR 0020) -------------------------------------------------------

  /** A scheduled or retrying job made ready now (script run_now). */
  runNow(queue: string, id: string): Promise<string> {
    return this.run<string>('run_now', queue, [id])
  }

  /** A job's priority, before it starts (script set_priority: a queued job changes streams). */
  setPriority(queue: string, id: string, priority: Priority): Promise<string> {
    return this.run<string>('set_priority', queue, [id, priority])
  }

  /** A waiting or failed job's payload replaced, the edit recorded on the job (script edit_payload). */
  editPayload(queue: string, id: string, payload: string, by: string): Promise<string> {
    return this.run<string>('edit_payload', queue, [id, payload, by])
  }

  /** The original's side of a replay's link (script note_replay, ADR 0028): 1, or 0 when it is gone. */
  noteReplay(queue: string, id: string, replay: string): Promise<number> {
    return this.run<number>('note_replay', queue, [id, replay])
  }

  /** A job removed in any state; a running one is fenced (script delete_job). */
  deleteJob(queue: string, id: string, onlyStates?: readonly string[]): Promise<string> {
    const args = [id, this.keys.cancelChannel(), queue]
    if (onlyStates?.length) args.push(onlyStates.join(','))
    return this.run<string>('delete_job', queue, args)
  }

  /** Up to `limit` of the jobs waiting to run removed (script empty_queue); `more`: some are left. */
  async emptyQueue(
    queue: string,
    limit: number,
  ): Promise<{ removed: number; cancelled: number; more: boolean }> {
    const [removed, cancelled, more] = await this.run<[number, number, number]>('empty_queue', queue, [limit])
    return { removed, cancelled, more: more === 1 }
  }

  /**
   * Deletes every key of a physical queue -- those under its base `<prefix>:{q}:`, found by SCAN
   * on each primary (on a Cluster they all sit in the queue's slot, so a batch is one UNLINK) --
   * after taking it out of the registry, the paused set and the schedules registry. Returns how
   * many keys it deleted. Not atomic: the caller has checked nothing runs (or was told to force).
   */
  async dropQueue(queue: string): Promise<number> {
    const base = this.keys.base(queue)
    await this.redis.srem(this.keys.queues(), queue)
    await this.redis.srem(this.keys.paused(), queue)
    this.knownQueues.delete(queue)
    const schedules = await this.redis.hgetall(this.keys.schedules())
    const mine = Object.keys(schedules).filter((name) => schedules[name] === queue)
    if (mine.length) await this.redis.hdel(this.keys.schedules(), ...mine)
    let deleted = 0
    await scanKeys(this.redis, `${base}:*`, async (keys) => {
      for (let i = 0; i < keys.length; i += 500) deleted += await this.redis.unlink(...keys.slice(i, i + 500))
    })
    return deleted
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
   * Raises a queue's partition count to `count` (ADR 0017; never lowers it: the jobs of a dropped
   * partition would be stranded). Each new partition is registered and given its consumer groups
   * before the count is raised, so no producer routes to a partition that is not ready; a paused
   * queue's new partitions are paused too. Returns the count before and after.
   */
  async setPartitions(queue: string, count: number): Promise<{ before: number; after: number }> {
    for (let attempt = 0; ; attempt++) {
      const current = (await this.partitionNames(true)).get(queue) ?? [queue]
      const before = current.length
      if (count < before) {
        throw new DtqError(
          'INVALID_STATE',
          `queue ${queue} has ${before} partitions: a count only grows (lowering it would strand the jobs of the dropped partitions)`,
          { partitions: before },
        )
      }
      if (count === before) return { before, after: before }
      const owners = await this.slotOwners()
      const names = placePartitions(
        queue,
        current,
        count,
        owners && ((p) => owners.of(this.keys.base(p))),
        owners?.nodes,
      )
      const added = names.slice(before)
      const paused = (await this.pausedQueues([queue])).has(queue)
      for (const q of added) await this.registerQueue(q)
      await Promise.all(added.map((q) => this.ensureGroups(q)))
      if (paused) for (const q of added) await this.setPaused(q, true)
      // The count it has now is remembered first (partitionsBefore): keyed jobs sent before the
      // growth are looked for where their keys routed then (Queue.writeBulk). Written before the
      // list, so it is never short of a count the list had (an extra one costs one lookup).
      const was = (await this.redis.hget(this.keys.partitionsBefore(), queue))?.split(' ') ?? []
      if (!was.includes(String(before)))
        await this.redis.hset(this.keys.partitionsBefore(), queue, [...was, before].join(' '))
      // Extended only, atomically: the list is replaced only by a longer one that starts with it.
      // Two admins raising at once: one wins, the other places its partitions again after it.
      const stored = String(
        await this.redis.eval(
          "local cur = redis.call('HGET', KEYS[1], ARGV[1]) or ARGV[1] if #ARGV[2] > #cur and string.sub(ARGV[2], 1, #cur + 1) == cur .. ' ' then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) return ARGV[2] end return cur",
          1,
          this.keys.partitions(),
          queue,
          names.join(' '),
        ),
      )
      await this.partitionNames(true)
      const after = stored.split(' ').length
      if (stored === names.join(' ') || after >= count || attempt >= 2) return { before, after }
    }
  }

  /**
   * On a Redis Cluster, which primary serves a key's slot (its `host:port`), and every primary;
   * null on one primary.
   */
  private async slotOwners(): Promise<{ of: (key: string) => string; nodes: string[] } | null> {
    if (!isCluster(this.redis)) return null
    const ranges = (await this.redis.call('CLUSTER', 'SLOTS')) as Array<[number, number, [string, number]]>
    const owner = new Array<string>(16384)
    for (const [from, to, [host, port]] of ranges) owner.fill(`${host}:${port}`, from, to + 1)
    return {
      of: (key) => owner[calculateSlot(key)] ?? '',
      nodes: [...new Set(ranges.map(([, , [h, p]]) => `${h}:${p}`))],
    }
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
   * keys: costly, so it runs only after such an alarm. `due` is the queue's `repair_due` count
   * as read before the scan (sweep); once the scan is over it clears that trigger unless a
   * reclaim reported more deleted entries meanwhile. Returns how many it repaired.
   */
  async repairLostJobs(queue: string, due?: string): Promise<number> {
    const prefix = `${this.keys.base(queue)}:job:`
    let repaired = 0
    await scanKeys(this.redis, `${prefix}*`, async (keys) => {
      const ids = keys.map((k) => k.slice(prefix.length))
      for (let i = 0; i < ids.length; i += 500) {
        const part = ids.slice(i, i + 500)
        repaired += await this.run<number>('repair', queue, [part.length, ...part])
      }
    })
    if (due) await this.run<number>('repair', queue, [0, due])
    return repaired
  }

  /**
   * Switches the created-time index of a queue (every partition) on or off (ADR 0035). On: the
   * switch reads 'building' at once -- new jobs are indexed from then on -- and the backfill
   * (createdBackfill) indexes the jobs that were there before. Off: the index and its switch go.
   */
  async setCreatedIndex(queue: string, on: boolean): Promise<void> {
    for (const p of await this.physicalQueues(queue)) await this.run('created_index', p, [on ? 'on' : 'off'])
  }

  /**
   * Runs up to `pages` pages of the created-time index's backfill in each partition of `queue`
   * that is building (SCAN of its job hashes, `count` keys a page, from where the last page
   * stopped: resumable by any process). Returns the queue's state after.
   */
  async createdBackfill(queue: string, pages = Number.POSITIVE_INFINITY, count = 1000) {
    for (const p of await this.physicalQueues(queue)) {
      const meta = this.keys.meta(p)
      const jobKey = this.keys.job(p, '')
      const match = `${jobKey.replace(/[*?[\]\\]/g, '\\$&')}*`
      for (let n = 0; n < pages; n++) {
        const [state, at] = await this.redis.hmget(meta, 'created_index', 'created_scan')
        if (state !== 'building' || typeof at !== 'string') break
        const [next, keys] = (await callOnKey(
          this.redis,
          meta,
          'SCAN',
          at,
          'MATCH',
          match,
          'COUNT',
          count,
        )) as [string, string[]]
        const ids = keys.map((k) => k.slice(jobKey.length))
        await this.run('created_index', p, ['page', at, next, ...ids])
      }
    }
    return this.createdIndexState(queue)
  }

  /** Removes up to `limit` members of expired jobs from each partition's created-time index (ADR 0035). */
  async createdSweep(queue: string, limit = 1000): Promise<number> {
    let removed = 0
    for (const p of await this.physicalQueues(queue))
      removed += await this.run<number>('created_sweep', p, ['walk', limit])
    return removed
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

  /**
   * Redis's memory use against its maxmemory (null when no limit is set): of the fullest
   * primary, on a Cluster (any full primary refuses the enqueues of its queues).
   */
  async memoryUse(): Promise<{ used: number; max: number } | null> {
    const infos = await Promise.all(primaries(this.redis).map((node) => node.info('memory')))
    let fullest: { used: number; max: number } | null = null
    for (const info of infos) {
      const num = (name: string) => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(info)?.[1] ?? 0)
      const max = num('maxmemory')
      const use = { used: num('used_memory'), max }
      if (max > 0 && (!fullest || use.used / max > fullest.used / fullest.max)) fullest = use
    }
    return fullest
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
      for (const node of primaries(this.redis)) {
        await node.call('FUNCTION', 'DELETE', name).catch((err: Error) => {
          if (!/not found|no such library/i.test(err.message)) throw err
        })
      }
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
    // The created-time index's switch (ADR 0035): the janitor continues or sweeps it when set.
    p.hget(this.keys.meta(queue), 'created_index')
    // Deleted entries reported by a reclaim and not yet repaired (reclaim.lua): held in Redis,
    // so a leader that dies before its repair leaves the work to the next one.
    p.hget(this.keys.meta(queue), 'repair_due')
    const res = (await p.exec()) ?? []
    const indexEntries = res.slice(0, 2).reduce((a, r) => a + Number(r?.[1] ?? 0), 0)
    const dlqEntries = Number(res[3]?.[1] ?? 0)
    const createdIndex = res[4]?.[1] as string | null | undefined
    const repairDue = (res[5]?.[1] as string | null | undefined) ?? undefined

    let consumers = 0
    for (const pr of PRIORITIES) {
      const stream = this.keys.stream(queue, pr)
      const info = (await Promise.resolve(
        callOnKey(this.redis, stream, 'XINFO', 'CONSUMERS', stream, GROUP),
      ).catch(() => [])) as unknown[][]
      for (const raw of info) {
        const c = pairsToRecord(raw.map(String))
        if (!c.name || liveConsumers.has(c.name)) continue
        if (Number(c.pending) === 0 && Number(c.idle) > consumerIdleMs) {
          consumers += await this.removeConsumer(queue, c.name)
        }
      }
    }
    return { completedJobs, indexEntries, dlqEntries, consumers, createdIndex, repairDue }
  }
}
