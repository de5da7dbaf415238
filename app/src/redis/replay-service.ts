/**
 * Replay and debugging (ADR 0028), the library API behind `POST /jobs/{id}/replay`, dry runs,
 * `GET /jobs/{id}/timeline` and `GET /jobs/{id}/compare`, and `dtq replay|timeline|compare`:
 *
 * - a replay is a NEW job made from a finished one (completed, failed, cancelled) with changes;
 *   it carries `replay_of` (written by the same enqueue call that creates it) and the original
 *   records it in `replays` (a second, best-effort call: another queue is another slot);
 * - a dry run runs every check an add runs and reads what it would meet (the id, the idempotency
 *   key, a dedup holder, the queue's registration, its limits and pause), writing nothing;
 * - jobs are found through JobSources (Redis first; a history archive plugs in after it).
 */
import { DtqError } from '../errors.ts'
import { decodeJob, F, type Job } from '../queue/job.ts'
import { logicalQueue } from '../queue/partitions.ts'
import {
  type AttemptComparable,
  attemptOf,
  attemptsOnRecord,
  comparableJob,
  type Difference,
  type JobComparable,
  jobRef,
  jsonDiff,
  REPLAY_CHANGE_FIELDS,
  REPLAYABLE_STATES,
  type ReplayChanges,
  type ReplayJobSpec,
  replaySpec,
} from '../queue/replay.ts'
import { RESERVED_TASK_PREFIX } from '../queue/validate.ts'
import { type JobSource, JobSources, redisSource } from './job-source.ts'
import type { LimitStore } from './limits.ts'
import { type Clock, type JobStore, type NewJobRecord, storedFields } from './store.ts'
import { redisTimeline, type Timeline } from './timeline.ts'

/** A job as a dry run reads it (a JobSpec: redis/ does not import queue.ts). */
export interface DryRunSpec extends ReplayJobSpec {
  depends_on?: Array<string | { job_id: string; queue?: string }>
}

/** What Replays needs of the library: Queue is one (redis/ does not import it). */
export interface ReplayHost {
  readonly store: JobStore
  readonly limits: LimitStore
  readonly clock: Clock
  readonly settings: { maxQueues?: number }
  getJob(id: string, queue?: string): Promise<Job | null>
  /** The jobs an idempotency key names: in `queue` (every partition of it). */
  jobsByIdempotencyKey(key: string, queue?: string): Promise<Job[]>
  add(
    taskType: string,
    payload: unknown,
    opts: Omit<ReplayJobSpec, 'task_type' | 'payload'>,
  ): Promise<{ job: Job; created: boolean }>
  /** Every check add runs on one job, and the record it would write (throws VALIDATION). */
  prepare(spec: DryRunSpec): { queue: string; record: NewJobRecord }
}

/** What an add (or a replay) would do, found without writing anything. */
export interface DryRun {
  dry_run: true
  /** create: a new job; existing: its id or idempotency key names a job; deduplicated: a dedup holder answers. */
  outcome: 'create' | 'existing' | 'deduplicated'
  /** The job as it would be stored (`id` '' when DTQ would number it: `generated_id`). */
  job: Job
  generated_id: boolean
  /** The job that would answer instead (outcome existing or deduplicated). */
  existing: Job | null
  /** Its (logical) queue, and whether the add would register it (it is new). */
  queue: string
  queue_is_new: boolean
  /** What else the job would meet: a paused queue or type, an open breaker, limits. */
  notes: string[]
}

export interface ReplayResult {
  job: Job
  /** False when the replay's own idempotency key or job_id named a job already (no new job). */
  created: boolean
  original: string
  /** Where the original was found (redis; an archive once one is configured). */
  source: string
}

export interface CompareSide {
  ref: string
  source: string
  created_at: number
  started_at: number | null
  finished_at: number | null
  worker: string | null
  view: JobComparable
}

export interface AttemptSide {
  ref: string
  view: AttemptComparable
}

export interface Comparison<S> {
  a: S
  b: S
  same: boolean
  differences: Difference[]
  /** How many differences there are (at most 200 are listed). */
  total: number
}

