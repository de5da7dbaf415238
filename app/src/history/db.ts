/**
 * The history's PostgreSQL side (ADR 0027): migrations (node-pg-migrate, SQL files beside this
 * one), the day partitions, and the batched idempotent write. No ORM: a few statements.
 */
import { fileURLToPath } from 'node:url'
import { runner } from 'node-pg-migrate'
import pg from 'pg'
import type { AttemptRow, JobRow } from './rows.ts'

export const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url))
const DAY_MS = 86_400_000
/** The advisory lock that serialises partition DDL between archivers. */
const PARTITION_LOCK = 0x647471_0027

export type Pool = pg.Pool

export function createPool(url: string, max = 4): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max, connectionTimeoutMillis: 5000 })
  // A client's error (the server went away) must not kill the process: its query fails instead.
  pool.on('error', () => {})
  pool.on('connect', (client) => client.on('error', () => {}))
  return pool
}

const ident = (name: string) => `"${name.replaceAll('"', '""')}"`

/** Runs the migrations not yet applied (several archivers starting at once wait for each other). */
export async function migrate(url: string, schema: string): Promise<void> {
  // Our own client, so a connection cut mid-run is an error of this call, not of the process.
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 })
  client.on('error', () => {})
  await client.connect()
  try {
    await migrateWith(client, schema)
  } finally {
    await client.end().catch(() => {})
  }
}

async function migrateWith(dbClient: pg.Client, schema: string): Promise<void> {
  await runner({
    dbClient,
    dir: MIGRATIONS_DIR,
    direction: 'up',
    migrationsTable: 'dtq_migrations',
    schema,
    createSchema: true,
    checkOrder: true,
    advisoryLockMode: 'wait',
    log: () => {},
  })
}

/** A day partition's name and bounds: `jobs_20261130` holds [2026-11-30, 2026-12-01) UTC. */
export function dayOf(ms: number): string {
  return new Date(Math.floor(ms / DAY_MS) * DAY_MS).toISOString().slice(0, 10).replaceAll('-', '')
}

export class History {
  readonly pool: pg.Pool
  readonly schema: string
  /** Day partitions known to exist (both tables), so a batch creates only new ones. */
  private readonly days = new Set<string>()

  constructor(pool: pg.Pool, schema: string) {
    this.pool = pool
    this.schema = schema
  }

  private t(table: string): string {
    return `${ident(this.schema)}.${ident(table)}`
  }

  /** Creates the day partitions of both tables for these times (idempotent, serialised). */
  async ensureDays(times: Iterable<number>): Promise<void> {
    const need = [...new Set([...times].map(dayOf))].filter((d) => !this.days.has(d))
    if (need.length === 0) return
    const c = await this.pool.connect()
    try {
      await c.query('BEGIN')
      await c.query('SELECT pg_advisory_xact_lock($1)', [PARTITION_LOCK])
      for (const d of need) {
        const from = `${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6)}`
        const to = new Date(Date.parse(`${from}T00:00:00Z`) + DAY_MS).toISOString().slice(0, 10)
        for (const table of ['jobs', 'attempts']) {
          await c.query(
            `CREATE TABLE IF NOT EXISTS ${this.t(`${table}_${d}`)} PARTITION OF ${this.t(table)}
             FOR VALUES FROM ('${from} 00:00:00+00') TO ('${to} 00:00:00+00')`,
          )
        }
      }
      await c.query('COMMIT')
      for (const d of need) this.days.add(d)
    } catch (err) {
      await c.query('ROLLBACK').catch(() => {})
      throw err
    } finally {
      c.release()
    }
  }

  /** Drops the day partitions that ended more than `days` days before `now`. Returns their names. */
  async dropOlderThan(days: number, now: number): Promise<string[]> {
    const cutoff = dayOf(now - days * DAY_MS)
    const { rows } = await this.pool.query<{ name: string }>(
      `SELECT c.relname AS name FROM pg_inherits i
         JOIN pg_class c ON c.oid = i.inhrelid
         JOIN pg_class p ON p.oid = i.inhparent
         JOIN pg_namespace n ON n.oid = p.relnamespace
       WHERE n.nspname = $1 AND p.relname IN ('jobs', 'attempts')`,
      [this.schema],
    )
    const old = rows.map((r) => r.name).filter((n) => /_\d{8}$/.test(n) && n.slice(-8) < cutoff)
    for (const name of old) {
      await this.pool.query(`DROP TABLE IF EXISTS ${this.t(name)}`)
      this.days.delete(name.slice(-8))
    }
    return old.sort()
  }

