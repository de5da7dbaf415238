/**
 * pnpm pending-cost: the cost of a one-job worker call (complete, fetch, fail, hand-back) as the
 * number of consumers in the queue's group grows -- issue 14 item 10, "per-call cost must not
 * grow with the number of consumers".
 *
 * For each N in --consumers, a queue of its own in which N consumers (c0..c<N-1>) each hold one
 * pending entry of the normal stream. Then rounds: in each round, for every N in turn (the
 * order rotates), for every call kind, a block of one-job calls made by the consumer 'bench' on
 * jobs prepared just before the block. Each block is bracketed by INFO commandstats, so the
 * Redis time of the block's FCALLs (and of the XPENDING calls inside them) is the measured
 * kind's alone. Client latency is timed around each call.
 *
 *   pnpm pending-cost                                     N = 1, 500, 2000; 1000 calls per kind and N
 *   pnpm pending-cost --consumers 1,2000 --iterations 3000 --block 100
 *   pnpm pending-cost --smoke                             N = 1, 50; 50 calls (a few seconds)
 */
import { type Job, Queue } from '@dtq/app'
import { Redis } from 'ioredis'
import { privateRedis } from './private-redis.ts'

const SMOKE = process.argv.includes('--smoke')
function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? (process.argv[i + 1] ?? fallback) : fallback
}
const CONSUMERS = flag('consumers', SMOKE ? '1,50' : '1,500,2000')
  .split(',')
  .map(Number)
const ITERATIONS = Number(flag('iterations', SMOKE ? '50' : '1000'))
/** Calls per measured block (one commandstats bracket). */
const BLOCK = Math.min(ITERATIONS, Number(flag('block', SMOKE ? '25' : '100')))
const ROUNDS = Math.ceil(ITERATIONS / BLOCK)
const KINDS = ['complete', 'fetch', 'fail', 'handBack'] as const
type Kind = (typeof KINDS)[number]
/** Retries far in the future: no scheduler runs here, and none should move them back. */
const RETRY_DELAY_MS = 3_600_000

const { port, cfg, stop } = await privateRedis('pc')
const admin = new Redis({ port })
const q = await Queue.connect(cfg)
const store = q.store

interface Cmdstat {
  calls: number
  usec: number
}
async function commandstats(): Promise<Map<string, Cmdstat>> {
  const out = new Map<string, Cmdstat>()
  for (const m of (await admin.info('commandstats')).matchAll(/^cmdstat_(\S+?):calls=(\d+),usec=(\d+)/gm))
    out.set(m[1]!, { calls: Number(m[2]), usec: Number(m[3]) })
  return out
}

async function enqueue(queue: string, n: number): Promise<void> {
  for (let i = 0; i < n; i += 500)
    await q.addBulk(
      Array.from({ length: Math.min(500, n - i) }, () => ({ task_type: 'noop', queue, payload: {} })),
    )
}

/** `n` jobs started for the consumer 'bench' (enqueued first; older queued jobs go first). */
async function held(queue: string, n: number): Promise<Job[]> {
  await enqueue(queue, n)
  const jobs: Job[] = []
  while (jobs.length < n) {
    const d = await store.deliver(queue, 'bench', n - jobs.length)
    if (!d.jobs.length) throw new Error(`${queue}: nothing to deliver`)
    jobs.push(...d.jobs)
  }
  return jobs
}

function expect(ok: boolean, what: string): void {
  if (!ok) throw new Error(`unexpected answer: ${what} (the call did not do the work being measured)`)
}

/**
 * Prepares a block of `n` calls of a kind; returns the call to time (called n times) and what
 * to do after the block (outside the measurement).
 */
async function prepare(
  kind: Kind,
  queue: string,
  n: number,
): Promise<{ call: () => Promise<void>; after?: () => Promise<void> }> {
  if (kind === 'fetch') {
    // The steady-state call: finishes the job held and starts the next one.
    await enqueue(queue, n)
    let job = (await held(queue, 1))[0]!
    return {
      call: async () => {
        const r = await store.fetch(queue, 'bench', 1, [{ id: job.id, epoch: job.epoch, result: 'null' }])
        expect(r.completed[0] === 1 && r.jobs.length === 1, 'fetch: 1 completed, 1 started')
        job = r.jobs[0]!
      },
      after: async () => {
        await store.complete(queue, [{ id: job.id, epoch: job.epoch, result: 'null' }])
      },
    }
  }
  const jobs = await held(queue, n)
  let i = 0
  if (kind === 'complete')
    return {
      call: async () => {
        const j = jobs[i++]!
        const r = await store.complete(queue, [{ id: j.id, epoch: j.epoch, result: 'null' }])
        expect(r[0] === 1, 'complete: 1')
      },
    }
  if (kind === 'fail')
    return {
      call: async () => {
        const j = jobs[i++]!
        const error = { message: 'bench', worker: 'bench', attempt: j.attempts }
        const r = await store.fail(queue, j.id, j.epoch, 'retry', error, RETRY_DELAY_MS)
        expect(r === 'retrying', `fail: retrying, got ${r}`)
      },
    }
  // Handed-back jobs go back to the stream, to be delivered by a later block's preparation.
  return {
    call: async () => {
      const j = jobs[i++]!
      const r = await store.handBack(queue, [{ id: j.id, epoch: j.epoch }])
      expect(r[0] === 1, 'handBack: 1')
    },
  }
}

