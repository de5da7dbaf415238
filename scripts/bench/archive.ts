/**
 * The history archiver's cost and speed (ADR 0027), on a private redis-server (AOF off, as the
 * bench) and a database of its own on the machine's PostgreSQL (PG_ADMIN_URL, default
 * postgres://postgres@127.0.0.1:5432/test; dropped after):
 *
 *   engine slowdown   one Worker (concurrency 100, a no-op handler) draining JOBS jobs enqueued
 *                     beforehand, in interleaved rounds of: archiving off (no DATABASE_URL: the
 *                     queue has no archive switch) and archiving on with a `dtq archiver` process
 *                     running beside it (writing while the engine runs at full speed). Jobs/s and
 *                     each round's on / off.
 *   archiver speed    in the "on" runs: jobs written to PostgreSQL per second, from the first
 *                     completion to the last row (the archiver keeps up, or says how far behind).
 *   Redis cost        µs of Redis CPU per job during the drain (INFO cpu), off and on: what
 *                     archiving adds to the shared resource; and by command (commandstats).
 *   cost when off     in the "off" runs, what archiving costs the hot path when nobody configured
 *                     it: the finishing calls' one EXISTS of the absent switch, from INFO
 *                     commandstats (calls and µs), against the fetch calls' µs.
 *
 *   node scripts/bench/archive.ts [--smoke] [--nice]   (~2 min; --smoke: seconds; --nice: the
 *   archiver process at nice 19, as it may run on a host it shares with the engine)
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:net'
import { type Config, Queue, Worker } from '@dtq/app'
import { createPool } from '../../app/src/history/db.ts'
import { fmt, median, SMOKE } from './function-ab.ts'
import { privateRedis } from './private-redis.ts'

const RUNS = SMOKE ? 1 : 3
const JOBS = SMOKE ? 2000 : 20_000
const ADMIN = process.env.PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const NICE = process.argv.includes('--nice')
const CLI = new URL('../../app/src/cli/main.ts', import.meta.url).pathname

interface Stats {
  calls: Record<string, number>
  usec: Record<string, number>
}
async function commandStats(q: Queue): Promise<Stats> {
  const out: Stats = { calls: {}, usec: {} }
  for (const m of (await q.redis.info('commandstats')).matchAll(/cmdstat_(\w+):calls=(\d+),usec=(\d+)/g)) {
    out.calls[m[1]!] = Number(m[2])
    out.usec[m[1]!] = Number(m[3])
  }
  return out
}

/** Redis's own CPU time so far (user + sys), µs: everything it did, script internals counted once. */
async function redisCpuUs(q: Queue): Promise<number> {
  const info = await q.redis.info('cpu')
  const v = (k: string) => Number(new RegExp(`${k}:([\\d.]+)`).exec(info)?.[1] ?? 0)
  return (v('used_cpu_user') + v('used_cpu_sys')) * 1e6
}

async function withDatabase<T>(fn: (url: string) => Promise<T>): Promise<T> {
  const name = `dtq_bench_${randomBytes(5).toString('hex')}`
  const admin = createPool(ADMIN, 1)
  await admin.query(`CREATE DATABASE ${name}`)
  const u = new URL(ADMIN)
  u.pathname = `/${name}`
  try {
    return await fn(u.toString())
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    await admin.end()
  }
}

async function rowsIn(url: string, schema: string): Promise<number> {
  const pool = createPool(url, 1)
  try {
    const r = await pool.query(`SELECT count(*)::int AS n FROM "${schema}".jobs`)
    return r.rows[0].n as number
  } catch {
    return 0 // not migrated yet
  } finally {
    await pool.end()
  }
}

interface RunResult {
  rate: number
  /** Redis CPU µs (INFO cpu, user + sys) per job over the drain: the archiver's share included when on. */
  redisUsPerJob: number
  /** On: Redis CPU µs per job from the start until every job is archived (all the archiving's work). */
  redisUsPerJobArchived?: number
  /** Redis µs per job by command. */
  byCommand: Record<string, number>
  archiveRate?: number
  existsPerFinish?: number
  existsUsPerCall?: number
  existsShare?: number
}

