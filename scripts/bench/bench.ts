/**
 * pnpm bench: DTQ against BullMQ (default retention, and removeOnComplete) and bee-queue, in the
 * same run against the same private redis-server (AOF off for all), interleaved (peer, DTQ, peer,
 * DTQ, … each round, the order rotated between rounds), medians of the runs with min–max, each
 * figure's ratio to every peer, the target and a verdict. Scenarios:
 *
 *   a  bulk enqueue (addBulk of 1000)
 *   b  drain of queued no-op jobs at concurrency 100, start-up excluded: DTQ's library Worker and
 *      the `dtq worker` process; jobs/s and Redis CPU per job (INFO cpu around the drain)
 *   c  producer and worker together, saturated; enqueue→start p50/p99 in µs at 5k jobs/s
 *   d  Redis memory per waiting job (and per retained completed job)
 *   e  POST /jobs with auth and validation against a bare Fastify route doing one XADD
 *   f  b and c again with DTQ's features configured (features.ts): tracing, a rate limit and a
 *      fleet-wide cap that never bind, the archiver
 *   g  a 3-primary local Redis Cluster, the hot queue partitioned (partitions.ts): drain jobs/s
 *      and Redis CPU per primary beside the single server's
 *
 *   pnpm bench                  a–g full size, then flows.ts and limits.ts (~15 min, the whole machine)
 *   pnpm bench --smoke          tiny sizes, one run, no cluster (part of npm test: the bench cannot rot)
 *   pnpm bench --only b,f       some scenarios; --cluster adds g to any run; --runs N; --drain N
 */
import { spawn } from 'node:child_process'
import {
  CLUSTER,
  type Contender,
  N_BULK,
  N_DRAIN,
  N_MEM,
  N_SAT,
  ONLY_GIVEN,
  RUNS,
  SMOKE,
  startServer,
  stopServer,
  want,
} from './bench-kit.ts'
import { dtqCli, dtqLibrary } from './dtq.ts'
import { type Features, startFeatures } from './features.ts'
import { clusterDrains } from './partitions.ts'
import { bareFastify, beeQueue, bullmq } from './peers.ts'
import { type Row, rows, stat, summary, type Target } from './report.ts'

const N_CLUSTER = Math.min(N_DRAIN, 50_000)
const BULL = ['BullMQ', 'BullMQ removeOnComplete']
/** BENCH_PEERS=none runs DTQ alone (quick A/Bs of its own variants, e.g. with BENCH_FEATURES). */
const PEERS = process.env.BENCH_PEERS === 'none' ? [] : [bullmq(false), bullmq(true), beeQueue()]
const DTQ = dtqLibrary()
const DRAIN_RATE = `(b) drain of ${N_DRAIN} queued no-op jobs, concurrency 100`
const DRAIN_CPU = '(b) Redis CPU per completed job (INFO cpu around the drain)'

type Scenario = 'bulk' | 'drain' | 'saturated' | 'latency' | 'memory' | 'http'
type Figures = Record<string, number>
/** The scenarios sized in jobs, which a warm-up run of a tenth of the size precedes. */
const WARM = new Set<Scenario>(['bulk', 'drain', 'saturated'])

/**
 * Runs one scenario for every contender, RUNS rounds, each round interleaved (peer, DTQ, peer,
 * DTQ, …) and rotated by one from the last (these machines drift in speed over minutes: runs of
 * one system then of another would bias the ratio). A number is the figure `rate`.
 */
async function measure(
  label: string,
  what: Scenario,
  arg: number,
  dtqs: Contender[],
  peers: Contender[],
): Promise<Map<string, Figures[]>> {
  process.stderr.write(`… ${label}\n`)
  const order: Contender[] = []
  for (let i = 0; i < Math.max(dtqs.length, peers.length); i++)
    order.push(...[peers[i], dtqs[i]].filter((c) => c !== undefined))
  const out = new Map<string, Figures[]>(order.map((c) => [c.name, []]))
  const run = (c: Contender, n: number) => (c[what] as (n: number) => Promise<number | Figures>)(n)
  // A warm-up per contender, not measured, so no one's first round pays its JIT and connections.
  if (WARM.has(what) && !SMOKE) for (const c of order) await run(c, Math.max(1000, Math.round(arg / 10)))
  for (let r = 0; r < RUNS; r++)
    for (let k = 0; k < order.length; k++) {
      const c = order[(k + r) % order.length]!
      const res = await run(c, arg)
      const figures = typeof res === 'number' ? { rate: res } : res
      out.get(c.name)!.push(figures)
      const shown = Object.entries(figures).map(([name, v]) => `${name} ${v.toFixed(1)}`)
      process.stderr.write(`    round ${r + 1}, ${c.name}: ${shown.join(', ')}\n`)
    }
  return out
}

