/**
 * pnpm idle-fleet: the Redis load of a fleet of idle workers -- issue 14 item 12, "measure Redis
 * commands per second for 50 idle workers × 20 queues; it must not grow with the product".
 *
 * For each shape W×Q in --shapes: a fresh private redis-server; W Worker instances with default
 * settings (LEASE_MS, CLAIM_IDLE_MS, concurrency, poll and heartbeat periods as in production),
 * each serving the same Q queues, spread over a few child processes; no jobs. After a warm-up,
 * INFO commandstats is sampled twice --seconds apart; then a short MONITOR sample (after that
 * window, so it does not weigh on it) splits the load into the commands clients send and those
 * run inside functions, and names the functions called.
 *
 *   pnpm idle-fleet                          shapes 10x20, 50x4, 50x20; 10 s warm-up, 30 s window
 *   pnpm idle-fleet --shapes 50x20 --seconds 60 --warmup 15 --monitor 5 --procs 4
 *   pnpm idle-fleet --workers 50 --queues 20 one shape (same as --shapes 50x20)
 *   pnpm idle-fleet --smoke                  3 workers × 2 queues, 3 s
 *
 * The default window is 30 s, not 20: the janitor runs every 30 s and the reclaimer every
 * CLAIM_IDLE_MS / 2 = 15 s, so a 30 s window counts each periodic loop at its real rate (a 20 s
 * window catches a janitor tick or not depending on phase).
 */
import { type ChildProcess, fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { loadConfig, Worker } from '@dtq/app'
import { Redis } from 'ioredis'
import { monitorRedis } from '../../app/test/monitor.ts'
import { privateRedis } from './private-redis.ts'

const SMOKE = process.argv.includes('--smoke')
function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? (process.argv[i + 1] ?? fallback) : fallback
}
const PREFIX = 'if'
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

type ToChild = { type: 'cpu' } | { type: 'stop' }
type FromChild = { type: 'ready' } | { type: 'cpu'; usec: number }

// ---- child: runs its share of the fleet until told to stop --------------------------------

async function child(url: string, workers: number, queues: string): Promise<void> {
  const cfg = loadConfig({ REDIS_URL: url, KEY_PREFIX: PREFIX, WORKER_QUEUES: queues, LOG_LEVEL: 'silent' })
  const fleet = Array.from({ length: workers }, () => new Worker(cfg))
  await Promise.all(fleet.map((w) => w.start()))
  const send = (m: FromChild) => process.send?.(m)
  process.on('disconnect', () => process.exit(1)) // the parent is gone
  process.on('message', (m: ToChild) => {
    if (m.type === 'cpu') {
      const u = process.cpuUsage()
      send({ type: 'cpu', usec: u.user + u.system })
    } else if (m.type === 'stop') {
      void Promise.all(fleet.map((w) => w.close(1000))).then(() => process.exit(0))
    }
  })
  send({ type: 'ready' })
}

// ---- parent --------------------------------------------------------------------------------

interface Cmdstat {
  calls: number
  usec: number
}
interface Snapshot {
  at: number
  cmds: Map<string, Cmdstat>
  redisCpuUsec: number
  clientCpuUsec: number
}
interface Result {
  workers: number
  queues: number
  procs: number
  seconds: number
  /** Per command: calls/s and µs/call, from commandstats (commands run inside functions included). */
  perCommand: Array<{ cmd: string; perS: number; usecPerCall: number; usecPerS: number }>
  allPerS: number
  fcallPerS: number
  redisCpu: number
  clientCpu: number
  /** From MONITOR: what clients send, and what runs inside functions, per second. */
  monitor: { seconds: number; topLevelPerS: number; insidePerS: number; byLabel: Array<[string, number]> }
}

function parseShapes(): Array<{ workers: number; queues: number }> {
  const w = flag('workers', '')
  const q = flag('queues', '')
  const text = SMOKE ? '3x2' : w || q ? `${w || 50}x${q || 20}` : flag('shapes', '10x20,50x4,50x20')
  return text.split(',').map((s) => {
    const [workers, queues] = s.split('x').map(Number)
    if (!workers || !queues) throw new Error(`bad shape "${s}" (want WxQ, e.g. 50x20)`)
    return { workers, queues }
  })
}

