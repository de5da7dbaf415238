/**
 * pnpm --filter @dtq/bench partitions: a partitioned queue on a local 3-primary Redis Cluster
 * (ADR 0017), against the same queue unpartitioned, in the same run.
 *
 *   A  queue `hot` with 1 partition: every job on the primary that owns slot {hot}
 *   B  queue `hot` with N partitions (hot, hot~1…): N slots, placed evenly over the primaries
 *
 * A and B run interleaved (A B A B …), each with a fresh KEY_PREFIX, and the medians are shown.
 * Each run: enqueue M jobs (addBulk calls of 100, a few in flight), drain them with in-process
 * workers (no-op handler), then a saturated phase (producer and the same workers at once). For
 * each phase: throughput, and Redis CPU per job on each primary (INFO cpu before and after),
 * with each primary's share of the Redis CPU; commands per job (INFO commandstats); this
 * process's CPU per job (producers and workers).
 *
 *   node partitions.ts                full (~1 min on 2 cores)
 *   node partitions.ts --smoke        tiny sizes, one A and one B
 *   --partitions N                    B's partition count (default: one per primary)
 *   --aof                             keep AOF on (everysec, as the topology harness starts it;
 *                                     auto-rewrite off so a rewrite never lands in a run)
 *
 * The cluster is private (free ports, never 6379), without replicas, and stopped at the end, also
 * on error or Ctrl-C.
 */

import { cpus } from 'node:os'
import { pathToFileURL } from 'node:url'
import { type Config, Queue as DtqQueue, Worker as DtqWorker, loadConfig } from '@dtq/app'
import { Redis } from 'ioredis'
import { type ClusterNode, type LocalCluster, startCluster } from '../../app/test/topology.ts'

const argv = process.argv.slice(2)
const SMOKE = argv.includes('--smoke')
const AOF = argv.includes('--aof')
const arg = (name: string): string | undefined => {
  const i = argv.indexOf(name)
  return i >= 0 ? argv[i + 1] : undefined
}
let placed: string[] = []
const FIXED_N = arg('--partitions') ? Number(arg('--partitions')) : undefined

const QUEUE = 'hot'
const M = SMOKE ? 2000 : 50_000
const M_SAT = SMOKE ? 1000 : 50_000
const REPS = SMOKE ? 1 : 5
const BULK = 100
const PRODUCERS = 4
const WORKERS = 3
const CONCURRENCY = 50
const WAIT_LIMIT_MS = SMOKE ? 60_000 : 180_000
const TAG = Math.random().toString(36).slice(2, 8)

// ---- the cluster and its primaries ---------------------------------------------------------

interface Primary {
  label: string
  port: number
  admin: Redis
}

let cluster: LocalCluster | undefined
let primaries: Primary[] = []

async function stopAll(): Promise<void> {
  for (const p of primaries) p.admin.disconnect()
  primaries = []
  const c = cluster
  cluster = undefined
  await c?.stop()
}

process.once('SIGINT', () => {
  console.error('interrupted: stopping the cluster')
  void stopAll().finally(() => process.exit(130))
})

async function startOurCluster(): Promise<void> {
  cluster = await startCluster({ masters: 3, replicasPerMaster: 0, nodeTimeoutMs: 5000 })
  const masters: ClusterNode[] = await cluster.masters()
  primaries = masters.map((m, i) => {
    const admin = new Redis({ host: '127.0.0.1', port: m.port, maxRetriesPerRequest: 1 })
    admin.on('error', () => {})
    return { label: `P${i + 1}`, port: m.port, admin }
  })
  for (const p of primaries) {
    if (AOF) await p.admin.config('SET', 'auto-aof-rewrite-percentage', '0')
    else await p.admin.config('SET', 'appendonly', 'no')
  }
}