export interface ReplayOptions {
  /** The original's queue (ids are unique within a queue: ADR 0016). */
  queue?: string
  /** Admission control for the replay's queue (the API's QUEUE_MAX_DEPTH): throws to refuse. */
  admit?: (queue: string) => Promise<void>
}

const REPLAY_STATE_LIST = REPLAYABLE_STATES.join(', ')

export class Replays {
  readonly sources: JobSources
  private readonly queue: ReplayHost

  /** `more`: sources asked after Redis (a history archive). */
  constructor(queue: ReplayHost, more: readonly JobSource[] = []) {
    this.queue = queue
    this.sources = new JobSources([redisSource((id, q) => queue.getJob(id, q)), ...more])
  }

  private async find(id: string, queue?: string): Promise<{ job: Job; source: JobSource }> {
    const found = await this.sources.find(id, queue)
    if (!found) throw new DtqError('NOT_FOUND', `job ${id} not found`)
    return found
  }

  /** The replay's job spec, checked against its original: finished, not a system job. */
  private async plan(id: string, queue: string | undefined, changes: ReplayChanges) {
    if (changes !== undefined && (changes === null || typeof changes !== 'object' || Array.isArray(changes)))
      throw new DtqError('VALIDATION', 'changes must be an object')
    const unknown = Object.keys(changes ?? {}).filter((k) => !REPLAY_CHANGE_FIELDS.has(k))
    if (unknown.length)
      throw new DtqError(
        'VALIDATION',
        `${unknown.join(', ')}: not a field a replay changes (${[...REPLAY_CHANGE_FIELDS].join(', ')})`,
      )
    const { job, source } = await this.find(id, queue)
    if (!(REPLAYABLE_STATES as readonly string[]).includes(job.state))
      throw new DtqError(
        'INVALID_STATE',
        `job ${id} is ${job.state}: only a finished job (${REPLAY_STATE_LIST}) can be replayed`,
        { state: job.state },
      )
    if (job.task_type.startsWith(RESERVED_TASK_PREFIX))
      throw new DtqError(
        'VALIDATION',
        `job ${id} is a DTQ system job (${job.task_type}): it cannot be replayed`,
      )
    return { original: job, source, spec: replaySpec(job, changes ?? {}) }
  }

  /**
   * Adds a new job from a finished one, with `changes` (payload, queue, priority, when, retries,
   * timeout, partition key, backoff, its own idempotency key or id). The original's idempotency
   * key and dedup are not carried (they would answer the replay with the original). Bad changes
   * are a VALIDATION error, a job not finished an INVALID_STATE error: nothing written.
   */
  async replay(id: string, changes: ReplayChanges = {}, opts: ReplayOptions = {}): Promise<ReplayResult> {
    const { original, source, spec } = await this.plan(id, opts.queue, changes)
    await opts.admit?.(spec.queue!)
    const { task_type, payload, ...add } = spec
    const { job, created } = await this.queue.add(task_type, payload, add)
    // The original's side of the link: another call (a replay may go to another queue's slot);
    // if it fails the replay stands and still names its original (replay_of).
    if (created && source.name === 'redis')
      await this.queue.store.noteReplay(original.queue, original.id, jobRef(job)).catch(() => 0)
    return { job, created, original: jobRef(original), source: source.name }
  }

  /** What replay() would do, writing nothing (dry run). */
  async dryRunReplay(
    id: string,
    changes: ReplayChanges = {},
    opts: ReplayOptions = {},
  ): Promise<DryRun & { original: string; source: string }> {
    const { original, source, spec } = await this.plan(id, opts.queue, changes)
    await opts.admit?.(spec.queue!)
    return { ...(await this.dryRun(spec)), original: jobRef(original), source: source.name }
  }

