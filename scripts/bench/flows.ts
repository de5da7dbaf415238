/**
 * Flows against plain jobs (ADR 0019), on a private redis-server (AOF off, as the bench):
 *
 *   throughput  the same number of jobs run as 3-level fan-out/fan-in flows (root → 10 → 100
 *               → 10 joins of 10 → sink: 122 nodes each) and as plain jobs added in bulk, one
 *               in-process worker (concurrency 100, a no-op handler); runs interleaved
 *               (plain, flow, plain, flow, …), medians with min–max, and the ratio
 *   memory      Redis memory per waiting child: INFO used_memory before and after a flow whose
 *               root never runs and N children wait on it (the record's share included), next
 *               to the same for N plain queued jobs
 *
 *   node scripts/bench/flows.ts            (~1 min)
 *   node scripts/bench/flows.ts --smoke    tiny sizes, one run
 */
import { Queue, Worker } from '@dtq/app'
import type { FlowNodeSpec } from '../../app/src/queue/flows.ts'
import { privateRedis } from './private-redis.ts'

const SMOKE = process.argv.includes('--smoke')
const RUNS = SMOKE ? 1 : 3
const FLOWS = SMOKE ? 2 : 40
const N_MEM = SMOKE ? 500 : 5000

/** One 3-level fan-out/fan-in flow of 122 nodes. */
function fanFlow(): FlowNodeSpec[] {
  const n = (key: string, depends_on: string[] = []): FlowNodeSpec => ({
    key,
    task_type: 'noop',
    payload: { k: key },
    depends_on,
  })
  const nodes = [n('root')]
  for (let a = 0; a < 10; a++) nodes.push(n(`a${a}`, ['root']))
  for (let b = 0; b < 100; b++) nodes.push(n(`b${b}`, [`a${Math.floor(b / 10)}`]))
  for (let c = 0; c < 10; c++)
    nodes.push(
      n(
        `c${c}`,
        Array.from({ length: 10 }, (_, i) => `b${c * 10 + i}`),
      ),
    )
  nodes.push(
    n(
      'sink',
      Array.from({ length: 10 }, (_, i) => `c${i}`),
    ),
  )
  return nodes
}
const FLOW_SIZE = fanFlow().length

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}
const range = (xs: number[]) =>
  `${median(xs).toFixed(0)} (${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)})`

const { port, cfg, stop } = await privateRedis('bf', { FLOW_MAX_NODES: String(Math.max(1000, N_MEM + 1)) })
const used = async (q: Queue) => Number(/^used_memory:(\d+)/m.exec(await q.redis.info('memory'))?.[1])

/** Jobs per second from the first submission to the last completion, with a fresh prefix. */
async function run(kind: 'plain' | 'flow', i: number): Promise<number> {
  const c = { ...cfg, keyPrefix: `bf${kind}${i}` }
  const q = await Queue.connect(c)
  const w = new Worker(c, { builtins: false, janitorEveryMs: 3_600_000 })
  w.handle('noop', (job) => ({ ok: job.id }))
  await w.start()
  const total = FLOWS * FLOW_SIZE
  const t0 = performance.now()
  if (kind === 'plain') {
    for (let k = 0; k < total; k += 500)
      await q.addBulk(
        Array.from({ length: Math.min(500, total - k) }, (_, j) => ({
          task_type: 'noop',
          payload: { k: k + j },
        })),
      )
  } else {
    await Promise.all(Array.from({ length: FLOWS }, () => q.addFlow({ nodes: fanFlow() })))
  }
  for (;;) {
    const done = Number(await q.redis.hget(q.store.keys.stats('default'), 'completed'))
    if (done >= total) break
    await new Promise((r) => setTimeout(r, 5))
  }
  const rate = total / ((performance.now() - t0) / 1000)
  await w.close()
  await q.close()
  return rate
}

const plain: number[] = []
const flow: number[] = []
for (let i = 0; i < RUNS; i++) {
  plain.push(await run('plain', i))
  flow.push(await run('flow', i))
}

// Memory: N children waiting on a root that never runs (no worker), against N plain queued jobs.
const mq = await Queue.connect({ ...cfg, keyPrefix: 'bfm' })
await mq.add('noop', {}) // the queue's fixed keys exist before the first reading
const m0 = await used(mq)
const children: FlowNodeSpec[] = Array.from({ length: N_MEM }, (_, i) => ({
  key: `c${i}`,
  task_type: 'noop',
  payload: { n: 1 },
  depends_on: ['root'],
}))
await mq.addFlow({ nodes: [{ key: 'root', task_type: 'noop', payload: { n: 1 } }, ...children] })
const m1 = await used(mq)
for (let k = 0; k < N_MEM; k += 1000)
  await mq.addBulk(Array.from({ length: 1000 }, () => ({ task_type: 'noop', payload: { n: 1 } })))
const m2 = await used(mq)
await mq.close()
stop()

console.log(
  `flows bench (redis :${port}, ${RUNS} interleaved runs, ${FLOWS} flows × ${FLOW_SIZE} nodes = ${FLOWS * FLOW_SIZE} jobs each)`,
)
console.log(`  plain jobs      ${range(plain)} jobs/s`)
console.log(`  flow nodes      ${range(flow)} jobs/s`)
console.log(`  flow / plain    ${(median(flow) / median(plain)).toFixed(2)}`)
const perChild = (m1 - m0) / N_MEM
const perPlain = (m2 - m1) / N_MEM
console.log(`  memory per waiting child  ${perChild.toFixed(0)} B (flow record share included; N = ${N_MEM})`)
console.log(`  memory per queued job     ${perPlain.toFixed(0)} B`)
console.log(`  child / plain             ${(perChild / perPlain).toFixed(2)}`)
