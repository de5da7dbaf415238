/**
 * What tracing costs (ADR 0023), in one process against one private redis-server:
 *   A  the library of a base commit (default: the merge base with main), before tracing existed
 *   B  this tree, tracing off (activeTracer null: what every deployment without OTEL_* runs)
 *   C  this tree, tracing on: the SDK started (OTLP http/protobuf to a local receiver that
 *      answers 200), a producer span per job, a consumer span per run
 * Shapes: add() one job per call (8 calls in flight), addBulk of 100, and a drain of queued jobs
 * by a Worker (concurrency 100, no-op handler). Phase 1 interleaves A and B with no OpenTelemetry
 * module loaded; phase 2 starts the SDK and interleaves B and C (B with activeTracer null again).
 * Prints jobs/s medians with min-max and the ratios.
 *
 *   node scripts/bench/tracing.ts [--base <git ref>] [--smoke] [--on-only]
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as tree from '../../app/src/index.ts'
import { disableTracing, enableTracing, startTracing, stopTracing } from '../../app/src/tracing/index.ts'
import { otlpSink } from './features.ts'
import { arg, fmt, git, median, SMOKE } from './function-ab.ts'
import { privateRedis } from './private-redis.ts'

const BASE = arg('--base') ?? git('merge-base', 'HEAD', 'main').trim()
const RUNS = SMOKE ? 1 : 5
const N_ADD = SMOKE ? 1000 : 20_000
const N_BULK = SMOKE ? 2000 : 40_000
const N_DRAIN = SMOKE ? 2000 : 20_000

type Lib = Pick<typeof tree, 'Queue' | 'Worker' | 'loadConfig'>

/** A run's jobs/s (wall clock: moved by the other loads of a shared machine) and this process's CPU µs per job (much less so). */
interface Run {
  rate: number
  cpuUs: number
}

function timer(n: number): () => Run {
  const t0 = performance.now()
  const c0 = process.cpuUsage()
  return () => {
    const c = process.cpuUsage(c0)
    return { rate: n / ((performance.now() - t0) / 1000), cpuUs: (c.user + c.system) / n }
  }
}

/** The base commit's app/src, unpacked beside this tree's node_modules. */
function baseLibrary(): Promise<Lib> {
  const root = git('rev-parse', '--show-toplevel').trim()
  const dir = mkdtempSync(join(tmpdir(), 'dtq-trace-base-'))
  const tar = execFileSync('git', ['-C', root, 'archive', BASE, 'app/src', 'app/package.json'], {
    maxBuffer: 1 << 28, // app/src is past execFileSync's 1 MB default
  })
  execFileSync('tar', ['-x', '-C', dir], { input: tar })
  mkdirSync(join(dir, 'app'), { recursive: true })
  symlinkSync(join(root, 'app', 'node_modules'), join(dir, 'app', 'node_modules'))
  return import(join(dir, 'app', 'src', 'index.ts')) as Promise<Lib>
}