async function startChildren(url: string, workers: number, queues: string, procs: number) {
  const kids: ChildProcess[] = []
  const ready: Promise<void>[] = []
  for (let p = 0; p < procs; p++) {
    const share = Math.floor(workers / procs) + (p < workers % procs ? 1 : 0)
    const c = fork(fileURLToPath(import.meta.url), ['--child', url, String(share), queues])
    kids.push(c)
    ready.push(
      new Promise((resolve, reject) => {
        c.once('exit', (code) => reject(new Error(`child exited with ${code} before it was ready`)))
        c.on('message', (m: FromChild) => {
          if (m.type === 'ready') resolve()
        })
      }),
    )
  }
  await Promise.all(ready)
  return kids
}

function ask(kid: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    const on = (m: FromChild) => {
      if (m.type !== 'cpu') return
      kid.off('message', on)
      resolve(m.usec)
    }
    kid.on('message', on)
    kid.send({ type: 'cpu' } satisfies ToChild)
  })
}

async function snapshot(admin: Redis, kids: ChildProcess[]): Promise<Snapshot> {
  const [stats, cpu, clientCpu] = await Promise.all([
    admin.info('commandstats'),
    admin.info('cpu'),
    Promise.all(kids.map(ask)),
  ])
  const cmds = new Map<string, Cmdstat>()
  for (const m of stats.matchAll(/^cmdstat_(\S+?):calls=(\d+),usec=(\d+)/gm))
    cmds.set(m[1]!, { calls: Number(m[2]), usec: Number(m[3]) })
  const v = (k: string) => Number(new RegExp(`^${k}:([\\d.]+)`, 'm').exec(cpu)?.[1] ?? 0)
  return {
    at: performance.now(),
    cmds,
    redisCpuUsec: (v('used_cpu_user_main_thread') + v('used_cpu_sys_main_thread')) * 1e6,
    clientCpuUsec: clientCpu.reduce((a, b) => a + b, 0),
  }
}

/** A command as a label: FCALL by function name, others by name and key shape. */
function label(args: string[]): string {
  const cmd = args[0]!.toUpperCase()
  if (cmd === 'FCALL' || cmd === 'FCALL_RO') {
    const fn = args[1] ?? ''
    return `FCALL ${/^dtq_[0-9a-f]+_(.+)$/i.exec(fn)?.[1] ?? fn}`
  }
  const key = args.slice(1).find((a) => a.startsWith(`${PREFIX}:`))
  if (!key) return cmd
  return `${cmd} ${key.replace(/\{[^}]*\}/, '{q}').replace(/:worker:.*/, ':worker:<id>')}`
}

async function monitorSample(port: number, seconds: number): Promise<Result['monitor']> {
  // On a plain socket (monitorRedis): ioredis's monitor() takes a busy server's first lines,
  // read with MONITOR's OK, as replies to no command ("Command queue state error").
  const counts = new Map<string, number>()
  let topLevel = 0
  let inside = 0
  const mon = await monitorRedis(`redis://127.0.0.1:${port}`, (args, source) => {
    if (source === 'lua') {
      inside++
      return
    }
    topLevel++
    const l = label(args)
    counts.set(l, (counts.get(l) ?? 0) + 1)
  })
  await sleep(seconds * 1000)
  mon.close()
  return {
    seconds,
    topLevelPerS: topLevel / seconds,
    insidePerS: inside / seconds,
    byLabel: [...counts].map(([l, n]): [string, number] => [l, n / seconds]).sort((a, b) => b[1] - a[1]),
  }
}