function config(prefix: string): Config {
  return loadConfig({
    REDIS_URL: cluster!.seeds[0],
    REDIS_CLUSTER_NODES: cluster!.seeds.join(','),
    KEY_PREFIX: prefix,
    LOG_LEVEL: 'silent',
    DEFAULT_QUEUE: QUEUE,
    WORKER_QUEUES: QUEUE,
    WORKER_CONCURRENCY: String(CONCURRENCY),
    COMPLETED_RETENTION_S: '3600',
    MAX_PAYLOAD_BYTES: '65536',
    EVENTS_MAX_LEN: '10000',
  })
}

/** Which primary (index into `primaries`) serves `key`'s slot. */
async function primaryOf(key: string): Promise<{ slot: number; index: number }> {
  const { slot, node } = await cluster!.masterFor(key)
  return { slot, index: primaries.findIndex((p) => p.port === node.port) }
}

// ---- measurements ---------------------------------------------------------------------------

interface NodeSample {
  /** Main thread user+sys, s. */
  main: number
  /** Whole process user+sys (main thread, bio threads), s. */
  proc: number
  /** Commands executed (commandstats calls, INFO left out), FCALLs among them. */
  calls: number
  fcalls: number
}
interface Sample {
  at: number
  nodes: NodeSample[]
  /** This process's CPU, µs. */
  node: number
}

function infoNum(text: string, key: string): number {
  return Number(new RegExp(`^${key}:([\\d.]+)`, 'm').exec(text)?.[1] ?? Number.NaN)
}

async function sampleNode(p: Primary): Promise<NodeSample> {
  const [cpu, cmd] = await Promise.all([p.admin.info('cpu'), p.admin.info('commandstats')])
  let calls = 0
  let fcalls = 0
  for (const m of cmd.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    if (m[1] === 'info') continue
    calls += Number(m[2])
    if (m[1] === 'fcall' || m[1] === 'fcall_ro') fcalls += Number(m[2])
  }
  const main = infoNum(cpu, 'used_cpu_user_main_thread') + infoNum(cpu, 'used_cpu_sys_main_thread')
  const proc = infoNum(cpu, 'used_cpu_user') + infoNum(cpu, 'used_cpu_sys')
  return { main: Number.isNaN(main) ? proc : main, proc, calls, fcalls }
}

async function sample(): Promise<Sample> {
  const nodes = await Promise.all(primaries.map(sampleNode))
  const u = process.cpuUsage()
  return { at: performance.now(), nodes, node: u.user + u.system }
}

export interface Phase {
  jobs: number
  seconds: number
  rate: number
  /** Per primary: Redis main-thread CPU µs per job, share of the primaries' total, % of a core. */
  mainUs: number[]
  share: number[]
  busy: number[]
  /** Redis CPU µs per job, all primaries, all threads. */
  procUs: number
  calls: number[]
  fcalls: number
  nodeUs: number
}

function phase(a: Sample, b: Sample, jobs: number, seconds: number): Phase {
  const mainS = b.nodes.map((n, i) => n.main - a.nodes[i]!.main)
  const wall = (b.at - a.at) / 1000
  const total = mainS.reduce((x, y) => x + y, 0)
  return {
    jobs,
    seconds,
    rate: jobs / seconds,
    mainUs: mainS.map((s) => (s * 1e6) / jobs),
    share: mainS.map((s) => (total > 0 ? s / total : 0)),
    busy: mainS.map((s) => (100 * s) / wall),
    procUs: (b.nodes.reduce((x, n, i) => x + n.proc - a.nodes[i]!.proc, 0) * 1e6) / jobs,
    calls: b.nodes.map((n, i) => (n.calls - a.nodes[i]!.calls) / jobs),
    fcalls: b.nodes.reduce((x, n, i) => x + n.fcalls - a.nodes[i]!.fcalls, 0) / jobs,
    nodeUs: (b.node - a.node) / jobs,
  }
}

/** Polls an in-process condition (no Redis round trip) until it holds. */
async function until(what: string, cond: () => boolean, limitMs = WAIT_LIMIT_MS): Promise<void> {
  const deadline = Date.now() + limitMs
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${limitMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 2))
  }
}

// ---- one run ----------------------------------------------------------------------------------

