/**
 * The store's reads: one job, lookups without a queue, listings and stats. Listings and stats
 * cost a constant number of round trips whatever the number of queues: a read-only function
 * call per queue (list, queue_stats, throughput), all in one round, with filters applied in
 * Redis. Reads over several queues are separate commands sent together (autopipelined: one
 * round trip per node), never one pipeline or multi-key command: on a Redis Cluster the queues
 * live in different slots (ADR 0017).
 */

import { GENERATED_ID, idBlock } from '../queue/ids.ts'
import {
  decodeJob,
  F,
  type Job,
  type JobState,
  jobEntry,
  PRIORITIES,
  type Priority,
  pairsToRecord,
  STATES,
} from '../queue/job.ts'
import { logicalQueue } from '../queue/partitions.ts'
import { GROUP } from './keys.ts'
import {
  before,
  beforeAsc,
  blocks,
  type Candidate,
  encodeCursor,
  type ListCursor,
  type ListReply,
  type Page,
  type QueueScan,
  startAt,
} from './listing.ts'
import { LOC_BLOCK_TTL_S, StoreBase } from './store-base.ts'

/**
 * States kept in an index zset (`idx:<state>`). Queued and active jobs are found in the ready
 * streams: the consumer group delivers in entry order and acknowledged entries are deleted in
 * the same call, so a stream's entries up to the group's last-delivered id are exactly the
 * pending ones (active jobs) and those after it the undelivered ones (queued jobs).
 */
/** A page sorted by created time examines at most this many index members per row asked (ADR 0035). */
export const CREATED_SCAN_PER_ROW = 20
export const STREAM_STATES: readonly JobState[] = ['queued', 'active']
export const INDEXED_STATES = STATES.filter((s) => !STREAM_STATES.includes(s))

export interface QueueStats {
  queue: string
  paused: boolean
  counts: Record<JobState, number>
  totals: Record<string, number>
  streams: Record<
    Priority,
    {
      length: number
      pending: number
      /** Undelivered entries; null when unknown (see queue_stats.lua: Redis reported none, too many to count). */
      lag: number | null
      oldest_waiting_ms: number | null
    }
  >
  delayed: number
  dlq: number
  oldest_waiting_ms: number | null
  /** A partitioned queue's partition count (its row sums them: mergePartitions). */
  partitions?: number
  /** The created-time index (ADR 0035); a partitioned queue's: createdAcross its partitions'. */
  created_index?: CreatedIndexState
}

export type CreatedIndexState = 'off' | 'building' | 'on'

/** A queue's created-time index from its partitions': on when on in all, building when set in any. */
export function createdAcross(states: ReadonlyArray<string | null | undefined>): CreatedIndexState {
  if (states.every((s) => s === 'on')) return 'on'
  return states.some((s) => s === 'building' || s === 'on') ? 'building' : 'off'
}

/** `queue_stats`: index counts, stats hash (flat), delayed, DLQ length, paused, per priority. */
type QueueStatsReply = [
  number[],
  string[],
  number,
  number,
  number,
  Array<[length: number, pending: number, lag: number, oldest: string]>,
  string,
]

export class JobReads extends StoreBase {
  /**
   * A listing page's work bounds: candidates one `list` call examines at most (~6 ms of Redis
   * at 2000, so one call never holds Redis long), and one page at most over all its calls (a
   * page stopped there ends short, with a cursor). Tests lower them.
   */
  readonly listScan = { perCall: 2000, perPage: 100_000 }