  /**
   * What add() would do with this job, writing nothing: every check add runs (fields, values,
   * sizes, depends_on parents existing, the queue limit) throws the same error; then what it
   * would meet is read -- a job with its id or idempotency key, the holder of its dedup key --
   * and the job it would store is answered.
   */
  async dryRun(spec: DryRunSpec): Promise<DryRun> {
    const q = this.queue
    const { queue, record } = q.prepare(spec)
    const store = q.store
    const [registered, physical] = await Promise.all([store.queues(), store.physicalQueues(queue)])
    const queueIsNew = !physical.some((p) => registered.includes(p))
    const max = q.settings.maxQueues ?? 1000
    if (queueIsNew && registered.length >= max)
      throw new DtqError(
        'QUEUE_LIMIT',
        `queue ${queue} is new and the registry holds ${max} queues, its limit (MAX_QUEUES); queues that stay empty leave it after QUEUE_FORGET_S`,
      )
    if (spec.depends_on !== undefined) await this.checkParents(spec, queue)
    const now = q.clock.now()
    const fields = storedFields(record, now)
    if (spec.depends_on !== undefined) {
      fields[F.state] = 'waiting'
      delete fields[F.run_at]
    }
    const job = decodeJob(queue, fields, record.id)
    const base = {
      dry_run: true as const,
      job,
      generated_id: record.id === '',
      queue,
      queue_is_new: queueIsNew,
    }
    const existing = await this.existing(physical, spec)
    if (existing) return { ...base, outcome: 'existing', existing, notes: [] }
    const holder = await this.dedupHolder(physical, record.extra[F.dedup], now)
    if (holder)
      return {
        ...base,
        outcome: 'deduplicated',
        existing: holder,
        notes: [
          record.extra[F.dedup]!.startsWith('debounce ')
            ? `debounce: job ${holder.id} would take this payload and run ${record.extra[F.dedup]!.split(' ')[1]} ms after now`
            : `${record.extra[F.dedup]!.split(' ')[0]}: job ${holder.id} holds the dedup key; this add would answer it`,
        ],
      }
    return { ...base, outcome: 'create', existing: null, notes: await this.notes(physical, spec.task_type) }
  }

  /** depends_on parents must exist (add refuses otherwise, writing nothing). */
  private async checkParents(spec: DryRunSpec, queue: string): Promise<void> {
    const parents = (spec.depends_on ?? []).map((d) =>
      typeof d === 'string' ? { id: d, queue } : { id: d.job_id, queue: d.queue ?? queue },
    )
    const found = await Promise.all(parents.map((p) => this.queue.store.getJob(p.queue, p.id)))
    const unknown = parents.filter((_, i) => !found[i]).map((p) => `${p.id} (queue ${p.queue})`)
    if (unknown.length)
      throw new DtqError('VALIDATION', `depends_on names jobs that do not exist: ${unknown.join(', ')}`, {
        problems: unknown.map((u) => `depends_on: no job ${u}`),
      })
  }

  /** The job add() would answer instead of creating one: the same id, or idempotency key. */
  private async existing(physical: string[], spec: DryRunSpec): Promise<Job | null> {
    const store = this.queue.store
    if (spec.id) {
      const jobs = await Promise.all(physical.map((p) => store.getJob(p, spec.id!)))
      const hit = jobs.find((j) => j !== null)
      if (hit) return hit
    }
    if (spec.idempotency_key)
      return (
        (await this.queue.jobsByIdempotencyKey(spec.idempotency_key, logicalQueue(physical[0]!)))[0] ?? null
      )
    return null
  }

  /** The live job holding a dedup key now (scripts/lib/2b-dedup.lua, dedup_holder), or null. */
  private async dedupHolder(physical: string[], dedup: string | undefined, now: number): Promise<Job | null> {
    if (!dedup) return null
    const hash = dedup.split(' ')[2]!
    const store = this.queue.store
    const values = await Promise.all(physical.map((p) => store.redis.get(store.keys.dedup(p, hash))))
    for (let i = 0; i < physical.length; i++) {
      const m = /^(\S+) ?(\d*)$/.exec(values[i] ?? '')
      if (!m || (m[2] !== '' && Number(m[2]) <= now)) continue
      const job = await store.getJob(physical[i]!, m[1]!)
      if (job) return job
    }
    return null
  }