interface RunResult {
  enqueue: Phase
  drain: Phase
  saturated: Phase
  seconds: number
}

/** Adds `total` keyless jobs in addBulk calls of BULK, PRODUCERS calls in flight. */
async function produce(q: DtqQueue, total: number): Promise<void> {
  let next = 0
  await Promise.all(
    Array.from({ length: PRODUCERS }, async () => {
      for (;;) {
        const i = next
        next += BULK
        if (i >= total) return
        await q.addBulk(
          Array.from({ length: Math.min(BULK, total - i) }, () => ({
            task_type: 'noop',
            queue: QUEUE,
            payload: {},
          })),
        )
      }
    }),
  )
}

/** Deletes every key of `prefix` on every primary. */
async function cleanup(prefix: string): Promise<void> {
  for (const p of primaries) {
    let cursor = '0'
    do {
      const [next, keys] = await p.admin.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 2000)
      cursor = next
      if (keys.length) {
        const pipe = p.admin.pipeline()
        for (const k of keys) pipe.unlink(k)
        await pipe.exec()
      }
    } while (cursor !== '0')
  }
  for (const p of primaries) {
    const [, left] = await p.admin.scan('0', 'MATCH', `${prefix}:*`, 'COUNT', 100_000)
    if (left.length) throw new Error(`cleanup left ${left.length} keys of ${prefix} on ${p.label}`)
  }
}

async function runOnce(name: string, partitions: number, jobs: number, satJobs: number): Promise<RunResult> {
  const prefix = `pbench-${TAG}-${name}`
  const cfg = config(prefix)
  const started = performance.now()
  const q = await DtqQueue.connect(cfg)
  const workers: DtqWorker[] = []
  try {
    if (partitions > 1) {
      await q.setPartitions(QUEUE, partitions)
      placed = await q.store.physicalQueues(QUEUE)
    }
    if ((await q.partitions(QUEUE)) !== partitions)
      throw new Error(`${QUEUE} has not ${partitions} partitions`)

    const s0 = await sample()
    const t0 = performance.now()
    await produce(q, jobs)
    const enqSeconds = (performance.now() - t0) / 1000
    const s1 = await sample()

    // The workers start and take their first jobs held at a gate: their start-up (connections,
    // lease threads) stays out of the drain's time and CPU. The deliveries of those first
    // WORKERS × CONCURRENCY jobs fall between the two phases' samples.
    let open!: () => void
    const gate = new Promise<void>((r) => {
      open = r
    })
    for (let i = 0; i < WORKERS; i++) {
      const w = new DtqWorker(cfg, { builtins: false, janitorEveryMs: 3_600_000 })
      w.handle('noop', async () => {
        await gate
        return null
      })
      workers.push(w)
    }
    const processed = () => workers.reduce((n, w) => n + w.processed, 0)
    await Promise.all(workers.map((w) => w.start()))
    await until('the workers to hold their first jobs', () =>
      workers.every((w) => w.active >= Math.min(CONCURRENCY, Math.floor(jobs / WORKERS))),
    )
    const s1b = await sample()
    const t1 = performance.now()
    open()
    await until(`${jobs} jobs completed`, () => processed() >= jobs)
    const drainSeconds = (performance.now() - t1) / 1000
    const s2 = await sample()

    const t2 = performance.now()
    await produce(q, satJobs)
    await until(`${jobs + satJobs} jobs completed`, () => processed() >= jobs + satJobs)
    const satSeconds = (performance.now() - t2) / 1000
    const s3 = await sample()

    // What Redis says: every job completed, on the partitions it was routed to.
    let completed = 0
    for (const p of await q.store.physicalQueues(QUEUE))
      completed += Number(await q.redis.hget(q.store.keys.stats(p), 'completed'))
    if (completed !== jobs + satJobs)
      throw new Error(`${name}: stats say ${completed} completed, want ${jobs + satJobs}`)

    return {
      enqueue: phase(s0, s1, jobs, enqSeconds),
      drain: phase(s1b, s2, jobs, drainSeconds),
      saturated: phase(s2, s3, satJobs, satSeconds),
      seconds: (performance.now() - started) / 1000,
    }
  } finally {
    await Promise.all(workers.map((w) => w.close(2000)))
    await q.close()
    await cleanup(prefix)
  }
}

