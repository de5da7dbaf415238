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
/** The advisory lock that serialises partition DDL between archivers (the only advisory lock). */
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
    // The pointers to rows gone with their partitions, in slices (a short lock each).
    const before = `${cutoff.slice(0, 4)}-${cutoff.slice(4, 6)}-${cutoff.slice(6)} 00:00:00+00`
    for (;;) {
      const r = await this.pool.query(
        `DELETE FROM ${this.t('job_latest')} WHERE ctid IN (
           SELECT ctid FROM ${this.t('job_latest')} WHERE finished_at < $1 LIMIT 10000)`,
        [before],
      )
      if ((r.rowCount ?? 0) < 10000) break
    }
    return old.sort()
  }

  /**
   * Writes a batch in one transaction, idempotently (a replayed batch changes nothing):
   *   1. `job_latest` upserted for every job, in (queue, job_id) order: its row lock makes a
   *      second archiver writing the same job wait for this commit (no deadlock: same order);
   *      it keeps the latest end and returns the one before (`prev`);
   *   2. a job whose latest end is newer than this row's: its row is not written (a later
   *      end was archived already); one whose previous end is older: that row is deleted --
   *      by its exact key, so one partition is locked, not all;
   *   3. the rows upserted (ON CONFLICT on the partition key), the attempts added once.
   * No statement joins the partitioned tables, so a transaction locks only the partitions it
   * writes (a join would lock every partition and its indexes: ~1000 locks at 90 days).
   */
  async write(given: readonly JobRow[], attempts: readonly AttemptRow[]): Promise<void> {
    if (given.length === 0 && attempts.length === 0) return
    // One row per job (its latest end), in lock order.
    const one = new Map<string, JobRow>()
    for (const j of given) {
      const k = `${j.queue} ${j.job_id}`
      if ((one.get(k)?.finished_at ?? -1) < j.finished_at) one.set(k, j)
    }
    const jobs = [...one.values()].sort((a, b) => compare(a.queue, b.queue) || compare(a.job_id, b.job_id))
    await this.ensureDays([...jobs.map((j) => j.finished_at), ...attempts.map((a) => a.ended_at)])
    const c = await this.pool.connect()
    try {
      await c.query('BEGIN')
      let keep = jobs
      if (jobs.length) {
        const { rows } = await c.query<{ queue: string; job_id: string; latest: Date; prev: Date | null }>(
          `INSERT INTO ${this.t('job_latest')} AS l (queue, job_id, finished_at)
           SELECT x.queue, x.job_id, to_timestamp(x.fin / 1000.0)
           FROM unnest($1::text[], $2::text[], $3::float8[]) WITH ORDINALITY AS x(queue, job_id, fin, n)
           ORDER BY x.n
           ON CONFLICT (queue, job_id) DO UPDATE SET
             prev = CASE WHEN EXCLUDED.finished_at > l.finished_at THEN l.finished_at ELSE l.prev END,
             finished_at = GREATEST(l.finished_at, EXCLUDED.finished_at)
           RETURNING queue, job_id, finished_at AS latest, prev`,
          [jobs.map((j) => j.queue), jobs.map((j) => j.job_id), jobs.map((j) => j.finished_at)],
        )
        const latest = new Map(rows.map((r) => [`${r.queue} ${r.job_id}`, r]))
        keep = []
        for (const j of jobs) {
          const l = latest.get(`${j.queue} ${j.job_id}`)!
          if (l.latest.getTime() > j.finished_at) continue // a later end is archived
          keep.push(j)
          if (l.prev && l.prev.getTime() < j.finished_at)
            await c.query(
              `DELETE FROM ${this.t('jobs')} WHERE finished_at = $1 AND queue = $2 AND job_id = $3`,
              [l.prev, j.queue, j.job_id],
            )
        }
      }
      if (keep.length) await c.query(this.jobsSql(), [json(keep)])
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
    return `
INSERT INTO ${this.t('jobs')} (queue, job_id, task_type, state, priority, payload, result, error_class,
  error, attempts, max_retries, worker, partition_key, created_at, queued_at, started_at,
  finished_at, wait_ms, run_ms, flow_id, schedule, trace, idempotency_key, job)
SELECT queue, job_id, task_type, state, priority, payload, result, error_class, error,
  attempts, max_retries, worker, partition_key, to_timestamp(created_at / 1000.0),
  to_timestamp(queued_at / 1000.0), to_timestamp(started_at / 1000.0),
  to_timestamp(finished_at / 1000.0), started_at - queued_at, finished_at - started_at, flow_id,
  schedule, trace, idempotency_key, job
FROM jsonb_to_recordset($1::jsonb) AS x(
  queue text, job_id text, task_type text, state text, priority text, payload jsonb, result jsonb,
  error_class text, error text, attempts int, max_retries int, worker text, partition_key text,
  created_at bigint, queued_at bigint, started_at bigint, finished_at bigint, flow_id text,
  schedule text, trace text, idempotency_key text, job jsonb)
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

const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)

/** JSON for a jsonb parameter: PostgreSQL's jsonb cannot hold the NUL character (\u0000), dropped. */
function json(v: unknown): string {
  // An escape `\u0000` preceded by an even number of backslashes (an escaped backslash is not one).
  return JSON.stringify(v).replace(/(?<!\\)((?:\\\\)*)\\u0000/g, '$1')
}