interface Figure {
  key: string
  scenario: string
  unit: string
  targets: Target[]
  digits?: number
}

/** One row per DTQ contender and figure; a variant (CLI, features) also shows its ratio to the plain library. */
function addRows(
  res: Map<string, Figures[]>,
  dtqs: Contender[],
  peers: Contender[],
  figures: Figure[],
): void {
  const of = (name: string, key: string) => stat(res.get(name)!.map((x) => x[key]!))
  for (const f of figures)
    for (const d of dtqs) {
      const others = d === dtqs[0] ? peers : [...peers, dtqs[0]!]
      rows.push({
        scenario: d === dtqs[0] ? f.scenario : `${f.scenario} — ${d.name}`,
        unit: f.unit,
        digits: f.digits,
        dtq: of(d.name, f.key),
        peers: others.map((p) => ({ name: p.name, stat: of(p.name, f.key) })),
        targets: d.informational ? [] : f.targets,
      })
    }
}

const atLeast = (factor: number, peers = BULL): Target => ({ op: '≥', factor, peers })
const atMost = (factor: number, peers = BULL): Target => ({ op: '≤', factor, peers })

async function peerScenarios(features: Features | null): Promise<void> {
  const withFeatures = (dtqs: Contender[]) => (features ? [...dtqs, dtqLibrary(features)] : dtqs)
  if (want('a')) {
    const res = await measure('(a) bulk enqueue', 'bulk', N_BULK, [DTQ], PEERS)
    addRows(res, [DTQ], PEERS, [
      { key: 'rate', scenario: '(a) bulk enqueue (addBulk of 1000)', unit: 'jobs/s', targets: [atLeast(3)] },
    ])
  }
  if (want('b')) {
    const dtqs = withFeatures([DTQ, dtqCli])
    const res = await measure(`(b) drain of ${N_DRAIN}, concurrency 100`, 'drain', N_DRAIN, dtqs, PEERS)
    addRows(res, dtqs, PEERS, [
      {
        key: 'rate',
        scenario: DRAIN_RATE,
        unit: 'jobs/s',
        targets: [atLeast(3), atLeast(1, ['bee-queue'])],
      },
      {
        key: 'cpuUs',
        scenario: DRAIN_CPU,
        unit: 'µs',
        digits: 1,
        targets: [atMost(1 / 3)],
      },
    ])
  }
  if (want('c')) {
    const dtqs = withFeatures([DTQ])
    const res = await measure('(c) producer + worker, saturated', 'saturated', N_SAT, dtqs, PEERS)
    addRows(res, dtqs, PEERS, [
      {
        key: 'rate',
        scenario: `(c) producer + worker together, saturated (${N_SAT})`,
        unit: 'jobs/s',
        targets: [atLeast(3)],
      },
    ])
    const lat = await measure('(c) latency', 'latency', 0, [DTQ], PEERS)
    const at = SMOKE ? '500/s (smoke)' : '5000/s'
    addRows(lat, [DTQ], PEERS, [
      { key: 'p50', scenario: `(c) enqueue→start p50 at ${at}`, unit: 'µs', targets: [] },
      { key: 'p99', scenario: `(c) enqueue→start p99 at ${at}`, unit: 'µs', targets: [atMost(1 / 5)] },
    ])
  }
  if (want('d')) {
    const res = await measure('(d) memory', 'memory', N_MEM, [DTQ], PEERS)
    addRows(res, [DTQ], PEERS, [
      { key: 'waiting', scenario: '(d) Redis memory per waiting job', unit: 'B', targets: [atMost(0.75)] },
      {
        key: 'completed',
        scenario: '(d) Redis memory per completed job, default retention',
        unit: 'B',
        targets: [],
      },
    ])
  }
  if (want('e')) {
    const res = await measure('(e) HTTP POST /jobs, 50 connections', 'http', 0, [DTQ], [bareFastify])
    addRows(
      res,
      [DTQ],
      [bareFastify],
      [
        {
          key: 'rps',
          scenario: '(e) HTTP POST /jobs (auth + validation), 50 connections',
          unit: 'req/s',
          targets: [atLeast(0.85, [bareFastify.name])],
        },
        { key: 'cpuUs', scenario: '(e) HTTP POST /jobs, API CPU per request', unit: 'µs', targets: [] },
        { key: 'p99', scenario: '(e) HTTP POST /jobs p99', unit: 'ms', targets: [] },
      ],
    )
  }
}