interface Acc {
  lat: number[]
  calls: number
  usec: number
  xpendingUsec: number
}
const acc = new Map<string, Acc>()
const queueOf = (n: number) => `pc-${n}`

// ---- setup: per N, a queue where c0..c<N-1> each hold one pending entry ---------------------
for (const n of CONSUMERS) {
  const queue = queueOf(n)
  await enqueue(queue, n)
  for (let i = 0; i < n; i++) {
    const d = await store.deliver(queue, `c${i}`, 1)
    expect(d.jobs.length === 1, `setup: c${i} holds a job`)
  }
  const groups = (await admin.xinfo('GROUPS', store.keys.stream(queue, 'normal'))) as unknown[][]
  const g = groups[0] ?? []
  const at = (k: string) => g[g.indexOf(k) + 1]
  process.stderr.write(
    `… ${queue}: normal stream group has ${at('consumers')} consumers, ${at('pending')} pending\n`,
  )
  for (const kind of KINDS) acc.set(`${n} ${kind}`, { lat: [], calls: 0, usec: 0, xpendingUsec: 0 })
}

// ---- measurement: interleaved rounds of blocks ---------------------------------------------
const t0 = performance.now()
for (let round = 0; round < ROUNDS; round++) {
  const calls = Math.min(BLOCK, ITERATIONS - round * BLOCK)
  for (let k = 0; k < CONSUMERS.length; k++) {
    const n = CONSUMERS[(round + k) % CONSUMERS.length]!
    for (const kind of KINDS) {
      const a = acc.get(`${n} ${kind}`)!
      const { call, after } = await prepare(kind, queueOf(n), calls)
      const s0 = await commandstats()
      for (let i = 0; i < calls; i++) {
        const t = performance.now()
        await call()
        a.lat.push((performance.now() - t) * 1000)
      }
      const s1 = await commandstats()
      const delta = (cmd: string, f: keyof Cmdstat) => (s1.get(cmd)?.[f] ?? 0) - (s0.get(cmd)?.[f] ?? 0)
      // No other client runs: every FCALL in the block is the measured calls' own.
      expect(delta('fcall', 'calls') >= calls, `${calls} FCALLs in the block, saw ${delta('fcall', 'calls')}`)
      a.calls += calls
      a.usec += delta('fcall', 'usec')
      a.xpendingUsec += delta('xpending', 'usec')
      await after?.()
    }
  }
  process.stderr.write(`… round ${round + 1}/${ROUNDS}\n`)
}
const seconds = (performance.now() - t0) / 1000

// ---- report --------------------------------------------------------------------------------
function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? 0
}
const lines = [
  `One-job worker calls vs consumers in the group${SMOKE ? ' — SMOKE (tiny sizes: not a measurement)' : ''}`,
  `${ITERATIONS} calls per kind and N, in blocks of ${BLOCK} interleaved across N (${seconds.toFixed(1)} s); node ${process.version}; private redis-server, AOF off`,
  '',
  '| consumers | call | client median µs | p99 µs | Redis µs/call | of which XPENDING µs/call |',
  '|---:|---|---:|---:|---:|---:|',
]
for (const n of CONSUMERS) {
  for (const kind of KINDS) {
    const a = acc.get(`${n} ${kind}`)!
    lines.push(
      `| ${n} | ${kind} | ${percentile(a.lat, 50).toFixed(0)} | ${percentile(a.lat, 99).toFixed(0)} | ${(a.usec / a.calls).toFixed(1)} | ${(a.xpendingUsec / a.calls).toFixed(1)} |`,
    )
  }
}
const lo = Math.min(...CONSUMERS)
const hi = Math.max(...CONSUMERS)
if (lo !== hi) {
  lines.push('', `${hi} consumers vs ${lo}:`, '')
  lines.push('| call | client median | Redis µs/call |', '|---|---:|---:|')
  for (const kind of KINDS) {
    const a = acc.get(`${lo} ${kind}`)!
    const b = acc.get(`${hi} ${kind}`)!
    const med = percentile(b.lat, 50) / percentile(a.lat, 50)
    const red = b.usec / b.calls / (a.usec / a.calls)
    lines.push(`| ${kind} | ${med.toFixed(2)}× | ${red.toFixed(2)}× |`)
  }
}
process.stdout.write(`${lines.join('\n')}\n`)

await q.close()
admin.disconnect()
stop()
