/**
 * The archive's side of a search (ADR 0029): one keyset-paginated SELECT over the history's
 * `jobs` table (ADR 0027) per batch -- no cursor held open, no transaction: a batch is one
 * statement, bounded by its LIMIT and by the pool's statement timeout.
 *
 * Indexes used: the GIN `jsonb_path_ops` on payload for `where path=value` (`payload @@ jsonpath`),
 * the GIN on `search` for free text (websearch_to_tsquery), the btree (column, finished_at) ones
 * for queue / type / state / worker, and the partitions' bounds for the time range (every query
 * has one: see SearchEngine).
 */
import pg from 'pg'
import type { PathStep, SearchFilters, SearchKey } from './filters.ts'

export const FINISHED: readonly string[] = ['completed', 'failed', 'cancelled']

export interface ArchiveRow {
  queue: string
  job_id: string
  at: number
  job: unknown
}

const ident = (name: string) => `"${name.replaceAll('"', '""')}"`

/** A jsonpath literal for `path == value`: keys quoted, the value as JSON (a jsonpath literal too). */
export function jsonpathEq(path: readonly PathStep[], value: unknown): string {
  const steps = path.map((s) => (typeof s === 'number' ? `[${s}]` : `.${JSON.stringify(s)}`)).join('')
  return `$${steps} == ${JSON.stringify(value)}`
}

const likeEscape = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`)

/** The WHERE clause and its parameters for `f` over [from, to), after the position `after`. */
export function whereSql(f: SearchFilters, range: { from: number; to: number }, after: SearchKey | null) {
  const params: unknown[] = []
  const p = (v: unknown) => {
    params.push(v)
    return `$${params.length}`
  }
  const and: string[] = [
    `finished_at >= to_timestamp(${p(range.from)}::float8 / 1000)`,
    `finished_at < to_timestamp(${p(range.to)}::float8 / 1000)`,
  ]
  // A partitioned queue's jobs are archived under its partitions' names (`q~1`, `q~2.1`, …).
  if (f.queue) and.push(`(queue = ${p(f.queue)} OR queue LIKE ${p(`${likeEscape(f.queue)}~%`)})`)
  if (f.task_type) and.push(`task_type = ${p(f.task_type)}`)
  if (f.state) and.push(`state = ${p(f.state)}`)
  if (f.worker) and.push(`worker = ${p(f.worker)}`)
  if (f.q) and.push(`search @@ websearch_to_tsquery('simple', ${p(f.q)})`)
  for (const w of f.where) {
    if (w.op === 'eq') and.push(`payload @@ ${p(jsonpathEq(w.path, w.value))}::jsonpath`)
    else
      and.push(
        `(payload #>> ${p(w.path.map(String))}::text[]) ILIKE ${p(`%${likeEscape(String(w.value))}%`)}`,
      )
  }
  if (after) {
    // Keyset: strictly after the position in (time desc, queue desc, id desc), bytewise text order.
    // The plain `<=` is what the index scan starts from (the OR alone would be a filter).
    const at = `to_timestamp(${p(after.at)}::float8 / 1000)`
    and.push(`finished_at <= ${at}`)
    and.push(
      `(finished_at < ${at} OR (finished_at = ${at} AND (queue COLLATE "C" < ${p(after.queue)} OR (queue = ${p(after.queue)} AND job_id COLLATE "C" < ${p(after.id)}))))`,
    )
  }
  return { sql: and.join('\n  AND '), params }
}

export class ArchiveSearch {
  readonly pool: pg.Pool
  private readonly table: string

  constructor(pool: pg.Pool, schema: string) {
    this.pool = pool
    this.table = `${ident(schema)}.${ident('jobs')}`
  }

  /** A pool for searches: each statement stops at `timeoutMs` (a 503 / "unavailable", not a hang). */
  static pool(url: string, timeoutMs: number, max = 4): pg.Pool {
    const pool = new pg.Pool({
      connectionString: url,
      max,
      connectionTimeoutMillis: 3000,
      statement_timeout: timeoutMs,
      idleTimeoutMillis: 30_000,
    })
    pool.on('error', () => {})
    pool.on('connect', (c) => c.on('error', () => {}))
    return pool
  }

  /** Up to `n` rows matching `f` in [from, to), in the search's order, after `after`. */
  async batch(
    f: SearchFilters,
    range: { from: number; to: number },
    after: SearchKey | null,
    n: number,
  ): Promise<ArchiveRow[]> {
    const w = whereSql(f, range, after)
    // `job` is the record without payload and result (their own columns: ADR 0027), put back here.
    const { rows } = await this.pool.query<ArchiveRow & { payload: unknown; result: unknown }>(
      `SELECT queue, job_id, round(extract(epoch FROM finished_at) * 1000)::float8 AS at, job, payload, result
       FROM ${this.table}
       WHERE ${w.sql}
       ORDER BY finished_at DESC, queue COLLATE "C" DESC, job_id COLLATE "C" DESC
       LIMIT ${Math.max(1, Math.floor(n))}`,
      w.params,
    )
    return rows.map(({ payload, result, job, ...r }) => ({
      ...r,
      job: { ...(job as object), payload, result },
    }))
  }
}
