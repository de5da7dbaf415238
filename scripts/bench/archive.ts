/**
 * The history archiver's cost and speed (ADR 0027, 0031), on a private redis-server (AOF off, as
 * the bench) and a database of its own on the machine's PostgreSQL (PG_ADMIN_URL, default
 * postgres://postgres@127.0.0.1:5432/test; dropped after). One Worker (concurrency 100, a no-op
 * handler) drains JOBS jobs enqueued beforehand, in interleaved rounds (the order rotates) of:
 *
 *   off    no archiving (no DATABASE_URL: the queue has no archive switch);
 *   on     a `dtq archiver` process writing to PostgreSQL beside it, from the start (writing
 *          while the engine runs at full speed);
 *   held   archiving on (the switch set by the archiver) but the archiver stopped (SIGSTOP)
 *          during the drain and let go after it: the engine's hot-path share alone, then the
 *          archiver's catch-up measured on its own.
 *
 * Printed: jobs/s and each round's on / off (the target: a slowdown under 10 %, with a
 * verdict); Redis CPU µs per job (INFO cpu) during the drain and until every job is archived;
 * the worker's CPU µs per job (this process: the Worker runs here); the engine's cost per job =
 * Redis until archived + the worker, on / off (what the engine pays when the archiver and
 * PostgreSQL run elsewhere, with a verdict); the archiver's and its PostgreSQL backends' CPU per
 * job; Redis µs by command, on minus off; the archiver's jobs/s into PostgreSQL; and, off, what
 * the absent switch costs (the finishing calls' one EXISTS).
 *
 *   node scripts/bench/archive.ts [--smoke] [--nice] [--pin] [--runs N] [--jobs N]
 *   (~3 min; --smoke: seconds; --nice: the archiver at nice 19; --pin: Redis and this process
 *   pinned to CPU 0, the archiver and its PostgreSQL backends to CPU 1 -- the archiver's CPU
 *   kept off the engine's core, as on hosts of their own)
 */
import { execFileSync, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { type Config, Queue, Worker } from '@dtq/app'
import { Redis } from 'ioredis'
import { createPool } from '../../app/src/history/db.ts'
import { arg, fmt, median, SMOKE } from './function-ab.ts'
import { type Db, withDatabase } from './pg.ts'
import { privateRedis } from './private-redis.ts'

const RUNS = Number(arg('--runs') ?? (SMOKE ? 1 : 3))
const JOBS = Number(arg('--jobs') ?? (SMOKE ? 2000 : 20_000))
const NICE = process.argv.includes('--nice')
const PIN = process.argv.includes('--pin')
const CLI = new URL('../../app/src/cli/main.ts', import.meta.url).pathname
const TARGET = 0.1
/** Redis's CPU when idle (serverCron, clients' polling), µs per second: taken off every figure. */
let IDLE_US_PER_S = 0

/** A process's CPU time so far (user + sys, all its threads), µs; 0 when it is gone. */
function procCpuUs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return ((Number(f[11]) + Number(f[12])) * 1e6) / 100 // utime + stime, in clock ticks of 10 ms
  } catch {
    return 0
  }
}

/** Pins a process (all its threads) to a CPU (--pin). */
function pin(pid: number, cpu: number): void {
  try {
    execFileSync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)], { stdio: 'ignore' })
  } catch {
    // gone already
  }
}

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

type Mode = 'off' | 'on' | 'held'

interface RunResult {
  rate: number
  /** Redis CPU µs (INFO cpu, user + sys) per job over the drain: the archiver's share included when on. */
  redisUsPerJob: number
  /** Archiving: Redis CPU µs per job from the start until every job is archived (all the archiving's work). */
  redisUsPerJobArchived?: number
  /** This process's CPU µs per job over the drain: the Worker (and this script's polling). */
  workerUsPerJob: number
  /** The archiver process's CPU µs per job, and its PostgreSQL backends'. */
  archiverUsPerJob?: number
  pgUsPerJob?: number
  /** Redis µs per job by command, over the drain. */
  byCommand: Record<string, number>
  /** Held: Redis µs per job by command during the archiver's catch-up alone. */
  catchUpByCommand?: Record<string, number>
  /** Held: Redis CPU µs per job during the archiver's catch-up alone. */
  catchUpRedisUs?: number
  archiveRate?: number
  existsPerFinish?: number
  existsUsPerCall?: number
  existsShare?: number
}