/** (g): the drain on a 3-primary cluster, the hot queue in one partition and in one per primary. */
async function clusterScenario(): Promise<string> {
  process.stderr.write('… (g) cluster\n')
  const { primaries, a, b } = await clusterDrains(N_CLUSTER, RUNS)
  const single = rows.find((r) => r.scenario === DRAIN_RATE)
  const singleCpu = rows.find((r) => r.scenario === DRAIN_CPU)
  const rate = (ps: typeof a) => stat(ps.map((p) => p.rate))
  const cpu = (ps: typeof a) => stat(ps.map((p) => p.procUs))
  const peers = (s: (ps: typeof a) => Row['dtq'], from?: Row) => [
    { name: '1 partition (one primary)', stat: s(a) },
    ...(from ? [{ name: 'single redis-server (b)', stat: from.dtq }] : []),
  ]
  rows.push(
    {
      scenario: `(g) cluster drain of ${N_CLUSTER}, hot queue in ${primaries.length} partitions`,
      unit: 'jobs/s',
      dtq: rate(b),
      peers: peers(rate, single),
      targets: [],
    },
    {
      scenario: '(g) cluster Redis CPU per job, all primaries',
      unit: 'µs',
      digits: 1,
      dtq: cpu(b),
      peers: peers(cpu, singleCpu),
      targets: [],
    },
  )
  const col = (s: string, w = 26) => s.padEnd(w)
  const perPrimary = (ps: typeof a, f: (p: (typeof a)[number], i: number) => number, d: number) =>
    primaries.map((_, i) => stat(ps.map((p) => f(p, i))).median.toFixed(d)).join(' / ')
  return [
    `(g) local Redis Cluster, ${primaries.length} primaries (${primaries.join(', ')}), no replicas, AOF off: drain of ${N_CLUSTER} jobs by 3 workers × concurrency 50 (partitions.ts); medians of ${RUNS}`,
    `  ${col('')}${col('jobs/s')}${col('Redis CPU µs/job, main thread, per primary', 44)}   busy % of a core, per primary`,
    ...(
      [
        ['1 partition', a],
        [`${primaries.length} partitions`, b],
      ] as const
    ).map(
      ([label, ps]) =>
        `  ${col(label)}${col(String(Math.round(rate(ps).median)))}${col(
          perPrimary(ps, (p, i) => p.mainUs[i]!, 1),
          44,
        )}   ${perPrimary(ps, (p, i) => p.busy[i]!, 0)}`,
    ),
    single && singleCpu
      ? `  ${col('single redis-server (b)')}${col(String(Math.round(single.dtq.median)))}${singleCpu.dtq.median.toFixed(1)} (all threads)`
      : '  (single redis-server: run b too to see it here)',
  ].join('\n')
}

async function main(): Promise<void> {
  await startServer()
  let features: Features | null = null
  let cluster = ''
  try {
    if (want('f') && (want('b') || want('c'))) features = await startFeatures()
    await peerScenarios(features)
  } finally {
    await features?.close()
    stopServer()
  }
  if (want('g')) cluster = await clusterScenario()
  if (features) process.stdout.write(`features on: ${features.label}\n`)
  if (cluster) process.stdout.write(`${cluster}\n\n`)
  process.stdout.write(`${summary()}\n`)
}

/**
 * The whole product's benches after the peer comparison (a full run only: not with --only,
 * --cluster or --smoke): flows against plain jobs (ADR 0019), flow control against the plain path (ADR 0022).
 */
async function companions(): Promise<void> {
  if (SMOKE || ONLY_GIVEN || CLUSTER) return
  for (const script of ['flows.ts', 'limits.ts']) {
    process.stdout.write(`\n== ${script} ==\n`)
    const child = spawn(process.execPath, [new URL(script, import.meta.url).pathname], { stdio: 'inherit' })
    const code = await new Promise<number | null>((done) => child.on('exit', done))
    if (code !== 0) throw new Error(`${script} exited with ${code}`)
  }
}

main()
  .then(companions)
  .then(
    () => process.exit(0),
    (err) => {
      process.stderr.write(`bench failed: ${(err as Error).stack}\n`)
      process.exit(1)
    },
  )
