/**
 * The history archive as a JobSource (ADR 0028, "Where the archive plugs in"): asked after Redis,
 * it answers a finished job Redis forgot after its retention, so replay, dry runs, timeline,
 * compare and GET /jobs/{id} work on it. A job is read through `job_latest` (its latest end) and
 * then `jobs` by its full key (finished_at, queue, job_id): one partition read, not all of them.
 * PostgreSQL failing (unreachable, no tables, a statement past SEARCH_TIMEOUT_MS) is a 503
 * HISTORY_UNAVAILABLE saying why -- never a 500, and never asked for a job Redis holds.
 */

import type { Config } from '../config.ts'
import { DtqError } from '../errors.ts'
import type { Job } from '../queue/job.ts'
import type { JobSource } from '../redis/job-source.ts'
import type { TimelineEntry } from '../redis/timeline.ts'
import { ArchiveSearch } from '../search/archive-query.ts'
import { historyError } from '../search/engine.ts'
import type { Pool } from './db.ts'

const ident = (name: string) => `"${name.replaceAll('"', '""')}"`
const likeEscape = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`)

/** An attempt's end as a timeline event (the job hash's names: attempt_failed, completed, cancelled). */
const ENDED: Record<string, string> = {
  failed: 'attempt_failed',
  completed: 'completed',
  cancelled: 'cancelled',
}

export class ArchiveJobSource implements JobSource {
  readonly name = 'archive'
  private readonly pool: Pool
  private readonly schema: string

  constructor(pool: Pool, schema: string) {
    this.pool = pool
    this.schema = schema
  }

  private t(table: string): string {
    return `${ident(this.schema)}.${ident(table)}`
  }

  private async query<R extends object>(sql: string, params: unknown[]): Promise<R[]> {
    try {
      return (await this.pool.query<R>(sql, params)).rows
    } catch (err) {
      throw new DtqError('HISTORY_UNAVAILABLE', `the archive could not be read: ${historyError(err)}`)
    }
  }

  /** The job's latest archived record, as the API serves it (`job` with payload and result put back). */
  async get(id: string, queue?: string): Promise<Job | null> {
    // A partitioned queue's jobs are archived under its partitions' names (`q~1`, …).
    const where = queue ? 'l.job_id = $1 AND (l.queue = $2 OR l.queue LIKE $3)' : 'l.job_id = $1'
    const params = queue ? [id, queue, `${likeEscape(queue)}~%`] : [id]
    const rows = await this.query<{ queue: string; job: object; payload: unknown; result: unknown }>(
      `SELECT j.queue, j.job, j.payload, j.result
       FROM ${this.t('job_latest')} l
       JOIN ${this.t('jobs')} j ON j.finished_at = l.finished_at AND j.queue = l.queue AND j.job_id = l.job_id
       WHERE ${where}
       LIMIT 11`,
      params,
    )
    if (rows.length > 1) {
      const queues = rows.map((r) => r.queue).sort()
      throw new DtqError(
        'AMBIGUOUS_JOB_ID',
        `job ${id} is archived in several queues (${queues.join(', ')}): give the queue`,
        { queues },
      )
    }
    const r = rows[0]
    return r ? ({ ...r.job, payload: r.payload, result: r.result } as Job) : null
  }

  /** The archive's copy of each attempt: its start and its end (failed, completed, cancelled). */
  async timeline(job: Job): Promise<TimelineEntry[]> {
    const rows = await this.query<{
      attempt: number
      worker: string | null
      started: number | null
      ended: number
      outcome: string
      error_class: string | null
      error: string | null
    }>(
      `SELECT attempt, worker, outcome, error_class, error,
              round(extract(epoch FROM started_at) * 1000)::float8 AS started,
              round(extract(epoch FROM ended_at) * 1000)::float8 AS ended
       FROM ${this.t('attempts')}
       WHERE queue = $1 AND job_id = $2 AND ended_at >= to_timestamp($3::float8 / 1000)
       ORDER BY attempt`,
      [job.queue, job.id, job.created_at],
    )
    const out: TimelineEntry[] = []
    for (const a of rows) {
      if (a.started !== null)
        out.push({
          at: a.started,
          event: 'attempt_started',
          source: 'archive',
          attempt: a.attempt,
          worker: a.worker,
        })
      out.push({
        at: a.ended,
        event: ENDED[a.outcome] ?? a.outcome,
        source: 'archive',
        attempt: a.attempt,
        worker: a.worker,
        ...(a.error ? { message: a.error } : {}),
        ...(a.error_class ? { detail: { class: a.error_class } } : {}),
      })
    }
    return out
  }
}

/** The process's archive sources: one pool per process (per Config), shared by its routes. */
const byConfig = new WeakMap<Config, { sources: JobSource[]; close(): Promise<void> }>()

/**
 * `[archive source]` when DATABASE_URL is set, `[]` otherwise (nothing changes), with its closer
 * (a no-op after the first). The pool is the search's (ArchiveSearch.pool: a 3 s connection
 * timeout and SEARCH_TIMEOUT_MS per statement), small: a lookup is one short statement.
 */
export function archiveSources(config: Config): { sources: JobSource[]; close(): Promise<void> } {
  const known = byConfig.get(config)
  if (known) return known
  let pool: Pool | null = config.databaseUrl
    ? ArchiveSearch.pool(config.databaseUrl, config.searchTimeoutMs, 2)
    : null
  const made = {
    sources: pool ? [new ArchiveJobSource(pool, config.historySchema)] : [],
    async close() {
      const p = pool
      pool = null
      byConfig.delete(config)
      await p?.end().catch(() => {})
    },
  }
  byConfig.set(config, made)
  return made
}

/**
 * GET /jobs/{id}'s fallback: a job Redis does not hold, from the archive, marked `source:
 * "archive"` and read-only (no logs; cancel, retry, edit… read Redis and answer 404). Null when
 * there is no archive or it does not hold the job.
 */
export function archivedLookup(sources: readonly JobSource[]) {
  return async (
    id: string,
    queue?: string,
  ): Promise<(Job & { logs: string[]; source: 'archive' }) | null> => {
    for (const s of sources) {
      const job = await s.get(id, queue)
      if (job) return { ...job, logs: [], source: 'archive' }
    }
    return null
  }
}