/** PostgreSQL backends connected to the database (the archiver's pool). */
async function backends(admin: ReturnType<typeof createPool>, db: string): Promise<number[]> {
  const r = await admin.query(
    'SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
    [db],
  )
  return r.rows.map((x) => x.pid as number)
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function run(cfg: Config, i: number, mode: Mode, db: Db): Promise<RunResult> {
  const prefix = `ba${i}`
  const schema = `b${i}`
  const c = { ...cfg, keyPrefix: prefix }
  const q = await Queue.connect(c)
  await q.redis.flushall()
  await q.add('noop', {}) // the queue exists, so an archiver switches it on before the run
  let archiver: ReturnType<typeof spawn> | undefined
  const pgPids = new Set<number>()
  let pinning: ReturnType<typeof setInterval> | undefined
  if (mode !== 'off') {
    // --nice: the archiver at the lowest CPU priority (it is not latency-bound: it catches up).
    const cmd = [
      ...(PIN ? ['taskset', '-c', '1'] : []),
      ...(NICE ? ['nice', '-n', '19'] : []),
      process.execPath,
    ]
    archiver = spawn(cmd[0]!, [...cmd.slice(1), CLI, 'archiver'], {
      env: {
        ...process.env,
        REDIS_URL: cfg.redisUrl,
        KEY_PREFIX: prefix,
        DATABASE_URL: db.url,
        HISTORY_SCHEMA: schema,
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    })
    while (!(await q.redis.exists(q.store.keys.archiveOn('default')))) await sleep(20)
    // Its PostgreSQL backends, as they connect (pinned to CPU 1 with --pin).
    const watch = async () => {
      for (const pid of await backends(db.admin, db.name)) {
        if (!pgPids.has(pid) && PIN) pin(pid, 1)
        pgPids.add(pid)
      }
    }
    // (every second unless pinning: the query is CPU of this process, counted as the worker's)
    pinning = setInterval(() => void watch().catch(() => {}), PIN ? 200 : 1000)
    if (mode === 'held') {
      await sleep(500) // migrated, its first rounds done
      process.kill(archiver.pid!, 'SIGSTOP')
    }
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
  const arch0 = archiver ? procCpuUs(archiver.pid!) : 0
  const me0 = process.cpuUsage()
  const t0 = performance.now()
  await w.start()
  for (;;) {
    if (Number(await q.redis.hget(stats, 'completed')) >= JOBS + 1) break
    await sleep(5)
  }
  const secs = (performance.now() - t0) / 1000
  const me = process.cpuUsage(me0)
  const s = await commandStats(q)
  const cpuUs = (await redisCpuUs(q)) - cpu0 - IDLE_US_PER_S * secs
  const out: RunResult = {
    byCommand: Object.fromEntries(Object.entries(s.usec).map(([k, v]) => [k, v / JOBS])),
    rate: JOBS / secs,
    redisUsPerJob: cpuUs / JOBS,
    workerUsPerJob: (me.user + me.system) / JOBS,
  }
  await w.close()
  if (archiver) {
    let cpu1 = cpu0
    let t1 = t0
    if (mode === 'held') {
      await q.redis.config('RESETSTAT')
      cpu1 = await redisCpuUs(q)
      t1 = performance.now()
      process.kill(archiver.pid!, 'SIGCONT')
    }
    // Until every job is in PostgreSQL (the archive stream empty).
    while ((await q.redis.xlen(q.store.keys.archive('default'))) > 0) await sleep(20)
    const done = (performance.now() - t0) / 1000
    const cpuEnd = await redisCpuUs(q)
    if (mode === 'held') {
      const cs = await commandStats(q)
      out.catchUpByCommand = Object.fromEntries(Object.entries(cs.usec).map(([k, v]) => [k, v / JOBS]))
      out.catchUpRedisUs = (cpuEnd - cpu1 - (IDLE_US_PER_S * (performance.now() - t1)) / 1000) / JOBS
    } else {
      out.archiveRate = (await rowsIn(db.url, schema)) / done
    }
    out.redisUsPerJobArchived = (cpuEnd - cpu0 - IDLE_US_PER_S * done) / JOBS
    clearInterval(pinning)
    out.archiverUsPerJob = (procCpuUs(archiver.pid!) - arch0) / JOBS
    out.pgUsPerJob = [...pgPids].reduce((n, pid) => n + procCpuUs(pid), 0) / JOBS
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

const { cfg, stop } = await privateRedis('ba', { WORKER_CONCURRENCY: '100' })
const line = (label: string, text: string) => console.log(`  ${label.padEnd(40)} ${text}`)
/** "slowdown x % (min-max): under / NOT under 10 %" from on / off ratios. */
const verdict = (ratios: number[]): string => {
  const slow = 1 - median(ratios)
  return `${fmt(ratios, 3)}: slowdown ${(slow * 100).toFixed(1)} % -- ${slow < TARGET ? 'under' : 'NOT under'} the ${TARGET * 100} % target`
}
try {
  if (PIN) {
    const probe = new Redis(cfg.redisUrl)
    pin(Number(/process_id:(\d+)/.exec(await probe.info('server'))?.[1]), 0)
    probe.disconnect()
    pin(process.pid, 0)
  }
  {
    const probe = new Redis(cfg.redisUrl)
    const cpu = async () => {
      const info = await probe.info('cpu')
      const v = (k: string) => Number(new RegExp(`${k}:([\\d.]+)`).exec(info)?.[1] ?? 0)
      return (v('used_cpu_user') + v('used_cpu_sys')) * 1e6
    }
    const c0 = await cpu()
    await sleep(SMOKE ? 1000 : 3000)
    IDLE_US_PER_S = ((await cpu()) - c0) / (SMOKE ? 1 : 3)
    probe.disconnect()
  }
  await withDatabase(async (db) => {
    const res: Record<Mode, RunResult[]> = { off: [], on: [], held: [] }
    const modes: Mode[] = ['off', 'on', 'held']
    let i = 0
    for (let r = 0; r < RUNS; r++) {
      // Rotate which goes first, so no mode always runs on a warmer (or busier) machine.
      for (let m = 0; m < modes.length; m++) {
        const mode = modes[(m + r) % modes.length]!
        res[mode].push(await run(cfg, i++, mode, db))
      }
    }
    const { off, on, held } = res
    const per = (xs: RunResult[], f: (x: RunResult) => number) => xs.map(f)
    const ratio = (a: RunResult[], b: RunResult[], f: (x: RunResult) => number) =>
      a.map((x, k) => f(x) / f(b[k]!))
    const cost = (x: RunResult) => (x.redisUsPerJobArchived ?? x.redisUsPerJob) + x.workerUsPerJob
    console.log(
      `archive: one Worker (concurrency 100, no-op handler) draining ${JOBS} jobs; ${RUNS} round(s) of off / on / held (on: a dtq archiver process writing to PostgreSQL beside it${NICE ? ', nice 19' : ''}${PIN ? '; Redis and the worker pinned to CPU 0, the archiver and its PostgreSQL backends to CPU 1' : ''}); medians (min-max); Redis figures net of its idle CPU (${(IDLE_US_PER_S / 1000).toFixed(1)} ms/s)`,
    )
    line('engine jobs/s, off', fmt(per(off, (x) => x.rate)))
    line('engine jobs/s, on', fmt(per(on, (x) => x.rate)))
    line('engine jobs/s, held (archiver stopped)', fmt(per(held, (x) => x.rate)))
    line('jobs/s on / off (each round)', verdict(ratio(on, off, (x) => x.rate)))
    line(
      'jobs/s held / off (each round)',
      fmt(
        ratio(held, off, (x) => x.rate),
        3,
      ),
    )
    line(
      'Redis µs/job, drain',
      `off ${fmt(
        per(off, (x) => x.redisUsPerJob),
        1,
      )}, on ${fmt(
        per(on, (x) => x.redisUsPerJob),
        1,
      )}, held ${fmt(
        per(held, (x) => x.redisUsPerJob),
        1,
      )}`,
    )
    line(
      'Redis µs/job, until all archived',
      `on ${fmt(
        per(on, (x) => x.redisUsPerJobArchived ?? 0),
        1,
      )}, held ${fmt(
        per(held, (x) => x.redisUsPerJobArchived ?? 0),
        1,
      )} (held's catch-up alone ${fmt(
        per(held, (x) => x.catchUpRedisUs ?? 0),
        1,
      )})`,
    )
    line(
      'Redis until archived, on / off',
      fmt(
        ratio(on, off, (x) => x.redisUsPerJobArchived ?? x.redisUsPerJob),
        3,
      ),
    )
    line(
      'worker CPU µs/job (this process)',
      `off ${fmt(
        per(off, (x) => x.workerUsPerJob),
        1,
      )}, on ${fmt(
        per(on, (x) => x.workerUsPerJob),
        1,
      )}`,
    )
    line(
      'engine µs/job (Redis until archived + worker)',
      `off ${fmt(per(off, cost), 1)}, on ${fmt(per(on, cost), 1)}, held ${fmt(per(held, cost), 1)}`,
    )
    line('engine cost off / on (each round)', verdict(ratio(off, on, cost)))
    line('engine cost off / held (each round)', verdict(ratio(off, held, cost)))
    line(
      'archiver CPU µs/job; its PG backends',
      `${fmt(
        per(on, (x) => x.archiverUsPerJob ?? 0),
        1,
      )}; ${fmt(
        per(on, (x) => x.pgUsPerJob ?? 0),
        1,
      )} (held: ${fmt(
        per(held, (x) => x.archiverUsPerJob ?? 0),
        1,
      )}; ${fmt(
        per(held, (x) => x.pgUsPerJob ?? 0),
        1,
      )})`,
    )
    // Where Redis's extra µs go when on: per command, the median of on minus off.
    const diff = (a: Array<Record<string, number>>, b: Array<Record<string, number>>) => {
      const cmds = new Set([...a, ...b].flatMap((x) => Object.keys(x)))
      return [...cmds]
        .map((k) => [k, median(a.map((x) => x[k] ?? 0)) - median(b.map((x) => x[k] ?? 0))] as const)
        .filter(([, d]) => Math.abs(d) >= 0.1)
        .sort((x, y) => y[1] - x[1])
        .map(([k, d]) => `${k} ${d.toFixed(1)}`)
        .join(', ')
    }
    line(
      'commandstats µs/job, on - off (drain)',
      diff(
        on.map((x) => x.byCommand),
        off.map((x) => x.byCommand),
      ),
    )
    line(
      'commandstats µs/job, held - off (drain)',
      diff(
        held.map((x) => x.byCommand),
        off.map((x) => x.byCommand),
      ),
    )
    line(
      'commandstats µs/job, held catch-up',
      diff(
        held.map((x) => x.catchUpByCommand ?? {}),
        held.map(() => ({})),
      ),
    )
    line("(a script's commands count in FCALL too)", '')
    line(
      'archiver into PostgreSQL, on',
      `${fmt(per(on, (x) => x.archiveRate ?? 0))} jobs/s (first completion to last row)`,
    )
    line(
      'off: EXISTS of the absent switch',
      `${fmt(
        per(off, (x) => x.existsPerFinish ?? 0),
        2,
      )} per FCALL, ${fmt(
        per(off, (x) => x.existsUsPerCall ?? 0),
        2,
      )} µs each; ${fmt(
        per(off, (x) => (x.existsShare ?? 0) * 100),
        2,
      )} % of the FCALLs' µs`,
    )
  })
} finally {
  stop()
}