async function runShape(workers: number, queues: number): Promise<Result> {
  const warmup = Number(flag('warmup', SMOKE ? '2' : '10'))
  const seconds = Number(flag('seconds', SMOKE ? '3' : '30'))
  const monitorSeconds = Number(flag('monitor', SMOKE ? '1' : '3'))
  const procs = Math.min(workers, Number(flag('procs', '0')) || Math.ceil(workers / 25))
  const queueNames = Array.from({ length: queues }, (_, i) => `q${i}`).join(',')
  const { port, stop } = await privateRedis(PREFIX)
  const admin = new Redis({ port })
  let kids: ChildProcess[] = []
  try {
    process.stderr.write(`… ${workers}×${queues}: starting ${workers} workers in ${procs} process(es)\n`)
    kids = await startChildren(`redis://127.0.0.1:${port}`, workers, queueNames, procs)
    process.stderr.write(`… warm-up ${warmup} s, then a ${seconds} s window\n`)
    await sleep(warmup * 1000)
    const s0 = await snapshot(admin, kids)
    await sleep(seconds * 1000)
    const s1 = await snapshot(admin, kids)
    const monitor = monitorSeconds > 0 ? await monitorSample(port, monitorSeconds) : null
    const dt = (s1.at - s0.at) / 1000
    const perCommand = [...s1.cmds]
      .filter(([cmd]) => cmd !== 'info') // the benchmark's own
      .map(([cmd, c]) => {
        const b = s0.cmds.get(cmd) ?? { calls: 0, usec: 0 }
        const calls = c.calls - b.calls
        const usec = c.usec - b.usec
        return { cmd, perS: calls / dt, usecPerCall: calls ? usec / calls : 0, usecPerS: usec / dt }
      })
      .filter((c) => c.perS > 0)
      .sort((a, b) => b.perS - a.perS)
    return {
      workers,
      queues,
      procs,
      seconds: dt,
      perCommand,
      allPerS: perCommand.reduce((a, c) => a + c.perS, 0),
      fcallPerS: perCommand.find((c) => c.cmd === 'fcall')?.perS ?? 0,
      redisCpu: (s1.redisCpuUsec - s0.redisCpuUsec) / 1e6 / dt,
      clientCpu: (s1.clientCpuUsec - s0.clientCpuUsec) / 1e6 / dt,
      monitor: monitor ?? { seconds: 0, topLevelPerS: 0, insidePerS: 0, byLabel: [] },
    }
  } finally {
    await Promise.all(
      kids.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null) return resolve()
            c.once('exit', () => resolve())
            c.send({ type: 'stop' } satisfies ToChild)
          }),
      ),
    )
    admin.disconnect()
    stop()
  }
}

function report(r: Result): string {
  const pct = (x: number) => `${(x * 100).toFixed(1)} %`
  const lines = [
    `## ${r.workers} workers × ${r.queues} queues (${r.procs} process${r.procs > 1 ? 'es' : ''}), ${r.seconds.toFixed(1)} s window`,
    '',
    `commands/s ${r.allPerS.toFixed(0)} (every command Redis ran, those inside functions included; FCALL ${r.fcallPerS.toFixed(0)}/s)`,
    `Redis main-thread CPU ${pct(r.redisCpu)} of a core; worker processes' CPU ${pct(r.clientCpu)} of a core`,
    '',
    '| command | calls/s | µs/call | Redis µs/s |',
    '|---|---:|---:|---:|',
  ]
  for (const c of r.perCommand)
    lines.push(`| ${c.cmd} | ${c.perS.toFixed(1)} | ${c.usecPerCall.toFixed(1)} | ${c.usecPerS.toFixed(0)} |`)
  if (r.monitor.seconds) {
    lines.push(
      '',
      `MONITOR, ${r.monitor.seconds} s after the window: clients send ${r.monitor.topLevelPerS.toFixed(0)} commands/s; ${r.monitor.insidePerS.toFixed(0)}/s run inside functions`,
      '',
      '| sent by clients | per s |',
      '|---|---:|',
    )
    for (const [l, n] of r.monitor.byLabel) lines.push(`| ${l} | ${n.toFixed(1)} |`)
  }
  return lines.join('\n')
}

async function main(): Promise<void> {
  const shapes = parseShapes()
  const results: Result[] = []
  for (const s of shapes) {
    const r = await runShape(s.workers, s.queues)
    results.push(r)
    process.stdout.write(`${report(r)}\n\n`)
  }
  const lines = [
    `Idle fleet: Redis load by shape${SMOKE ? ' — SMOKE (tiny sizes: not a measurement)' : ''}; node ${process.version}; default worker settings; private redis-server`,
    '',
    '| workers × queues | commands/s (all) | sent by clients/s (MONITOR sample) | FCALL/s | Redis CPU | per worker /s | per worker×queue /s |',
    '|---|---:|---:|---:|---:|---:|---:|',
  ]
  for (const r of results)
    lines.push(
      `| ${r.workers} × ${r.queues} | ${r.allPerS.toFixed(0)} | ${r.monitor.topLevelPerS.toFixed(0)} | ${r.fcallPerS.toFixed(0)} | ${(r.redisCpu * 100).toFixed(1)} % | ${(r.allPerS / r.workers).toFixed(1)} | ${(r.allPerS / (r.workers * r.queues)).toFixed(2)} |`,
    )
  process.stdout.write(`${lines.join('\n')}\n`)
}

if (process.argv[2] === '--child') {
  await child(process.argv[3]!, Number(process.argv[4]), process.argv[5]!)
} else {
  await main()
  process.exit(0)
}
