// Profiling aid: where DTQ's Node side allocates, per job, in one of the bench's scenarios run by
// DTQ's library against a private redis-server (a warm-up round first, then one sampled round):
// V8's sampling heap profiler with the objects the GCs collected included, so it counts garbage,
// not just what is alive at the end. `--promoted` leaves out what a scavenge collected: what
// is left outlived the young generation (and is what the major GCs behind a latency tail free).
// Prints bytes per job by allocating function, then by its callers.
// Usage: node scripts/bench/profile-alloc.ts [saturated|latency|drain] [jobs=100000] [--promoted]
import { Session } from 'node:inspector/promises'
import { LAT_RATE, LAT_SECONDS, startServer, stopServer } from './bench-kit.ts'
import { dtqLibrary } from './dtq.ts'

type Scenario = 'saturated' | 'latency' | 'drain'
const args = process.argv.slice(2).filter((a) => !a.startsWith('--'))
const scenario = (args[0] ?? 'saturated') as Scenario
const promoted = process.argv.includes('--promoted')
const n = scenario === 'latency' ? LAT_RATE * LAT_SECONDS : Number(args[1] ?? 100_000)
if (!['saturated', 'latency', 'drain'].includes(scenario)) throw new Error(`unknown scenario ${scenario}`)

await startServer()
const dtq = dtqLibrary()
const round = () => (scenario === 'latency' ? dtq.latency!() : dtq[scenario]!(n))
await round()
const s = new Session()
s.connect()
await s.post('HeapProfiler.enable')
await s.post('HeapProfiler.startSampling', {
  samplingInterval: 8192,
  includeObjectsCollectedByMajorGC: true,
  includeObjectsCollectedByMinorGC: !promoted,
})
const figures = await round()
const { profile } = await s.post('HeapProfiler.stopSampling')
s.disconnect()
stopServer()

interface Node {
  callFrame: { functionName: string; url: string; lineNumber: number }
  selfSize: number
  children: Node[]
}
const bySelf = new Map<string, number>()
const byStack = new Map<string, number>()
let total = 0
const walk = (node: Node, path: string[]): void => {
  const { functionName, url, lineNumber } = node.callFrame
  const here = [
    ...path,
    `${functionName || '(anonymous)'} ${url.split('/').slice(-2).join('/')}:${lineNumber + 1}`,
  ]
  if (node.selfSize) {
    total += node.selfSize
    const leaf = here.at(-1)!
    bySelf.set(leaf, (bySelf.get(leaf) ?? 0) + node.selfSize)
    const stack = here.slice(-4).reverse().join(' < ')
    byStack.set(stack, (byStack.get(stack) ?? 0) + node.selfSize)
  }
  for (const c of node.children) walk(c, here)
}
walk(profile.head as unknown as Node, [])
const top = (m: Map<string, number>, k: number) => [...m].sort((a, b) => b[1] - a[1]).slice(0, k)
console.log(`${scenario}, ${n} jobs: ${JSON.stringify(figures)}`)
console.log(
  `sampled ${promoted ? 'promoted (outlived a scavenge) ' : ''}allocations: ${(total / n).toFixed(0)} B per job`,
)
for (const [k, v] of top(bySelf, 25))
  console.log(`${((100 * v) / total).toFixed(1).padStart(5)} % ${(v / n).toFixed(0).padStart(6)} B/job  ${k}`)
console.log('by stack (allocating function < its callers):')
for (const [k, v] of top(byStack, 20))
  console.log(`${((100 * v) / total).toFixed(1).padStart(5)} %  ${k.slice(0, 200)}`)
process.exit(0)