  async pausedQueues(queues: string[]): Promise<Set<string>> {
    const paused = new Set(await this.redis.smembers(this.keys.paused()))
    return new Set(queues.filter((q) => paused.has(q)))
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
      // A partitioned queue: every partition (a caller's id routes by its partition_key first).
      const jobs = await Promise.all((await this.physicalQueues(queue)).map((q) => this.getJob(q, id)))
      return jobs.filter((j): j is Job => j !== null)
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

  /** The jobs with this id in every queue (but `skip`), in queue name order: one round. */
  private async readEverywhere(id: string, skip?: string | null): Promise<Job[]> {
    const queues = (await this.queues()).filter((q) => q !== skip)
    // Autopipelined: one round trip per node, whatever slots the queues live in.
    const res = await Promise.all(queues.map((q) => this.redis.hgetall(this.keys.job(q, id))))
    return queues.flatMap((q, i) => {
      const h = res[i]
      return h?.[F.state] ? [decodeJob(q, h, id)] : []
    })
  }

  /**
   * The jobs added with an idempotency key (its SHA-256): in `queue`, or without one in every
   * queue whose key names a job (a key is unique within its queue, ADR 0016), read in one
   * round trip after the registry's; in queue name order.
   */
  async findByIdempotencyKey(keyHash: string, queue?: string): Promise<Job[]> {
    const queues = await this.physicalQueues(queue || undefined)
    const values = await Promise.all(queues.map((q) => this.redis.get(this.keys.idempotency(q, keyHash))))
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

  /** Reads the hashes of the candidates that made a page (one HGETALL each, autopipelined). */
  private async hydrate(
    cands: Candidate[],
  ): Promise<Array<{ job: Job; raw: Record<string, string> } | null>> {
    if (!cands.length) return []
    const res = await Promise.all(cands.map((c) => this.redis.hgetall(this.keys.job(c.queue, c.id))))
    return cands.map((c, i) => {
      const h = res[i]
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
    kind: 'jobs' | 'jobs_asc' | 'dlq' | 'created' | 'created_asc',
    queues: string[],
    cursor: ListCursor | null,
    limit: number,
    args: ReadonlyArray<string | number>,
    accept: (job: Job, c: Candidate, raw: Record<string, string>) => T | null,
    perPage = this.listScan.perPage,
  ): Promise<Page<T>> {
    const scans: QueueScan[] = queues.map((queue) => ({ queue, buf: [], done: false, last: null }))
    // `later(a, b)`: a comes after b in this walk's order (oldest first for jobs_asc).
    const asc = kind === 'jobs_asc' || kind === 'created_asc'
    const later = asc ? beforeAsc : before
    const page: Candidate[] = []
    // Created-index members met without a job hash (expired by TTL): removed after the page.
    const gone = new Map<string, string[]>()
    let examined = 0
    let stoppedAt: ListCursor | null = null
    for (;;) {
      // Take the newest buffered candidate while no queue may hold one ahead of it.
      let head: QueueScan | undefined
      for (;;) {
        head = undefined
        for (const s of scans) if (s.buf.length && (!head || later(head.buf[0]!, s.buf[0]!))) head = s
        const c = head?.buf[0]
        if (!c || page.length >= limit || scans.some((s) => blocks(s, c, later))) break
        page.push(head!.buf.shift()!)
      }
      const waiting = scans.filter((s) => blocks(s, head?.buf[0], later))
      if (page.length >= limit || !waiting.length) break
      if (examined >= perPage) {
        // Every queue is examined down to its last position; the page resumes after the newest.
        stoppedAt = waiting.map((s) => s.last!).reduce((a, b) => (later(a, b) ? b : a))
        break
      }
      const want = limit - page.length + 1
      const budget = Math.min(
        this.listScan.perCall,
        Math.max(1, Math.ceil((perPage - examined) / waiting.length)),
      )
      const replies = await Promise.all(
        waiting.map((s) => {
          const at = s.last ?? cursor
          // A candidate at the cursor's very score and id is still to come if its queue sorts first.
          const incl = at && (asc ? s.queue > at.queue : s.queue < at.queue) ? '1' : '0'
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
        const [flat, done, lastScore, lastId, n, stale] = replies[i]!
        if (stale?.length) gone.set(s.queue, [...(gone.get(s.queue) ?? []), ...stale])
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
    for (const [queue, ids] of gone) await this.run('created_sweep', queue, ['ids', ...ids])
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

  /**
   * Jobs newest first (by the time they entered their current state), filtered, paginated;
   * `order: 'asc'` oldest first. `from` (ms): without a cursor, the page starts at that time --
   * jobs listed at or before it (newest first) or at or after it (oldest first), ADR 0033.
   */
  async listJobs(q: {
    queue?: string
    state?: JobState
    task_type?: string
    cursor?: string | null
    from?: number
    order?: 'asc' | 'desc'
    limit: number
  }): Promise<Page<Job>> {
    const asc = q.order === 'asc'
    // Newest first: a position just after `from`'s last millisecond -- (from + 1, '') comes
    // before every job id; oldest first: (from, ''), every id of that millisecond after it.
    const cursor =
      startAt(q.cursor) ??
      (q.from === undefined ? null : { score: asc ? q.from : q.from + 1, id: '', queue: '' })
    const queues = await this.physicalQueues(q.queue || undefined)
    // Queued and active jobs have no index: their entries in the ready streams are it (newest
    // first by entry time); the other states have an index zset each.
    const streams = !q.state ? 'all' : STREAM_STATES.includes(q.state) ? q.state : 'none'
    const indexed = !q.state ? INDEXED_STATES : streams === 'none' ? [q.state] : []
    return this.scanPage(
      asc ? 'jobs_asc' : 'jobs',
      queues,
      cursor,
      q.limit,
      [q.task_type ?? '', streams, ...indexed],
      (job, c, raw) => {
        if (q.task_type && job.task_type !== q.task_type) return null
        if (q.state && job.state !== q.state) return null
        if (c.extra?.entry && (!STREAM_STATES.includes(job.state) || jobEntry(raw) !== c.extra.entry))
          return null
        return job
      },
    )
  }

  /**
   * Jobs of one queue by created_at, newest first (`order: 'asc'` oldest first), through its
   * created-time index (ADR 0035; the caller checks that it is on): the state and task type
   * filters apply to the members read, at most CREATED_SCAN_PER_ROW × limit of them (a page that
   * stops short has a cursor to continue). `from`: the page starts at that created time.
   */
  async listCreated(q: {
    queue: string
    state?: JobState
    task_type?: string
    cursor?: string | null
    from?: number
    order?: 'asc' | 'desc'
    limit: number
  }): Promise<Page<Job>> {
    const asc = q.order === 'asc'
    const cursor =
      startAt(q.cursor) ??
      (q.from === undefined ? null : { score: asc ? q.from : q.from + 1, id: '', queue: '' })
    return this.scanPage(
      asc ? 'created_asc' : 'created',
      await this.physicalQueues(q.queue),
      cursor,
      q.limit,
      [q.task_type ?? '', q.state ?? ''],
      (job) => {
        if (q.task_type && job.task_type !== q.task_type) return null
        if (q.state && job.state !== q.state) return null
        return job
      },
      // Filters read member by member: at most CREATED_SCAN_PER_ROW members per row asked.
      Math.min(this.listScan.perPage, CREATED_SCAN_PER_ROW * q.limit),
    )
  }

  /**
   * The created-time index's state in a queue (ADR 0035): 'on' only when it is on in every
   * partition; 'building' while any is building; else 'off'.
   */
  async createdIndexState(queue: string): Promise<CreatedIndexState> {
    const parts = await this.physicalQueues(queue)
    return createdAcross(
      await Promise.all(parts.map((p) => this.redis.hget(this.keys.meta(p), 'created_index'))),
    )
  }

  /** Dead-lettered jobs newest first, filtered by type, priority, error text and age. */
  async listDlq(q: {
    queue?: string
    task_type?: string
    priority?: Priority
    /** Its error class as GET /dlq/stats derives it (in Redis only: error_class() of the prelude). */
    error_class?: string
    error_contains?: string
    older_than_ms?: number
    cursor?: string | null
    limit: number
  }): Promise<Page<Job & { dlq_entry: string; failed_at: number }>> {
    const cursor = startAt(q.cursor)
    const queues = await this.physicalQueues(q.queue || undefined)
    const now = this.clock.now()
    const needle = q.error_contains?.toLowerCase()
    const maxFailedAt = q.older_than_ms === undefined ? '' : Math.max(0, now - q.older_than_ms)
    return this.scanPage(
      'dlq',
      queues,
      cursor,
      q.limit,
      [q.task_type ?? '', needle ?? '', maxFailedAt, q.priority ?? '', q.error_class ?? ''],
      (job, c) => {
        const e = c.extra ?? {}
        if (job.state !== 'failed') return null
        if (q.task_type && job.task_type !== q.task_type) return null
        if (q.priority && job.priority !== q.priority) return null
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

  /**
   * How many jobs a listing filter holds, where that is cheap (ADR 0033): the per-state counts of
   * `queue_stats` (index ZCARDs and stream lengths), per state asked and summed. Null when it is
   * not cheap (a task type: no index by type) or a count is unknown.
   */
  async listTotal(q: {
    queue?: string
    state?: JobState
    task_type?: string
  }): Promise<{ total: number; by_state: Partial<Record<JobState, number>> } | null> {
    if (q.task_type) return null
    const stats = await this.queuesStats(await this.physicalQueues(q.queue || undefined))
    const by: Partial<Record<JobState, number>> = {}
    let total = 0
    for (const st of q.state ? [q.state] : STATES) {
      let n = 0
      for (const s of stats) n += s.counts[st] ?? 0
      if (!Number.isFinite(n)) return null
      by[st] = n
      total += n
    }
    return { total, by_state: by }
  }

  /** Stats of many queues: one `queue_stats` call each, all in one round trip (per node). */
  queuesStats(queues: string[]): Promise<QueueStats[]> {
    const now = this.clock.now()
    return Promise.all(
      queues.map(async (queue): Promise<QueueStats> => {
        const [indexCounts, totalsFlat, delayed, dlq, paused, perPriority, created] =
          await this.run<QueueStatsReply>('queue_stats', queue, INDEXED_STATES, now)
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
          streams[pr] = { length, pending, lag: lag >= 0 ? lag : null, oldest_waiting_ms: oldestMs }
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
          created_index: createdAcross([created]),
        }
      }),
    )
  }

  /**
   * Completed and failed per minute over the last `minutes` minutes, oldest first, summed over
   * `queues` (one `throughput` call per queue, all in one round trip per node).
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

  /**
   * Dead letters counted by queue × task type × priority × error class, exact over the whole
   * DLQ: each queue's DLQ walked oldest first in pages of `dlqStatsPage` entries (one
   * `dlq_stats` call each, every queue's next page in one round trip per node), so no call holds
   * Redis long whatever the DLQ's size. Partitions are summed into their queue.
   */
  async dlqStats(
    queues: string[],
    filter: { task_type?: string; priority?: Priority } = {},
    // GET /stats/failures (ADR 0032): only the dead letters since a time (entry ids carry it), at
    // most `maxRounds` pages per queue (`truncated` then).
    walk: { since?: number; maxRounds?: number } = {},
  ): Promise<{ groups: DlqGroup[]; total: number; examined: number; rounds: number; truncated: boolean }> {
    const counts = new Map<string, DlqGroup>()
    let examined = 0
    let rounds = 0
    // Just before the first entry id of `since`: the walk starts after it.
    const start = walk.since === undefined ? '' : `${Math.max(walk.since - 1, 0)}-18446744073709551615`
    let walking = queues.map((queue) => ({ queue, after: start }))
    while (walking.length && rounds < (walk.maxRounds ?? Number.POSITIVE_INFINITY)) {
      rounds++
      const replies = await Promise.all(
        walking.map((w) =>
          this.run<[Array<string | number>, string, number]>('dlq_stats', w.queue, [
            w.after,
            this.dlqStatsPage,
            filter.task_type ?? '',
            filter.priority ?? '',
          ]),
        ),
      )
      walking = walking.flatMap((w, i) => {
        const [flat, last, n] = replies[i]!
        examined += n
        const queue = logicalQueue(w.queue)
        for (let k = 0; k + 4 < flat.length; k += 5) {
          const [task_type, priority, error_class] = [
            String(flat[k]),
            String(flat[k + 1]),
            String(flat[k + 2]),
          ]
          const key = [queue, task_type, priority, error_class].join('\0')
          const g = counts.get(key) ?? {
            queue,
            task_type,
            priority: priority as Priority,
            error_class,
            count: 0,
            newest: 0,
          }
          g.count += Number(flat[k + 3])
          g.newest = Math.max(g.newest, Number(flat[k + 4]))
          counts.set(key, g)
        }
        return last ? [{ queue: w.queue, after: last }] : []
      })
    }
    const key = (g: DlqGroup) => [g.queue, g.task_type, g.priority, g.error_class].join('\0')
    const groups = [...counts.values()].sort(
      (a, b) => b.count - a.count || (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0),
    )
    return {
      groups,
      total: groups.reduce((n, g) => n + g.count, 0),
      examined,
      rounds,
      truncated: walking.length > 0,
    }
  }

  /** DLQ entries one `dlq_stats` call examines (~6 ms of Redis at 500; tests lower it). */
  dlqStatsPage = 500

  /**
   * Raw chart history of one queue (`history`): completed and failed per interval and the
   * histogram snapshot string at each of the intervals + 1 boundaries ('' where none); with a
   * task type, its completed / failed totals at each boundary (-1 where none, ADR 0032).
   */
  historyOf(
    queue: string,
    fromMinute: number,
    stepMinutes: number,
    intervals: number,
    taskType = '',
  ): Promise<[number[], string[], number[]]> {
    return this.run('history', queue, [fromMinute, stepMinutes, intervals, taskType])
  }
}

/** One group of GET /dlq/stats. */
export interface DlqGroup {
  queue: string
  task_type: string
  priority: Priority
  error_class: string
  count: number
  /** When the group's newest dead letter failed (ms). */
  newest: number
}