async function main(): Promise<void> {
  const { port, stop } = await privateRedis('tr')
  const env = {
    REDIS_URL: `redis://127.0.0.1:${port}`,
    KEY_PREFIX: 'tr',
    LOG_LEVEL: 'silent',
    WORKER_CONCURRENCY: '100',
    COMPLETED_RETENTION_S: '3600',
    EVENTS_MAX_LEN: '10000',
  }
  const base = await baseLibrary()
  const flush = async (q: InstanceType<Lib['Queue']>) => {
    await q.redis.flushall()
  }

  /** Times `enqueue` adding n jobs on a fresh Queue of `lib` (Redis flushed first). */
  async function enqueueRun(
    lib: Lib,
    n: number,
    enqueue: (q: InstanceType<Lib['Queue']>) => Promise<unknown>,
  ): Promise<Run> {
    const q = await lib.Queue.connect(lib.loadConfig(env))
    await flush(q)
    const done = timer(n)
    await enqueue(q)
    const run = done()
    await q.close()
    return run
  }

  const addOne = (lib: Lib) =>
    enqueueRun(lib, N_ADD, async (q) => {
      let next = 0
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          while (next++ < N_ADD) await q.add('noop', { n: 1 })
        }),
      )
    })

  const addBulk = (lib: Lib) =>
    enqueueRun(lib, N_BULK, async (q) => {
      for (let i = 0; i < N_BULK; i += 100)
        await q.addBulk(Array.from({ length: 100 }, () => ({ task_type: 'noop', payload: { n: 1 } })))
    })

  async function drain(lib: Lib): Promise<Run> {
    const q = await lib.Queue.connect(lib.loadConfig(env))
    await flush(q)
    for (let i = 0; i < N_DRAIN; i += 1000)
      await q.addBulk(Array.from({ length: 1000 }, () => ({ task_type: 'noop', payload: {} })))
    const w = new lib.Worker(lib.loadConfig(env), { builtins: false, janitorEveryMs: 3_600_000 })
    w.handle('noop', () => null)
    const stats = q.store.keys.stats('default')
    const done = timer(N_DRAIN)
    await w.start()
    while (Number(await q.redis.hget(stats, 'completed')) < N_DRAIN)
      await new Promise((r) => setTimeout(r, 5))
    const run = done()
    await w.close(1000)
    await q.close()
    return run
  }

  const shapes = {
    'add (1 per call, 8 in flight)': addOne,
    'addBulk (100 per call)': addBulk,
    'drain (c=100)': drain,
  }
  type Variant = { name: string; lib: Lib; before?: () => unknown }
  async function compare(variants: Variant[]) {
    for (const [label, shape] of Object.entries(shapes)) {
      const runs = new Map<string, Run[]>(variants.map((v) => [v.name, []]))
      for (let r = 0; r < RUNS; r++) {
        // Interleaved, the order flipped every run (A B, B A, ...): drift hits both alike.
        const order = r % 2 ? [...variants].reverse() : variants
        for (const v of order) {
          await v.before?.()
          runs.get(v.name)!.push(await shape(v.lib))
        }
      }
      const [x, y] = variants.map((v) => runs.get(v.name)!)
      const ratio = (k: keyof Run) => (median(y!.map((r) => r[k])) / median(x!.map((r) => r[k]))).toFixed(3)
      const names = `${variants[1]!.name}/${variants[0]!.name}`
      console.log(`  ${label}`)
      for (const v of variants) {
        const rs = runs.get(v.name)!
        console.log(
          `    ${v.name}  jobs/s ${fmt(rs.map((r) => r.rate))}   node CPU µs/job ${fmt(
            rs.map((r) => r.cpuUs),
            1,
          )}`,
        )
      }
      console.log(`    ${names}: jobs/s ${ratio('rate')}, node CPU per job ${ratio('cpuUs')}`)
    }
  }

  try {
    console.log(
      `tracing cost: A = ${BASE.slice(0, 10)} (base), B = this tree, tracing off; jobs/s, median (min-max) of ${RUNS}`,
    )
    // --on-only: phase 2 alone (e.g. to price a sampler: OTEL_TRACES_SAMPLER=traceidratio ...)
    if (!process.argv.includes('--on-only'))
      await compare([
        { name: 'A', lib: base },
        { name: 'B', lib: tree },
      ])
    const receiver = await otlpSink()
    await startTracing({ serviceName: 'dtq-bench', redisSpans: false })
    console.log(
      'B = this tree, tracing off; C = this tree, tracing on (SDK, OTLP http/protobuf, default batch processor)',
    )
    await compare([
      { name: 'B', lib: tree, before: disableTracing },
      { name: 'C', lib: tree, before: enableTracing },
    ])
    await stopTracing()
    receiver.close()
  } finally {
    stop()
  }
}

await main()
process.exit(0)
