// A/B of the worker's whole drain path, Node side included: this tree against a base commit
// (checked out once in a git worktree under /tmp), each side draining N queued no-op jobs in a
// child process of its own (drain-child.ts), alternating A B B A ... against one private
// redis-server, each run under a fresh key prefix (flushed after). Prints every run and the
// medians of B/A for jobs/s, the worker's Node CPU per job and Redis CPU per job.
// Usage: node scripts/bench/drain-ab.ts [--base REF (HEAD)] [--runs 6] [--jobs 50000]
import { execFileSync, spawn } from 'node:child_process'
import { existsSync, mkdirSync, symlinkSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { Redis } from 'ioredis'
import { privateRedis } from './private-redis.ts'

const arg = (k: string, d: string) => {
  const i = process.argv.indexOf(k)
  return i >= 0 ? process.argv[i + 1]! : d
}
const RUNS = Number(arg('--runs', '6'))
const N = Number(arg('--jobs', '50000'))
const here = dirname(new URL(import.meta.url).pathname)
const root = execFileSync('git', ['rev-parse', '--show-toplevel'], { cwd: here, encoding: 'utf8' }).trim()
const sha = execFileSync('git', ['rev-parse', arg('--base', 'HEAD')], { cwd: root, encoding: 'utf8' }).trim()
const wt = `/tmp/dtq-ab-${sha.slice(0, 12)}`
if (!existsSync(wt)) {
  execFileSync('git', ['worktree', 'add', '--detach', wt, sha], { cwd: root, stdio: 'ignore' })
  // The base's code with this checkout's installed packages (its app's imports resolve there).
  for (const d of ['node_modules', 'app/node_modules']) {
    mkdirSync(dirname(join(wt, d)), { recursive: true })
    if (!existsSync(join(wt, d))) symlinkSync(join(root, d), join(wt, d))
  }
}
const sides = { A: join(wt, 'app/src/index.ts'), B: join(root, 'app/src/index.ts') }

const { port, stop } = await privateRedis('ab')
const admin = new Redis({ port })
type Run = { jobsPerS: number; nodeUsPerJob: number; redisUsPerJob: number }
const runs: Record<'A' | 'B', Run[]> = { A: [], B: [] }

function child(side: 'A' | 'B', prefix: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const p = spawn(
      process.execPath,
      [join(here, 'drain-child.ts'), sides[side], String(port), prefix, String(N)],
      { cwd: here, stdio: ['ignore', 'pipe', 'inherit'] },
    )
    let out = ''
    p.stdout.on('data', (d) => {
      out += d
    })
    p.on('exit', (code) =>
      code === 0
        ? resolve(JSON.parse(out.trim().split('\n').pop()!))
        : reject(new Error(`${side} exited ${code}`)),
    )
  })
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}
console.log(
  `drain A/B: A = ${sha.slice(0, 9)} (base), B = this tree; ${N} no-op jobs, concurrency 100, ${RUNS} runs each`,
)
for (let i = 0; i < RUNS; i++) {
  for (const side of i % 2 ? (['B', 'A'] as const) : (['A', 'B'] as const)) {
    const r = await child(side, `ab${i}${side}`)
    runs[side].push(r)
    await admin.flushall()
    console.log(
      `  ${side} run ${i + 1}: ${r.jobsPerS.toFixed(0)} jobs/s, Node ${r.nodeUsPerJob.toFixed(2)} µs/job, Redis ${r.redisUsPerJob.toFixed(2)} µs/job`,
    )
  }
}
for (const k of ['jobsPerS', 'nodeUsPerJob', 'redisUsPerJob'] as const) {
  const ratios = runs.B.map((b, i) => b[k] / runs.A[i]![k])
  console.log(
    `${k.padEnd(14)} A ${median(runs.A.map((r) => r[k])).toFixed(2)}  B ${median(runs.B.map((r) => r[k])).toFixed(2)}  B/A median ${median(ratios).toFixed(3)} (${Math.min(...ratios).toFixed(3)}–${Math.max(...ratios).toFixed(3)})`,
  )
}
admin.disconnect()
stop()
process.exit(0)