  /** What a new job of this type would meet in its queue: pauses, breakers, limits. */
  private async notes(physical: string[], taskType: string): Promise<string[]> {
    const store = this.queue.store
    const out: string[] = []
    const paused = await store.pausedQueues(physical)
    if (paused.size)
      out.push(`queue ${logicalQueue(physical[0]!)} is paused: the job would wait until it is resumed`)
    if (physical.length > 1) return out // no limits on a partitioned queue (ADR 0022)
    const view = await this.queue.limits.view(physical[0]!)
    const until = view.paused[taskType]
    if (until)
      out.push(
        `task type ${taskType} is paused until ${new Date(until).toISOString()}: the job would be deferred`,
      )
    const breaker = view.breakers[taskType]
    if (breaker && breaker.state !== 'closed')
      out.push(`the breaker of ${taskType} is ${breaker.state}: the job would be deferred until it closes`)
    const l = view.limits
    const t = l.types?.[taskType]
    const limits = [
      l.rate && `queue rate ${l.rate.limit}/${l.rate.window_ms} ms`,
      l.concurrency && `queue concurrency ${l.concurrency}`,
      l.key_concurrency && `per-key concurrency ${l.key_concurrency}`,
      t?.rate && `${taskType} rate ${t.rate.limit}/${t.rate.window_ms} ms`,
      t?.concurrency && `${taskType} concurrency ${t.concurrency}`,
    ].filter(Boolean)
    if (limits.length) out.push(`limits apply (${limits.join(', ')}): the job may be held or deferred`)
    return out
  }

  // ---- timeline and compare -------------------------------------------------------------------

  /** Every state change and attempt on record for a job (see redis/timeline.ts), with its source. */
  async timeline(id: string, queue?: string): Promise<Timeline & { source: string }> {
    const { job, source } = await this.find(id, queue)
    const more = (await source.timeline?.(job)) ?? []
    return { ...(await redisTimeline(this.queue.store, job, more)), source: source.name }
  }

  /** Two jobs side by side: what they were asked (payload, options), what came of it, how long it took. */
  async compare(a: { id: string; queue?: string }, b: { id: string; queue?: string }) {
    const [x, y] = await Promise.all([this.find(a.id, a.queue), this.find(b.id, b.queue)])
    const side = (f: { job: Job; source: JobSource }): CompareSide => ({
      ref: jobRef(f.job),
      source: f.source.name,
      created_at: f.job.created_at,
      started_at: f.job.started_at,
      finished_at: f.job.finished_at,
      worker: f.job.worker,
      view: comparableJob(f.job),
    })
    const sa = side(x)
    const sb = side(y)
    const { differences, total } = jsonDiff(sa.view, sb.view)
    return { a: sa, b: sb, same: total === 0, differences, total } satisfies Comparison<CompareSide>
  }

  /** Two attempts of one job side by side: outcome, worker, error, duration. */
  async compareAttempts(id: string, queue: string | undefined, a: number, b: number) {
    const { job } = await this.find(id, queue)
    const pick = (n: number) => {
      const v = attemptOf(job, n)
      if (!v)
        throw new DtqError(
          'NOT_FOUND',
          `job ${id} has no record of attempt ${n} (on record: ${attemptsOnRecord(job).join(', ') || 'none'})`,
          { attempts: attemptsOnRecord(job) },
        )
      return { ref: `${jobRef(job)}#${n}`, view: v }
    }
    const sa = pick(a)
    const sb = pick(b)
    const strip = ({ attempt: _, started_at: _s, ended_at: _e, ...rest }: AttemptComparable) => rest
    const { differences, total } = jsonDiff(strip(sa.view), strip(sb.view))
    return { a: sa, b: sb, same: total === 0, differences, total } satisfies Comparison<AttemptSide>
  }
}

/**
 * The process's Replays: where the history archive plugs in (ADR 0028). With DATABASE_URL set,
 * callers pass `archiveSources(config).sources` (history/job-source.ts) in `archive`: asked after
 * Redis, for jobs past their retention (replay, timeline and compare then work on them).
 */
export function createReplays(queue: ReplayHost, archive: readonly JobSource[] = []): Replays {
  return new Replays(queue, archive)
}
