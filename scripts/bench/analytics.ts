/**
 * The analytics queries (ADR 0030) at a realistic size: a database of its own on the machine's
 * PostgreSQL (PG_ADMIN_URL, default postgres://postgres@127.0.0.1:5432/test; dropped after),
 * migrated as `dtq archiver` does, its day partitions created by the archiver's code, then ROWS
 * finished jobs spread over DAYS days (INSERT … SELECT generate_series: 20 task types with a
 * skewed mix, 4 queues, 50 workers, 90 % completed / 7 % failed / 3 % cancelled, 10 error
 * classes) and their attempts (one each, plus an earlier failed one for 10 % of them), ANALYZE.
 * Then each route's query, as the API runs it, over 1 day, 7 days (the default) and 30 days,
 * per hour and per day, with and without a task type filter: the median of 3 runs, in ms.
 *
 *   node scripts/bench/analytics.ts [--smoke]   (~2-4 min for 1M rows on 2 cores; --smoke: 20k rows)
 */
import { randomBytes } from 'node:crypto'
import { Analytics, type Bucket, DAY_MS, type Range, readPool } from '../../app/src/history/analytics.ts'
import { createPool, History, migrate, type Pool } from '../../app/src/history/db.ts'
import { arg, median, SMOKE } from './function-ab.ts'

const ROWS = SMOKE ? 20_000 : 1_000_000
const DAYS = 30
const RUNS = SMOKE ? 1 : 3
const ADMIN = process.env.PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const SCHEMA = 'bench'
/** --keep: leave the database for EXPLAIN (drop it yourself). */
const KEEP = process.argv.includes('--keep')
/** --reuse <database>: a database kept by --keep (same day), not seeded again. */
const REUSE = arg('--reuse')
/** The data ends at this (exclusive) midnight; ranges end there too. */
const END = Math.floor(Date.now() / DAY_MS) * DAY_MS

async function seed(pool: Pool): Promise<number> {
  const t0 = performance.now()
  const start = new Date(END - DAYS * DAY_MS).toISOString()
  await pool.query(`SET search_path = ${SCHEMA}`)
  // Random draws per row in a subquery (random() once per column use would differ).
  await pool.query(
    `INSERT INTO jobs (queue, job_id, task_type, state, priority, error_class, error, attempts,
       max_retries, worker, created_at, queued_at, started_at, finished_at, wait_ms, run_ms, job)
     SELECT 'q' || (i % 4), 'j' || i, 'type' || lpad(ty::text, 2, '0'), st, 'normal',
       CASE WHEN st = 'failed' THEN 'E' || (i % 10) END,
       CASE WHEN st = 'failed' THEN 'failure number ' || i END,
       CASE WHEN i % 10 = 0 THEN 2 ELSE 1 END, 3, CASE WHEN st <> 'cancelled' THEN 'w' || (i % 50) END,
       fin - make_interval(secs => (w + r) / 1000.0 + 1), fin - make_interval(secs => (w + r) / 1000.0),
       CASE WHEN st <> 'cancelled' THEN fin - make_interval(secs => r / 1000.0) END, fin,
       CASE WHEN st <> 'cancelled' THEN w END, CASE WHEN st <> 'cancelled' THEN r END, '{}'::jsonb
     FROM (
       SELECT i, timestamptz '${start}' + make_interval(secs => random() * ${DAYS * 86400}) AS fin,
         floor(20 * power(random(), 2))::int AS ty,
         CASE WHEN u < 0.90 THEN 'completed' WHEN u < 0.97 THEN 'failed' ELSE 'cancelled' END AS st,
         (power(random(), 3) * 5000)::bigint AS w, (random() * 200 * (1 + i % 20))::bigint AS r
       FROM (SELECT i, random() AS u FROM generate_series(1, ${ROWS}) i) g) x`,
  )
  await pool.query(
    `INSERT INTO attempts (queue, job_id, attempt, task_type, worker, started_at, ended_at, outcome,
       error_class, error, run_ms)
     SELECT queue, job_id, attempts, task_type, worker, started_at, finished_at, state, error_class,
       error, run_ms FROM jobs WHERE started_at IS NOT NULL
     UNION ALL
     SELECT queue, job_id, 1, task_type, 'w' || ((hashtext(job_id) & 1023) % 50), queued_at - interval '2 s',
       queued_at - interval '1 s', 'failed', 'E' || (hashtext(job_id) & 7), 'an earlier failure', 1000
     FROM jobs WHERE attempts = 2 AND queued_at - interval '1 s' >= timestamptz '${start}'`,
  )
  await pool.query('ANALYZE jobs')
  await pool.query('ANALYZE attempts')
  return performance.now() - t0
}

async function time(f: () => Promise<unknown>): Promise<number> {
  const ts: number[] = []
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now()
    await f()
    ts.push(performance.now() - t)
  }
  return median(ts)
}

async function main() {
  const name = REUSE ?? `dtq_bench_${randomBytes(5).toString('hex')}`
  const admin = createPool(ADMIN, 1)
  if (!REUSE) await admin.query(`CREATE DATABASE ${name}`)
  const u = new URL(ADMIN)
  u.pathname = `/${name}`
  const url = u.toString()
  const pool = createPool(url, 2)
  try {
    let seedMs = 0
    if (!REUSE) {
      await migrate(url, SCHEMA)
      const history = new History(pool, SCHEMA)
      await history.ensureDays(
        Array.from({ length: DAYS + 1 }, (_, d) => END - DAYS * DAY_MS + d * DAY_MS - 1),
      )
      seedMs = await seed(pool)
    }
    const counts = await pool.query(
      `SELECT (SELECT count(*) FROM ${SCHEMA}.jobs)::int AS jobs, (SELECT count(*) FROM ${SCHEMA}.attempts)::int AS attempts`,
    )
    console.log(
      `analytics bench: ${counts.rows[0].jobs} jobs, ${counts.rows[0].attempts} attempts over ${DAYS} days (seeded in ${(seedMs / 1000).toFixed(1)} s); median of ${RUNS} runs, ms`,
    )
    // The API's pool (its session settings), with a longer statement timeout.
    const reads = readPool(url, 120_000, 1)
    const a = new Analytics(reads, SCHEMA)
    const cases: Array<[string, number, Bucket, string | undefined]> = [
      ['1 day', 1, 'hour', undefined],
      ['7 days', 7, 'hour', undefined],
      ['7 days, one type', 7, 'hour', 'type03'],
      ['30 days', 30, 'hour', undefined],
      ['30 days', 30, 'day', undefined],
    ]
    console.log(
      `${'range'.padEnd(24)}${['throughput', 'latency', 'latency/type', 'errors', 'slowest', 'workers'].map((h) => h.padStart(13)).join('')}`,
    )
    for (const [label, days, bucket, type] of cases) {
      const r: Range = { from: END - days * DAY_MS, to: END, task_type: type }
      const ms = [
        await time(() => a.throughput(r, bucket)),
        await time(() => a.latency(r, bucket, false)),
        await time(() => a.latency(r, bucket, true)),
        await time(() => a.errors(r, 20)),
        await time(() => a.slowest(r, 20)),
        await time(() => a.workers(r, 50)),
      ]
      console.log(`${`${label}, ${bucket}`.padEnd(24)}${ms.map((m) => m.toFixed(0).padStart(13)).join('')}`)
    }
    await reads.end()
  } finally {
    await pool.end()
    if (KEEP || REUSE) console.log(`kept database ${name}`)
    else await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    await admin.end()
  }
}

await main()
