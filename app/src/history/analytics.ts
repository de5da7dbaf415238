/**
 * Analytics over the history (ADR 0030, on the schema of ADR 0027): throughput, failure rate,
 * wait and run percentiles, top error classes, slowest task types, per-worker counts. Every
 * query is bounded by a range predicate on the partition key (`finished_at` / `ended_at`, half
 * open [from, to)), so PostgreSQL scans only the day partitions the range touches; the range is
 * at most 90 days and at most 2000 buckets (checked by the caller, `checkRange`). Buckets are
 * UTC hours or days (`date_bin` from the epoch: the session's time zone plays no part); a
 * bucket is named by its start, in ms. Series carry the busiest task types and sum the rest as
 * `(other)`, so an answer's size is bounded whatever the number of types.
 */
import pg from 'pg'
import { DtqError } from '../errors.ts'

export const HOUR_MS = 3_600_000
export const DAY_MS = 86_400_000
export const BUCKET_MS = { hour: HOUR_MS, day: DAY_MS } as const
export type Bucket = keyof typeof BUCKET_MS
export const MAX_RANGE_DAYS = 90
export const MAX_BUCKETS = 2000
export const DEFAULT_RANGE_MS = 7 * DAY_MS
/** The task types a series shows by name; the rest are summed as OTHER. */
export const SERIES_TYPES = 10
export const OTHER = '(other)'

export interface Range {
  from: number
  to: number
  queue?: string
  task_type?: string
}

/** A range from the query: defaults (the last 7 days up to now), bounds, 400 when out of them. */
export function checkRange(
  q: { from?: number; to?: number; bucket?: Bucket; queue?: string; task_type?: string },
  now: number,
): Range & { bucket: Bucket } {
  const bucket = q.bucket ?? 'hour'
  const to = q.to ?? now
  const from = q.from ?? to - DEFAULT_RANGE_MS
  if (from >= to) throw new DtqError('VALIDATION', `from (${from}) must be before to (${to})`)
  if (to - from > MAX_RANGE_DAYS * DAY_MS)
    throw new DtqError('VALIDATION', `the range is longer than ${MAX_RANGE_DAYS} days: narrow from/to`)
  const buckets = Math.ceil(to / BUCKET_MS[bucket]) - Math.floor(from / BUCKET_MS[bucket])
  if (buckets > MAX_BUCKETS)
    throw new DtqError(
      'VALIDATION',
      `${buckets} ${bucket} buckets is more than ${MAX_BUCKETS}: use bucket=day or a shorter range`,
    )
  return { from, to, bucket, queue: q.queue, task_type: q.task_type }
}

const ident = (name: string) => `"${name.replaceAll('"', '""')}"`

/**
 * A pool for the API's reads: a statement that runs longer than `timeoutMs` is cancelled. Its
 * sessions run with plain index scans off: an aggregate grouped by task type or worker would
 * otherwise be planned as a merge of the day partitions' (task_type|worker, time) indexes, in
 * group order -- a random heap read per row, 6-8x slower over 30 days at 1M rows than scanning
 * the partitions and sorting or hashing (measured: docs/performance.md). Bitmap scans stay on,
 * so a filter (one task type, one queue) still uses its index.
 */
export function readPool(url: string, timeoutMs = 15_000, max = 4): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    options: '-c enable_indexscan=off',
    max,
    connectionTimeoutMillis: 5000,
    statement_timeout: timeoutMs,
    idleTimeoutMillis: 30_000,
    application_name: 'dtq-analytics',
  })
  pool.on('error', () => {})
  pool.on('connect', (c) => c.on('error', () => {}))
  return pool
}

export interface CountsRow {
  at: number
  task_type: string
  completed: number
  failed: number
  cancelled: number
}
export interface Percentiles {
  p50: number | null
  p95: number | null
  p99: number | null
}
export interface LatencyRow {
  at: number
  task_type: string | null
  count: number
  wait_ms: Percentiles
  run_ms: Percentiles
}
export interface ErrorClassRow {
  error_class: string
  count: number
  jobs: number
  first_seen: number
  last_seen: number
  example: string | null
  task_types: string[]
}
export interface SlowRow {
  task_type: string
  count: number
  run_ms: Percentiles & { avg: number | null; max: number | null }
}
export interface WorkerRow {
  worker: string
  completed: number
  failed: number
  cancelled: number
  run_p95_ms: number | null
  first_seen: number
  last_seen: number
}