async function run(cfg: Config, i: number, dbUrl: string | null): Promise<RunResult> {
  const prefix = `ba${i}`
  const schema = `b${i}`
  const c = { ...cfg, keyPrefix: prefix }
  const q = await Queue.connect(c)
  await q.redis.flushall()
  await q.add('noop', {}) // the queue exists, so an archiver switches it on before the run
  let archiver: ReturnType<typeof spawn> | undefined
  if (dbUrl) {
    // --nice: the archiver at the lowest CPU priority (it is not latency-bound: it catches up).
    const cmd = NICE ? ['nice', '-n', '19', process.execPath] : [process.execPath]
    archiver = spawn(cmd[0]!, [...cmd.slice(1), CLI, 'archiver'], {
      env: {
        ...process.env,
        REDIS_URL: cfg.redisUrl,
        KEY_PREFIX: prefix,
        DATABASE_URL: dbUrl,
        HISTORY_SCHEMA: schema,
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    })
    while (!(await q.redis.exists(q.store.keys.archiveOn('default'))))
      await new Promise((r) => setTimeout(r, 20))
  }
  for (let k = 0; k < JOBS; k += 500)
    await q.addBulk(
      Array.from({ length: Math.min(500, JOBS - k) }, (_, j) => ({
        task_type: 'noop',
        payload: { k: k + j },
      })),
    )
  const stats = q.store.keys.stats('default')
  const w = new Worker(c, { builtins: false, janitorEveryMs: 3_600_000 })
  w.handle('noop', () => null)
  await q.redis.config('RESETSTAT')
  const cpu0 = await redisCpuUs(q)
  const t0 = performance.now()
  await w.start()
  for (;;) {
    if (Number(await q.redis.hget(stats, 'completed')) >= JOBS + 1) break
    await new Promise((r) => setTimeout(r, 5))
  }
  const secs = (performance.now() - t0) / 1000
  const s = await commandStats(q)
  const cpuUs = (await redisCpuUs(q)) - cpu0
  const out: RunResult = {
    byCommand: Object.fromEntries(Object.entries(s.usec).map(([k, v]) => [k, v / JOBS])),
    rate: JOBS / secs,
    redisUsPerJob: cpuUs / JOBS,
  }
  await w.close()
  if (dbUrl && archiver) {
    // Until every job is in PostgreSQL (the archive stream empty).
    while ((await q.redis.xlen(q.store.keys.archive('default'))) > 0)
      await new Promise((r) => setTimeout(r, 20))
    const done = (performance.now() - t0) / 1000
    out.archiveRate = (await rowsIn(dbUrl, schema)) / done
    out.redisUsPerJobArchived = ((await redisCpuUs(q)) - cpu0) / JOBS
    archiver.kill('SIGTERM')
    await new Promise((r) => archiver!.once('exit', r))
  } else {
    const fcalls = s.calls.fcall ?? 0
    out.existsPerFinish = (s.calls.exists ?? 0) / Math.max(1, fcalls)
    out.existsUsPerCall = (s.usec.exists ?? 0) / Math.max(1, s.calls.exists ?? 1)
    out.existsShare = (s.usec.exists ?? 0) / Math.max(1, s.usec.fcall ?? 1)
  }
  await q.close()
  return out
}

/** A port nothing listens on now (a random one could be another test's redis-server). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => resolve(port))
    })
  })
}

const { cfg, stop } = await privateRedis('ba', { WORKER_CONCURRENCY: '100' }, await freePort())
try {
  await withDatabase(async (dbUrl) => {
    const off: RunResult[] = []
    const on: RunResult[] = []
    const ratio: number[] = []
    let i = 0
    for (let r = 0; r < RUNS; r++) {
      // Alternate which goes first, so neither side always runs on a warmer machine.
      const first = r % 2 === 0
      const a = await run(cfg, i++, first ? null : dbUrl)
      const b = await run(cfg, i++, first ? dbUrl : null)
      const [x, y] = first ? [a, b] : [b, a]
      off.push(x)
      on.push(y)
      ratio.push(y.rate / x.rate)
    }
    console.log(
      `archive: one Worker (concurrency 100, no-op handler) draining ${JOBS} jobs; ${RUNS} round(s) of off / on (a dtq archiver process writing to PostgreSQL beside it${NICE ? ', nice 19' : ''})`,
    )
    console.log(`  engine, archiving off        ${fmt(off.map((x) => x.rate)).padEnd(22)} jobs/s`)
    console.log(`  engine, archiving on         ${fmt(on.map((x) => x.rate)).padEnd(22)} jobs/s`)
    console.log(
      `  on / off                     ${fmt(ratio, 3)}   (slowdown ${((1 - median(ratio)) * 100).toFixed(1)} %)`,
    )
    console.log(
      `  Redis µs per job             off ${fmt(
        off.map((x) => x.redisUsPerJob),
        1,
      )}, on ${fmt(
        on.map((x) => x.redisUsPerJob),
        1,
      )} (Redis's CPU, INFO cpu, during the drain: the archiver's share included)`,
    )
    // Where Redis's extra µs go when on: per command, the median of on minus off.
    const cmds = new Set([...off, ...on].flatMap((x) => Object.keys(x.byCommand)))
    const extra = [...cmds]
      .map(
        (c) =>
          [
            c,
            median(on.map((x) => x.byCommand[c] ?? 0)) - median(off.map((x) => x.byCommand[c] ?? 0)),
          ] as const,
      )
      .filter(([, d]) => Math.abs(d) >= 0.2)
      .sort((a, b) => b[1] - a[1])
    console.log(
      `  commandstats µs per job, on - off (a script's commands count in FCALL too): ${extra.map(([c, d]) => `${c} ${d.toFixed(1)}`).join(', ')}`,
    )
    console.log(
      `  Redis µs per job, on, until all archived: ${fmt(
        on.map((x) => x.redisUsPerJobArchived ?? 0),
        1,
      )} (vs off ${fmt(
        off.map((x) => x.redisUsPerJob),
        1,
      )}): archiving's whole cost on Redis`,
    )
    console.log(
      `  archiver into PostgreSQL     ${fmt(on.map((x) => x.archiveRate ?? 0)).padEnd(22)} jobs/s (first completion to last row)`,
    )
    console.log(
      `  off: EXISTS per FCALL ${fmt(
        off.map((x) => x.existsPerFinish ?? 0),
        2,
      )}, ${fmt(
        off.map((x) => x.existsUsPerCall ?? 0),
        2,
      )} µs each; all of them ${fmt(
        off.map((x) => (x.existsShare ?? 0) * 100),
        2,
      )} % of the FCALLs' µs`,
    )
  })
} finally {
  stop()
}
