// Profiling aid: traces a drain's worker calls (deliver / fetch / complete): when each was
// sent and answered, how many jobs it carried, and how many calls were in flight, to find
// where Node and Redis wait on each other. Usage: node scripts/bench/trace-drain.ts [N]
import { Queue, Worker } from '@dtq/app'
import { JobStore } from '../../app/src/redis/store.ts'
import { privateRedis } from './private-redis.ts'

const N = Number(process.argv[2] ?? 50000)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const { cfg, stop } = await privateRedis('p', { WORKER_CONCURRENCY: process.env.CONCURRENCY ?? '100' })
const q = await Queue.connect(cfg)
for (let i = 0; i < N; i += 1000)
  await q.addBulk(Array.from({ length: Math.min(1000, N - i) }, () => ({ task_type: 'noop', payload: {} })))

interface Call {
  kind: string
  sent: number
  done: number
  fin: number
  got: number
  inflight: number
}
const calls: Call[] = []
let inflight = 0
const proto = JobStore.prototype as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>
for (const kind of ['deliver', 'fetch', 'complete']) {
  const orig = proto[kind]!
  proto[kind] = async function (this: unknown, ...a: unknown[]) {
    const c: Call = {
      kind,
      sent: performance.now(),
      done: 0,
      fin:
        kind === 'fetch' ? (a[3] as unknown[]).length : kind === 'complete' ? (a[1] as unknown[]).length : 0,
      got: 0,
      inflight: ++inflight,
    }
    calls.push(c)
    try {
      const r = (await orig.apply(this, a)) as { jobs?: unknown[] } | number[]
      c.got = Array.isArray(r) ? 0 : (r.jobs?.length ?? 0)
      return r
    } finally {
      c.done = performance.now()
      inflight--
    }
  }
}
const w = new Worker(cfg, { builtins: false, janitorEveryMs: 3_600_000 })
w.handle('noop', () => null)
const t0 = performance.now()
await w.start()
while (Number(await q.redis.hget(q.store.keys.stats('default'), 'completed')) < N) await sleep(10)
const s = (performance.now() - t0) / 1000
console.log(`drain ${N}: ${(N / s).toFixed(0)} jobs/s`)
// Calls still open at the end (the last fetches, a blocking wait) have no round trip: left out.
const ended = calls.filter((c) => c.done > 0)
const by = new Map<string, { n: number; fin: number; got: number; ms: number }>()
for (const c of ended) {
  const b = by.get(c.kind) ?? { n: 0, fin: 0, got: 0, ms: 0 }
  b.n++
  b.fin += c.fin
  b.got += c.got
  b.ms += c.done - c.sent
  by.set(c.kind, b)
}
for (const [k, b] of by)
  console.log(
    `${k.padEnd(9)} calls ${b.n}  finished/call ${(b.fin / b.n).toFixed(1)}  started/call ${(b.got / b.n).toFixed(1)}  ms/call ${(b.ms / b.n).toFixed(2)}`,
  )
// In-flight histogram over time (sampled at each send)
const hist = new Map<number, number>()
for (const c of ended) hist.set(c.inflight, (hist.get(c.inflight) ?? 0) + 1)
console.log(
  'in flight at send:',
  [...hist]
    .sort((a, b) => a[0] - b[0])
    .map(([k, v]) => `${k}:${v}`)
    .join(' '),
)
// Time with 0 calls in flight
const ev: Array<[number, number]> = []
for (const c of ended) ev.push([c.sent, 1], [c.done, -1])
ev.sort((a, b) => a[0] - b[0])
let cur = 0,
  last = ev[0]![0]
const occ = new Map<number, number>()
for (const [t, d] of ev) {
  occ.set(cur, (occ.get(cur) ?? 0) + t - last)
  cur += d
  last = t
}
const total = last - ev[0]![0]
console.log(
  'time share by calls in flight:',
  [...occ]
    .sort((a, b) => a[0] - b[0])
    .map(([k, v]) => `${k}:${((100 * v) / total).toFixed(0)}%`)
    .join(' '),
)
// Convoys: two calls sent within 100 µs of each other (Redis reads both in one event-loop turn,
// runs both, and writes both replies at its end: the first waits for the second).
{
  const sends = ended.filter((c) => c.kind === 'fetch').map((c) => c.sent)
  let close = 0
  for (let i = 1; i < sends.length; i++) if (sends[i]! - sends[i - 1]! < 0.1) close++
  const gaps = ended
    .filter((c) => c.kind === 'fetch')
    .map((c, i, a) => (i ? c.done - a[i - 1]!.done : 0))
    .slice(1)
    .sort((a, b) => a - b)
  const q = (f: number) => gaps[Math.floor(f * (gaps.length - 1))]!.toFixed(2)
  console.log(
    `sends within 0.1 ms of the previous: ${close} of ${sends.length}; ms between replies p10 ${q(0.1)} p50 ${q(0.5)} p90 ${q(0.9)} p99 ${q(0.99)}`,
  )
}
if (process.env.DUMP) {
  const mid = calls.slice(Math.floor(calls.length / 2), Math.floor(calls.length / 2) + 40)
  const base = mid[0]!.sent
  for (const c of mid)
    console.log(
      `${c.kind.padEnd(8)} +${(c.sent - base).toFixed(2).padStart(7)} → +${(c.done - base).toFixed(2).padStart(7)}  fin ${c.fin} got ${c.got} inflight ${c.inflight}`,
    )
}
await w.close(1000)
await q.close()
stop()