const ms = (col: string) => `(extract(epoch FROM ${col}) * 1000)::float8`
const pct = (col: string) => `percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY ${col})`
const pcts = (a: (number | null)[] | null): Percentiles => ({
  p50: round(a?.[0]),
  p95: round(a?.[1]),
  p99: round(a?.[2]),
})
const round = (v: number | null | undefined) =>
  v === null || v === undefined ? null : Math.round(v * 10) / 10

export class Analytics {
  readonly pool: pg.Pool
  private readonly schema: string

  constructor(pool: pg.Pool, schema: string) {
    this.pool = pool
    this.schema = schema
  }

  private t(table: string): string {
    return `${ident(this.schema)}.${ident(table)}`
  }

  /** The range predicate (partition pruning) and the filters, on `time`; params from $1. */
  private where(r: Range, time: string, extra = ''): { sql: string; params: unknown[] } {
    const params: unknown[] = [new Date(r.from), new Date(r.to)]
    let sql = `${time} >= $1 AND ${time} < $2`
    if (r.queue) sql += ` AND queue = $${params.push(r.queue)}`
    if (r.task_type) sql += ` AND task_type = $${params.push(r.task_type)}`
    return { sql: sql + extra, params }
  }

  private async rows<T>(sql: string, params: unknown[]): Promise<T[]> {
    return (await this.pool.query(sql, params)).rows as T[]
  }

  /**
   * Jobs that ended per bucket and task type, by state: the SERIES_TYPES busiest types of the
   * range by name, the rest as OTHER. Only buckets with jobs are listed.
   */
  async throughput(r: Range, bucket: Bucket): Promise<CountsRow[]> {
    const w = this.where(r, 'finished_at')
    const b = w.params.push(`${BUCKET_MS[bucket] / 1000} seconds`)
    const n = w.params.push(SERIES_TYPES)
    return this.rows<CountsRow>(
      `WITH r AS MATERIALIZED (
         SELECT date_bin($${b}::interval, finished_at, timestamptz '1970-01-01 00:00:00+00') AS at,
                task_type, state
         FROM ${this.t('jobs')} WHERE ${w.sql}),
       top AS (SELECT task_type FROM r GROUP BY task_type ORDER BY count(*) DESC, task_type LIMIT $${n})
       SELECT ${ms('at')} AS at, t AS task_type,
         count(*) FILTER (WHERE state = 'completed')::int AS completed,
         count(*) FILTER (WHERE state = 'failed')::int AS failed,
         count(*) FILTER (WHERE state = 'cancelled')::int AS cancelled
       FROM (SELECT at, state, CASE WHEN task_type IN (SELECT task_type FROM top) THEN task_type
                                    ELSE '${OTHER}' END AS t FROM r) x
       GROUP BY at, t ORDER BY at, t`,
      w.params,
    )
  }

  /**
   * Wait (queued → started) and run (started → ended) percentiles of the jobs that ended, per
   * bucket; per task type too when `perType` (the busiest SERIES_TYPES, the rest as OTHER).
   * Jobs that never started (cancelled while waiting) have no wait or run and are not counted.
   */
  async latency(r: Range, bucket: Bucket, perType: boolean): Promise<LatencyRow[]> {
    const w = this.where(r, 'finished_at', ' AND run_ms IS NOT NULL')
    const b = w.params.push(`${BUCKET_MS[bucket] / 1000} seconds`)
    const n = w.params.push(perType ? SERIES_TYPES : 0)
    const rows = await this.rows<{
      at: number
      task_type: string | null
      count: number
      wait: number[] | null
      run: number[] | null
    }>(
      `WITH r AS MATERIALIZED (
         SELECT date_bin($${b}::interval, finished_at, timestamptz '1970-01-01 00:00:00+00') AS at,
                task_type, wait_ms, run_ms
         FROM ${this.t('jobs')} WHERE ${w.sql}),
       top AS (SELECT task_type FROM r GROUP BY task_type ORDER BY count(*) DESC, task_type LIMIT $${n})
       SELECT ${ms('at')} AS at, t AS task_type, count(*)::int AS count,
         ${pct('wait_ms')} AS wait, ${pct('run_ms')} AS run
       FROM (SELECT at, wait_ms, run_ms,
               CASE WHEN $${n}::int = 0 THEN NULL
                    WHEN task_type IN (SELECT task_type FROM top) THEN task_type
                    ELSE '${OTHER}' END AS t FROM r) x
       GROUP BY at, t ORDER BY at, t`,
      w.params,
    )
    return rows.map((x) => ({
      at: x.at,
      task_type: x.task_type,
      count: x.count,
      wait_ms: pcts(x.wait),
      run_ms: pcts(x.run),
    }))
  }