// ---- report -----------------------------------------------------------------------------------

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}
const range = (xs: number[], d: number): string => {
  const m = median(xs).toFixed(d)
  return xs.length > 1 ? `${m} (${Math.min(...xs).toFixed(d)}–${Math.max(...xs).toFixed(d)})` : m
}
const pct = (x: number) => `${(100 * x).toFixed(0)}%`

type PhaseName = 'enqueue' | 'drain' | 'saturated'
const PHASES: PhaseName[] = ['enqueue', 'drain', 'saturated']

function report(a: RunResult[], b: RunResult[], n: number, counts: number[]): void {
  const col = (s: string, w: number) => s.padEnd(w)
  const of = (rs: RunResult[], ph: PhaseName) => rs.map((r) => r[ph])
  console.log('\nThroughput, jobs/s: median (min–max)')
  console.log(`  ${col('', 11)}${col('A: 1 partition', 26)}${col(`B: ${n} partitions`, 26)}B/A`)
  for (const ph of PHASES) {
    const ra = of(a, ph).map((p) => p.rate)
    const rb = of(b, ph).map((p) => p.rate)
    console.log(
      `  ${col(ph, 11)}${col(range(ra, 0), 26)}${col(range(rb, 0), 26)}${(median(rb) / median(ra)).toFixed(2)}`,
    )
  }

  const heads = primaries.map((p) => col(`${p.label} :${p.port}`, 13)).join('')
  console.log(
    '\nRedis CPU per job, main thread, µs, by primary (medians) | share of the primaries’ Redis CPU | % of a core busy',
  )
  console.log(`  ${col('', 13)}${heads}${col('sum', 8)}| ${col('share P1/P2/P3', 18)}| busy P1/P2/P3`)
  for (const ph of PHASES) {
    for (const [label, rs] of [
      ['A', a],
      ['B', b],
    ] as const) {
      const ps = of(rs, ph)
      const us = primaries.map((_, i) => median(ps.map((p) => p.mainUs[i]!)))
      const share = primaries.map((_, i) => median(ps.map((p) => p.share[i]!)))
      const busy = primaries.map((_, i) => median(ps.map((p) => p.busy[i]!)))
      console.log(
        `  ${col(`${ph} ${label}`, 13)}${us.map((x) => col(x.toFixed(1), 13)).join('')}${col(
          median(ps.map((p) => p.mainUs.reduce((x, y) => x + y, 0))).toFixed(1),
          8,
        )}| ${col(share.map(pct).join(' / '), 18)}| ${busy.map((x) => `${x.toFixed(0)}%`).join(' / ')}`,
      )
    }
  }

  console.log(
    '\nPer job (medians): Redis CPU all threads, all primaries (µs) | commands by primary (commandstats calls) | FCALLs | this process’s CPU (µs)',
  )
  for (const ph of PHASES) {
    for (const [label, rs] of [
      ['A', a],
      ['B', b],
    ] as const) {
      const ps = of(rs, ph)
      const calls = primaries.map((_, i) => median(ps.map((p) => p.calls[i]!)))
      console.log(
        `  ${col(`${ph} ${label}`, 13)}redis ${col(median(ps.map((p) => p.procUs)).toFixed(1), 7)}| calls ${col(
          calls.map((c) => c.toFixed(2)).join(' / '),
          20,
        )}(sum ${calls.reduce((x, y) => x + y, 0).toFixed(2)}) | fcall ${median(ps.map((p) => p.fcalls)).toFixed(3)} | node ${median(
          ps.map((p) => p.nodeUs),
        ).toFixed(1)}`,
      )
    }
  }

  // Interpretation: where the Redis CPU went, what it cost, and what bounded the throughput.
  const med = (rs: RunResult[], ph: PhaseName, f: (p: Phase) => number) => median(of(rs, ph).map(f))
  const busiest = (rs: RunResult[], ph: PhaseName) => {
    const share = primaries.map((_, i) => med(rs, ph, (p) => p.share[i]!))
    const i = share.indexOf(Math.max(...share))
    return { label: primaries[i]!.label, share: share[i]!, busy: med(rs, ph, (p) => p.busy[i]!) }
  }
  const redisUs = (rs: RunResult[], ph: PhaseName) => med(rs, ph, (p) => p.mainUs.reduce((x, y) => x + y, 0))
  const cores = (rs: RunResult[], ph: PhaseName) => med(rs, ph, (p) => ((p.procUs + p.nodeUs) * p.rate) / 1e6)
  const rate = (rs: RunResult[], ph: PhaseName) => med(rs, ph, (p) => p.rate)
  const ncpu = cpus().length
  console.log('\nInterpretation:')
  for (const ph of PHASES) {
    const ba = busiest(a, ph)
    const bb = busiest(b, ph)
    console.log(
      `  ${ph}: A puts ${pct(ba.share)} of the Redis CPU on ${ba.label} (${ba.busy.toFixed(0)}% of a core), B at most ${pct(bb.share)} on one primary (${bb.label}, ${bb.busy.toFixed(0)}%);` +
        ` Redis CPU/job ${redisUs(a, ph).toFixed(1)} → ${redisUs(b, ph).toFixed(1)} µs (${((redisUs(b, ph) / redisUs(a, ph) - 1) * 100).toFixed(0)}%, FCALLs/job ${med(a, ph, (p) => p.fcalls).toFixed(3)} → ${med(b, ph, (p) => p.fcalls).toFixed(3)});` +
        ` throughput ×${(rate(b, ph) / rate(a, ph)).toFixed(2)}; CPU in use (Redis + this process) ${cores(a, ph).toFixed(2)} / ${cores(b, ph).toFixed(2)} of ${ncpu} cores`,
    )
  }
  const aBusy = Math.max(...PHASES.map((ph) => busiest(a, ph).busy))
  const used = Math.max(...PHASES.flatMap((ph) => [cores(a, ph), cores(b, ph)]))
  console.log(
    `  In short: the spread works -- B's Redis CPU lands on the primaries in proportion to their partitions (${counts
      .map((c, i) => `${primaries[i]!.label} ${c}`)
      .join(
        ', ',
      )} of ${n}), A's all on one -- at a price of more Redis CPU per job where a worker's batches` +
      ` are split over the partitions. ${
        aBusy >= 90
          ? `A's primary was saturated (${aBusy.toFixed(0)}% of a core): that ceiling is what B lifts`
          : `A's primary never saturated (at most ${aBusy.toFixed(0)}% of a core), so there was no one-primary ceiling for B to lift`
      }; ${
        used >= 0.75 * ncpu
          ? `the ${ncpu} cores, shared by ${primaries.length} redis-servers and Node, were nearly all in use (up to ${used.toFixed(2)}): the machine, not a primary, was the limit`
          : `with at most ${used.toFixed(2)} of ${ncpu} cores in use the runs were bound by round trips, not CPU`
      }: the throughput ratios here say little about a real cluster with a core (or a host) per primary.`,
  )
}

// ---- main -------------------------------------------------------------------------------------

async function main(): Promise<void> {
  await startOurCluster()
  const version = /redis_version:(\S+)/.exec(await primaries[0]!.admin.info('server'))?.[1]
  console.log(
    `DTQ partitioned queue on a local Redis Cluster: ${primaries.length} primaries, no replicas, redis ${version}, AOF ${AOF ? 'everysec (auto-rewrite off)' : 'off'}; node ${process.version}, ${cpus().length} cores`,
  )
  console.log(
    `Workload per run: enqueue ${M} jobs (addBulk of ${BULK}, ${PRODUCERS} calls in flight); drain them with ${WORKERS} workers × concurrency ${CONCURRENCY} (no-op handler; started and holding their first jobs before the drain is timed); saturated: ${M_SAT} more jobs enqueued while the workers run. ${REPS} × (A, B) interleaved${SMOKE ? ' [smoke]' : ''}.`,
  )

  // Where each partition lives: setPartitions places each on a primary with the fewest of the
  // queue's partitions (salting its name when needed); the slot comes from the hash tag alone.
  console.log('\nPartition → slot → primary')
  for (const p of primaries) {
    const ranges = await cluster!.slotsOf(cluster!.byPort(p.port)!)
    console.log(`  ${p.label} :${p.port} slots ${ranges.map((r) => r.join('-')).join(' ')}`)
  }
  const n = FIXED_N ?? primaries.length
  if (n < 2 || n > 128) throw new Error('--partitions must be 2–128')
  const globalKey = `pbench-${TAG}-A1:queues`
  console.log(
    `  (keys outside any queue's hash tag -- <prefix>:queues, :partitions, :ids, worker registry -- land by prefix: e.g. ${globalKey} on ${primaries[(await primaryOf(globalKey)).index]!.label})`,
  )

  // Warm-up, not measured: loads the function library on every primary, warms Node's JIT.
  await runOnce('warm', n, Math.min(M, 2000), Math.min(M_SAT, 500))
  const owners: number[] = []
  const mapping: string[] = []
  for (const p of placed) {
    const { slot, index } = await primaryOf(`pbench-${TAG}:{${p}}`)
    owners.push(index)
    mapping.push(`${p}=${slot}→${primaries[index]!.label}`)
  }
  const k = primaries.map((_, i) => owners.filter((o) => o === i).length)
  console.log(
    `  B: ${mapping.join('  ')} -- ${primaries.map((p, i) => `${p.label} ${k[i]}`).join(', ')}${Math.max(...k) === Math.min(...k) ? ' (even)' : ' (uneven)'}; A's one partition (${QUEUE}) is on ${primaries[owners[0]!]!.label}`,
  )
  console.log('\nRuns:')
  const a: RunResult[] = []
  const b: RunResult[] = []
  for (let r = 1; r <= REPS; r++) {
    for (const [label, parts, out] of [
      ['A', 1, a],
      ['B', n, b],
    ] as const) {
      const res = await runOnce(`${label}${r}`, parts, M, M_SAT)
      out.push(res)
      console.log(
        `  ${label}${r} (${parts} partition${parts > 1 ? 's' : ''}): enqueue ${res.enqueue.rate.toFixed(0)}/s, drain ${res.drain.rate.toFixed(0)}/s, saturated ${res.saturated.rate.toFixed(0)}/s; Redis CPU share ${res.drain.share.map(pct).join('/')} (drain); ${res.seconds.toFixed(1)} s`,
      )
    }
  }
  report(a, b, n, k)
}

/**
 * For `pnpm bench --cluster` (bench.ts): the drain phase alone on a cluster started and stopped
 * here -- A (1 partition) and B (one per primary) interleaved `reps` times after a warm-up.
 */
export async function clusterDrains(
  jobs: number,
  reps: number,
): Promise<{ primaries: string[]; a: Phase[]; b: Phase[] }> {
  try {
    await startOurCluster()
    const n = primaries.length
    await runOnce('warm', n, Math.min(jobs, 2000), 0)
    const a: Phase[] = []
    const b: Phase[] = []
    for (let r = 1; r <= reps; r++) {
      a.push((await runOnce(`A${r}`, 1, jobs, 0)).drain)
      b.push((await runOnce(`B${r}`, n, jobs, 0)).drain)
    }
    return { primaries: primaries.map((p) => `${p.label} :${p.port}`), a, b }
  } finally {
    await stopAll()
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const wall = performance.now()
  let failed = false
  try {
    await main()
  } catch (err) {
    failed = true
    console.error(err)
  } finally {
    await stopAll()
  }
  console.log(`\nTotal ${((performance.now() - wall) / 1000).toFixed(0)} s, cluster start and stop included`)
  process.exit(failed ? 1 : 0)
}