  /**
   * Writes a batch in one transaction: each job's row replaces an older end of the same job
   * (never a newer one), attempts are added once. Idempotent: a replay of the same batch changes
   * nothing. Concurrent writers of the same job are serialised by an advisory lock per job.
   */
  async write(jobs: readonly JobRow[], attempts: readonly AttemptRow[]): Promise<void> {
    if (jobs.length === 0 && attempts.length === 0) return
    await this.ensureDays([...jobs.map((j) => j.finished_at), ...attempts.map((a) => a.ended_at)])
    const c = await this.pool.connect()
    try {
      await c.query('BEGIN')
      await c.query(
        `SELECT pg_advisory_xact_lock(h) FROM
           (SELECT DISTINCT hashtextextended(k, 27) AS h FROM unnest($1::text[]) AS k ORDER BY 1) s`,
        [jobs.map((j) => `${j.queue} ${j.job_id}`)],
      )
      if (jobs.length) await c.query(this.jobsSql(), [json(jobs)])
      if (attempts.length) await c.query(this.attemptsSql(), [json(attempts)])
      await c.query('COMMIT')
    } catch (err) {
      await c.query('ROLLBACK').catch(() => {})
      throw err
    } finally {
      c.release()
    }
  }

  private jobsSql(): string {
    const jobs = this.t('jobs')
    return `
WITH r AS (
  SELECT x.*, to_timestamp(x.finished_at / 1000.0) AS fin
  FROM jsonb_to_recordset($1::jsonb) AS x(
    queue text, job_id text, task_type text, state text, priority text, payload jsonb, result jsonb,
    error_class text, error text, attempts int, max_retries int, worker text, partition_key text,
    created_at bigint, queued_at bigint, started_at bigint, finished_at bigint, flow_id text,
    schedule text, trace text, idempotency_key text, job jsonb)
), older AS (
  DELETE FROM ${jobs} j USING r
  WHERE j.queue = r.queue AND j.job_id = r.job_id AND j.finished_at < r.fin
)
INSERT INTO ${jobs} (queue, job_id, task_type, state, priority, payload, result, error_class, error,
  attempts, max_retries, worker, partition_key, created_at, queued_at, started_at, finished_at,
  wait_ms, run_ms, flow_id, schedule, trace, idempotency_key, job)
SELECT queue, job_id, task_type, state, priority, payload, result, error_class, error,
  attempts, max_retries, worker, partition_key, to_timestamp(created_at / 1000.0),
  to_timestamp(queued_at / 1000.0), to_timestamp(started_at / 1000.0), fin,
  started_at - queued_at, finished_at - started_at, flow_id, schedule, trace, idempotency_key, job
FROM r
WHERE NOT EXISTS (
  SELECT 1 FROM ${jobs} j WHERE j.queue = r.queue AND j.job_id = r.job_id AND j.finished_at > r.fin)
ON CONFLICT (finished_at, queue, job_id) DO UPDATE SET
  task_type = EXCLUDED.task_type, state = EXCLUDED.state, priority = EXCLUDED.priority,
  payload = EXCLUDED.payload, result = EXCLUDED.result, error_class = EXCLUDED.error_class,
  error = EXCLUDED.error, attempts = EXCLUDED.attempts, max_retries = EXCLUDED.max_retries,
  worker = EXCLUDED.worker, partition_key = EXCLUDED.partition_key, created_at = EXCLUDED.created_at,
  queued_at = EXCLUDED.queued_at, started_at = EXCLUDED.started_at, wait_ms = EXCLUDED.wait_ms,
  run_ms = EXCLUDED.run_ms, flow_id = EXCLUDED.flow_id, schedule = EXCLUDED.schedule,
  trace = EXCLUDED.trace, idempotency_key = EXCLUDED.idempotency_key, job = EXCLUDED.job`
  }

  private attemptsSql(): string {
    return `
INSERT INTO ${this.t('attempts')} (queue, job_id, attempt, task_type, worker, started_at, ended_at,
  outcome, error_class, error, run_ms)
SELECT queue, job_id, attempt, task_type, worker, to_timestamp(started_at / 1000.0),
  to_timestamp(ended_at / 1000.0), outcome, error_class, error, ended_at - started_at
FROM jsonb_to_recordset($1::jsonb) AS x(queue text, job_id text, attempt int, task_type text,
  worker text, started_at bigint, ended_at bigint, outcome text, error_class text, error text)
ON CONFLICT DO NOTHING`
  }
}

/** JSON for a jsonb parameter: PostgreSQL's jsonb cannot hold the NUL character (\u0000), dropped. */
function json(v: unknown): string {
  // An escape `\u0000` preceded by an even number of backslashes (an escaped backslash is not one).
  return JSON.stringify(v).replace(/(?<!\\)((?:\\\\)*)\\u0000/g, '$1')
}