  /**
   * The error classes of failed attempts (each retry counts) in the range, most frequent
   * first: how many attempts and jobs, first and last seen in the range, the latest message,
   * the task types (up to 10).
   */
  async errors(r: Range, limit: number): Promise<ErrorClassRow[]> {
    const w = this.where(r, 'ended_at', " AND outcome = 'failed' AND error_class IS NOT NULL")
    const n = w.params.push(limit)
    const rows = await this.rows<ErrorClassRow & { first_seen: number; last_at: Date }>(
      `WITH top AS (
         SELECT error_class, count(*)::int AS count, count(DISTINCT (queue, job_id))::int AS jobs,
                min(ended_at) AS first_at, max(ended_at) AS last_at,
                (array_agg(DISTINCT task_type ORDER BY task_type))[1:10] AS task_types
         FROM ${this.t('attempts')} WHERE ${w.sql}
         GROUP BY error_class ORDER BY count(*) DESC, error_class LIMIT $${n})
       SELECT top.error_class, top.count, top.jobs, ${ms('top.first_at')} AS first_seen,
              ${ms('top.last_at')} AS last_seen, top.task_types, ex.error AS example
       FROM top LEFT JOIN LATERAL (
         SELECT error FROM ${this.t('attempts')} a
         WHERE a.error_class = top.error_class AND a.ended_at = top.last_at AND a.outcome = 'failed'
           AND a.ended_at >= $1 AND a.ended_at < $2
         LIMIT 1) ex ON true
       ORDER BY top.count DESC, top.error_class`,
      w.params,
    )
    return rows.map((x) => ({
      error_class: x.error_class,
      count: x.count,
      jobs: x.jobs,
      first_seen: x.first_seen,
      last_seen: x.last_seen,
      example: x.example === null ? null : x.example.slice(0, 1000),
      task_types: x.task_types,
    }))
  }

  /** Task types by their p95 run time (jobs that ran, in the range), slowest first. */
  async slowest(r: Range, limit: number): Promise<SlowRow[]> {
    const w = this.where(r, 'finished_at', ' AND run_ms IS NOT NULL')
    const n = w.params.push(limit)
    const rows = await this.rows<{
      task_type: string
      count: number
      run: number[]
      avg: number
      max: number
    }>(
      `SELECT * FROM (
         SELECT task_type, count(*)::int AS count, ${pct('run_ms')} AS run,
                avg(run_ms)::float8 AS avg, max(run_ms)::float8 AS max
         FROM ${this.t('jobs')} WHERE ${w.sql} GROUP BY task_type) s
       ORDER BY run[2] DESC, task_type LIMIT $${n}`,
      w.params,
    )
    return rows.map((x) => ({
      task_type: x.task_type,
      count: x.count,
      run_ms: { ...pcts(x.run), avg: round(x.avg), max: x.max },
    }))
  }

  /** Attempts each worker ended in the range, by outcome, busiest first. */
  async workers(r: Range, limit: number): Promise<WorkerRow[]> {
    const w = this.where(r, 'ended_at', ' AND worker IS NOT NULL')
    const n = w.params.push(limit)
    const rows = await this.rows<WorkerRow & { p95: number | null }>(
      `SELECT worker,
         count(*) FILTER (WHERE outcome = 'completed')::int AS completed,
         count(*) FILTER (WHERE outcome = 'failed')::int AS failed,
         count(*) FILTER (WHERE outcome = 'cancelled')::int AS cancelled,
         percentile_cont(0.95) WITHIN GROUP (ORDER BY run_ms) AS p95,
         ${ms('min(ended_at)')} AS first_seen, ${ms('max(ended_at)')} AS last_seen
       FROM ${this.t('attempts')} WHERE ${w.sql}
       GROUP BY worker ORDER BY count(*) DESC, worker LIMIT $${n}`,
      w.params,
    )
    return rows.map(({ p95, ...x }) => ({ ...x, run_p95_ms: round(p95) }))
  }
}

/** PostgreSQL's errors as the API's: the history's tables missing, the server away or slow. */
export function historyError(err: unknown): unknown {
  if (err instanceof DtqError) return err
  const code = (err as { code?: string }).code
  if (code === '42P01' || code === '3F000')
    return new DtqError(
      'HISTORY_UNAVAILABLE',
      "the history's tables are not there yet: `dtq archiver` creates them (its migrations) at its start",
    )
  if (code === '57014')
    return new DtqError('HISTORY_UNAVAILABLE', 'the query took too long: narrow the range or filter')
  return new DtqError('HISTORY_UNAVAILABLE', 'PostgreSQL (the history) is unreachable or failing')
}
