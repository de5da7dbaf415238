/**
 * Search latency over the archive (ADR 0029): ROWS archived jobs (default 1,000,000) loaded into
 * the history's own tables (the archiver's migrations, ~30 daily partitions) in a database of its
 * own on the machine's PostgreSQL (PG_ADMIN_URL, default postgres://postgres@127.0.0.1:5432/test;
 * dropped after), with realistic payloads (user, order, email, tags, region) and errors on the
 * failed ones; then the search engine itself (live part on a private redis-server, empty; the
 * archive dedupe's EXISTS included) answers a first page of 50, RUNS times per query kind, with
 * a different value each run:
 *
 *   payload field     where user.id=<id>               (GIN jsonb_path_ops, `payload @@ jsonpath`)
 *   payload, 2 fields where user.id=<id>, region=<r>
 *   free text, rare   q=<one user's email>             (GIN over the tsvector)
 *   free text, common q=timeout                        (~3 % of rows)
 *   type + time       task_type=<t>, a 1-day window    (btree (task_type, finished_at))
 *   contains          where email~<text>, default 7 days (no index: a bounded scan)
 *   export            NDJSON rows/s of a 100k-row export (formatting included, no HTTP)
 *
 * Every query but `contains` searches all 30 days (from given). p50 / p95 in ms.
 *
 *   node scripts/bench/search.ts [--rows N] [--runs N] [--smoke]   (--smoke: 10k rows, 10 runs)
 */
import { randomBytes } from 'node:crypto'
import { Queue } from '@dtq/app'
import { createPool, History, migrate, type Pool } from '../../app/src/history/db.ts'
import { SearchStore } from '../../app/src/redis/search-store.ts'
import { ArchiveSearch } from '../../app/src/search/archive-query.ts'
import { SearchEngine } from '../../app/src/search/engine.ts'
import { ndjsonRow } from '../../app/src/search/export.ts'
import { parseFilters, type RawFilters } from '../../app/src/search/filters.ts'
import { arg, SMOKE } from './function-ab.ts'
import { privateRedis } from './private-redis.ts'

const ROWS = Number(arg('--rows') ?? (SMOKE ? 10_000 : 1_000_000))
const RUNS = Number(arg('--runs') ?? (SMOKE ? 10 : 50))
const ADMIN = process.env.PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const DAY = 86_400_000
const DAYS = 30
const USERS = 50_000
const TYPES = [
  'send_email',
  'charge_card',
  'render_pdf',
  'sync_crm',
  'resize_image',
  'webhook',
  'report',
  'cleanup',
]
const SCHEMA = 'dtq'

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!
}

/** Loads ROWS rows spread over the last DAYS days, in slices of 100k (one statement each). */
async function load(pool: Pool, now: number): Promise<number> {
  const t0 = performance.now()
  const slice = 100_000
  for (let lo = 1; lo <= ROWS; lo += slice) {
    const hi = Math.min(ROWS, lo + slice - 1)
    await pool.query(
      `INSERT INTO ${SCHEMA}.jobs (queue, job_id, task_type, state, priority, payload, result, error_class,
         error, attempts, max_retries, worker, created_at, queued_at, started_at, finished_at, wait_ms,
         run_ms, job)
       SELECT queue, id, ttype, state, 'normal', payload, CASE WHEN state = 'completed' THEN jsonb_build_object('ok', true, 'ms', g % 900) END,
         CASE WHEN state = 'failed' THEN (ARRAY['ETIMEDOUT','ECONNREFUSED','ValidationError','HttpError'])[1 + g % 4] END,
         CASE WHEN state = 'failed' THEN (ARRAY['SMTP timeout talking to mx' || (g % 7), 'connection refused by 10.0.' || (g % 255) || '.9',
           'invalid order total ' || (g % 1000), 'HTTP 503 from api.partner.example'])[1 + g % 4] END,
         1 + (g % 3), 3, 'w-' || (g % 20), fin - interval '2 seconds', fin - interval '1 second',
         fin - interval '500 ms', fin, 500, 500,
         jsonb_build_object('id', id, 'queue', queue, 'task_type', ttype, 'state', state, 'priority', 'normal',
           'attempts', 1 + (g % 3), 'max_retries', 3,
           'created_at', (extract(epoch FROM fin) * 1000)::bigint - 2000,
           'finished_at', (extract(epoch FROM fin) * 1000)::bigint, 'worker', 'w-' || (g % 20))
       FROM (
         SELECT g, 'q' || (g % 4) AS queue, 'j' || g AS id, $3::text[] AS types,
           (ARRAY['send_email','charge_card','render_pdf','sync_crm','resize_image','webhook','report','cleanup'])[1 + (g * 7) % 8] AS ttype,
           CASE WHEN g % 100 < 90 THEN 'completed' WHEN g % 100 < 98 THEN 'failed' ELSE 'cancelled' END AS state,
           to_timestamp(round($4::float8 - (g::float8 / $5::float8) * $6::float8) / 1000) AS fin,
           jsonb_build_object(
             'user', jsonb_build_object('id', (g::bigint * 7919) % ${USERS}, 'plan', (ARRAY['free','pro','team'])[1 + g % 3]),
             'order', jsonb_build_object('id', 'o-' || g, 'total', round(((g * 37) % 50000) / 100.0, 2),
               'items', jsonb_build_array(jsonb_build_object('sku', 'sku-' || (g % 500), 'qty', 1 + g % 4))),
             'email', 'user' || ((g::bigint * 7919) % ${USERS}) || '@example.com',
             'region', (ARRAY['eu-west','us-east','ap-south'])[1 + g % 3],
             'tags', jsonb_build_array('t' || (g % 10), 't' || (g % 13))) AS payload
         FROM generate_series($1::int, $2::int) g) s`,
      [lo, hi, TYPES, now, ROWS, DAYS * DAY],
    )
  }
  await pool.query(`ANALYZE ${SCHEMA}.jobs`)
  return (performance.now() - t0) / 1000
}

async function main() {
  const name = `dtq_bench_${randomBytes(5).toString('hex')}`
  const admin = createPool(ADMIN, 1)
  await admin.query(`CREATE DATABASE ${name}`)
  const u = new URL(ADMIN)
  u.pathname = `/${name}`
  const url = u.toString()
  const redis = await privateRedis(`b${randomBytes(3).toString('hex')}`)
  const queue = await Queue.connect(redis.cfg)
  let pool: Pool | undefined
  let searchPool: Pool | undefined
  try {
    await migrate(url, SCHEMA)
    pool = createPool(url)
    const now = Date.now()
    const history = new History(pool, SCHEMA)
    await history.ensureDays(Array.from({ length: DAYS + 2 }, (_, i) => now - i * DAY))
    const loadS = await load(pool, now)
    const size = (
      await pool.query(`SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) AS s
      FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
      WHERE p.relname = 'jobs'`)
    ).rows[0].s as string
    console.log(
      `loaded ${ROWS} rows over ${DAYS} days in ${loadS.toFixed(1)} s (${Math.round(ROWS / loadS)} rows/s), jobs tables + indexes ${size}`,
    )

    searchPool = ArchiveSearch.pool(url, 60_000)
    const engine = new SearchEngine(
      queue,
      new SearchStore(queue.redis, redis.cfg.keyPrefix),
      new ArchiveSearch(searchPool, SCHEMA),
      {
        liveScan: 10_000,
        defaultDays: 7,
        now: () => Date.now(),
      },
    )
    const from = now - DAYS * DAY - DAY
    const rnd = (n: number) => Math.floor(Math.random() * n)
    const kinds: Array<[string, () => RawFilters]> = [
      ['payload field (user.id = v)', () => ({ from, where: [`user.id=${rnd(USERS)}`] })],
      [
        'payload, 2 fields (user.id, region)',
        () => ({ from, where: [`user.id=${rnd(USERS)}`, 'region=eu-west'] }),
      ],
      ['free text, rare (an email)', () => ({ from, q: `user${rnd(USERS)}@example.com` })],
      ['free text, common (timeout, ~3 %)', () => ({ from, q: 'timeout' })],
      [
        'type + 1-day window',
        () => {
          const to = now - rnd(DAYS - 1) * DAY
          return { task_type: TYPES[rnd(TYPES.length)], from: to - DAY, to }
        },
      ],
      ['contains (email~text), default 7 days', () => ({ where: [`email~user${rnd(USERS)}@`] })],
    ]
    console.log(`\nfirst page of 50, ${RUNS} runs each (ms):`)
    console.log('| query | p50 | p95 | max | rows on the page (median) |')
    console.log('|---|---|---|---|---|')
    for (const [label, make] of kinds) {
      const ms: number[] = []
      const found: number[] = []
      for (let i = 0; i < RUNS; i++) {
        const f = parseFilters(make())
        const t = performance.now()
        const page = await engine.page(f, undefined, 50)
        ms.push(performance.now() - t)
        found.push(page.items.length)
        if (page.history !== 'enabled') throw new Error(`history ${page.history}: ${page.history_error}`)
      }
      console.log(
        `| ${label} | ${pct(ms, 50).toFixed(1)} | ${pct(ms, 95).toFixed(1)} | ${Math.max(...ms).toFixed(1)} | ${pct(found, 50)} |`,
      )
    }

    // Export: the engine's merged stream, formatted, as the route streams it (no HTTP).
    const n = Math.min(100_000, ROWS)
    const t = performance.now()
    let rows = 0
    let bytes = 0
    const rss0 = process.memoryUsage().rss
    let rssPeak = rss0
    for await (const x of engine.merged(
      parseFilters({ from }),
      engine.range(parseFilters({ from })),
      null,
      [],
      { batch: 1000, budget: Number.POSITIVE_INFINITY },
    )) {
      if (x.source === 'stop') break
      bytes += ndjsonRow(x).length
      if (++rows % 10_000 === 0) rssPeak = Math.max(rssPeak, process.memoryUsage().rss)
      if (rows >= n) break
    }
    const s = (performance.now() - t) / 1000
    console.log(
      `\nexport: ${rows} rows (${(bytes / 1e6).toFixed(0)} MB NDJSON) in ${s.toFixed(1)} s = ${Math.round(rows / s)} rows/s; RSS growth ${((rssPeak - rss0) / 1e6).toFixed(0)} MB`,
    )
  } finally {
    await searchPool?.end()
    await pool?.end()
    await queue.close()
    redis.stop()
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    await admin.end()
  }
}

await main()
