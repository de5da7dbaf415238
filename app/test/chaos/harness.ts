/**
 * The fault-injection harness (docs/reliability.md): real redis-server processes with AOF, real
 * `dtq api` / `dtq worker` processes, a TCP proxy to break the Redis link, a load generator that
 * records every submission as accepted / rejected / indeterminate, a ledger of executions kept
 * outside Redis, and a checker that counts lost / duplicated / unexpected / indeterminate jobs
 * and the engine's own invariants.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs'
import { createServer, type Server, Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  callOnKey,
  connectRedis,
  createRedis,
  type RedisClient,
  type RedisTarget,
  scanKeys,
  standalone,
} from '../../src/redis/connection.ts'
import { GROUP, Keys } from '../../src/redis/keys.ts'
import { canConnect, freePort } from '../../src/redis/local-server.ts'
import { targetEnv, waitFor } from '../helpers.ts'
import { FIXTURE_HANDLERS, launch, readLedger, type WorkerProcess } from '../processes.ts'

export const FULL = process.env.CHAOS_FULL === '1'
export const Q = 'default'
const PRIOS = ['high', 'normal', 'low'] as const

/** A private redis-server we can kill, stop and restart. */
export class RedisServer {
  readonly port: number
  readonly dir: string
  proc!: ChildProcess
  private readonly extra: string[]

  private constructor(port: number, dir: string, extra: string[]) {
    this.port = port
    this.dir = dir
    this.extra = extra
  }

  static async start(opts: { aof?: 'everysec' | 'always'; maxmemory?: string } = {}): Promise<RedisServer> {
    const dir = mkdtempSync(join(tmpdir(), 'dtq-chaos-redis-'))
    const extra = [
      '--appendonly',
      'yes',
      '--appendfsync',
      opts.aof ?? 'everysec',
      '--maxmemory-policy',
      'noeviction',
    ]
    if (opts.maxmemory) extra.push('--maxmemory', opts.maxmemory)
    const s = new RedisServer(await freePort(), dir, extra)
    await s.launch()
    return s
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`
  }

  private async launch(): Promise<void> {
    mkdirSync(this.dir, { recursive: true })
    this.proc = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--dir',
        this.dir,
        '--save',
        '',
        '--logfile',
        '',
        ...this.extra,
      ],
      {
        stdio: 'ignore',
      },
    )
    await waitFor(() => canConnect('127.0.0.1', this.port, 200), {
      timeoutMs: 10_000,
      what: 'redis-server up',
    })
  }

  async kill9(): Promise<void> {
    const exited = new Promise((r) => this.proc.once('exit', r))
    this.proc.kill('SIGKILL')
    await exited
  }

  async restart(): Promise<void> {
    await this.launch()
  }

  stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode) return Promise.resolve()
    const exited = new Promise<void>((r) => this.proc.once('exit', () => r()))
    this.proc.kill('SIGCONT')
    this.proc.kill('SIGTERM')
    return exited
  }
}

/** A TCP proxy in front of Redis: pass, black-hole (accept, never answer) or drop replies. */
export class LinkProxy {
  mode: 'pass' | 'blackhole' | 'drop-replies' = 'pass'
  private readonly server: Server
  private readonly sockets = new Set<Socket>()
  port = 0

  constructor(target: number) {
    this.server = createServer((client) => {
      const upstream = new Socket()
      this.sockets.add(client).add(upstream)
      upstream.connect(target, '127.0.0.1')
      client.on('data', (d) => {
        if (this.mode !== 'blackhole') upstream.write(d)
      })
      upstream.on('data', (d) => {
        if (this.mode === 'pass') client.write(d)
      })
      const close = () => {
        client.destroy()
        upstream.destroy()
        this.sockets.delete(client)
        this.sockets.delete(upstream)
      }
      client.on('error', close).on('close', close)
      upstream.on('error', close).on('close', close)
    })
  }

  async listen(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()))
    this.port = (this.server.address() as { port: number }).port
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`
  }

  /** Cuts every open connection (clients reconnect through the proxy). */
  reset(): void {
    for (const s of this.sockets) s.destroy()
  }

  close(): void {
    this.reset()
    this.server.close()
  }
}

export type Proc = WorkerProcess

/**
 * One system under test: settings shared by its processes, and their handles. Its Redis is a
 * server's URL or any RedisTarget (a Cluster, a Sentinel group): the processes get the target's
 * settings (targetEnv), the checker connects to it the same way, and every check below is
 * slot-correct (the queue's keys share its hash tag; SCAN per primary; XINFO routed by key).
 */
export class System {
  readonly prefix = `c${Math.random().toString(36).slice(2, 8)}`
  readonly ledger: string
  readonly env: Record<string, string>
  readonly target: RedisTarget
  readonly procs: Proc[] = []
  redis!: RedisClient

  constructor(redis: string | RedisTarget, env: Record<string, string> = {}) {
    this.target = typeof redis === 'string' ? standalone(redis) : redis
    this.ledger = join(mkdtempSync(join(tmpdir(), 'dtq-ledger-')), 'ledger.txt')
    this.env = {
      ...targetEnv(this.target),
      KEY_PREFIX: this.prefix,
      LEDGER_FILE: this.ledger,
      LEASE_MS: '200',
      CLAIM_IDLE_MS: '1500',
      INITIAL_BACKOFF_MS: '50',
      MAX_BACKOFF_MS: '200',
      SHUTDOWN_TIMEOUT_MS: '3000',
      WORKER_CONCURRENCY: '8',
      RATE_LIMIT_PER_MIN: '0',
      API_DRAIN_DELAY_MS: '0',
      REDIS_COMMAND_TIMEOUT_MS: '1000',
      ...env,
    }
  }

  /** A client for the checker (its own connection, straight to Redis: a URL, or the system's target). */
  async connect(to: string | RedisTarget = this.target): Promise<void> {
    this.redis?.disconnect()
    this.redis = createRedis({ target: to, commandTimeoutMs: 5000 })
    await connectRedis(this.redis, 20_000)
  }

  worker(env: Record<string, string> = {}): Proc {
    const p = launch(['worker', '--handlers', FIXTURE_HANDLERS], { ...this.env, ...env })
    this.procs.push(p)
    return p
  }

  async api(env: Record<string, string> = {}, fixedPort?: number): Promise<{ proc: Proc; url: string }> {
    const port = fixedPort ?? (await freePort())
    const proc = launch(['api', '--port', String(port)], { ...this.env, ...env })
    this.procs.push(proc)
    const url = `http://127.0.0.1:${port}`
    await waitFor(async () => (await fetch(`${url}/health/live`)).ok, { timeoutMs: 20_000, what: 'api up' })
    return { proc, url }
  }

  async stop(): Promise<void> {
    for (const p of this.procs) if (p.child.exitCode === null) p.child.kill('SIGKILL')
    this.redis?.disconnect()
  }

  get keys(): Keys {
    return new Keys(this.prefix)
  }

  async completedIds(): Promise<Set<string>> {
    return new Set(await this.redis.zrange(this.keys.index(Q, 'completed'), 0, -1))
  }

  /** Waits until nothing is queued, scheduled, retrying or running. */
  async drained(timeoutMs = 45_000): Promise<void> {
    let left = ''
    try {
      await waitFor(
        async () => {
          // One command each (autopipelined; on a Cluster all go to the queue's node).
          const k = this.keys
          const res = await Promise.all([
            ...['scheduled', 'active', 'retrying'].map((s) => this.redis.zcard(k.index(Q, s))),
            ...PRIOS.map((pr) => this.redis.xlen(k.stream(Q, pr))),
            ...PRIOS.map((pr) => this.redis.xpending(k.stream(Q, pr), GROUP)),
          ])
          const counts = res.slice(0, 6).map(Number)
          left = `scheduled/active/retrying ${counts.slice(0, 3).join('/')}, stream lengths ${counts.slice(3).join('/')}, pending ${JSON.stringify(res.slice(6))}`
          return counts.every((n) => n === 0)
        },
        { timeoutMs, intervalMs: 200, what: 'queue drained' },
      )
    } catch (err) {
      // What was left says which part stopped (a stuck consumer, an unpromoted job, ...), and
      // the processes' last log lines (warn and up) say why.
      const streams: unknown[] = []
      for (const pr of PRIOS) {
        const key = this.keys.stream(Q, pr)
        const xinfo = (sub: string) =>
          Promise.resolve(callOnKey(this.redis, key, 'XINFO', sub, key)).catch((e: Error) => e.message)
        streams.push({ pr, info: await xinfo('STREAM'), groups: await xinfo('GROUPS') })
      }
      left += `\nstreams: ${JSON.stringify(streams)}`
      const workerKeys: string[] = []
      await scanKeys(this.redis, `${this.prefix}:worker:*`, (b) => {
        workerKeys.push(...b)
      }).catch(() => {})
      for (const wk of workerKeys)
        left += `\n${wk}: ${JSON.stringify(await this.redis.hgetall(wk).catch(() => ({})))}`
      // The process's scheduler state and CPU ticks (/proc/<pid>/stat): stopped (T), spinning (R), waiting (S).
      const procState = (pid: number | undefined) => {
        try {
          const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
          return `state ${f[0]}, utime ${f[11]}, stime ${f[12]}`
        } catch {
          return 'no /proc entry'
        }
      }
      const logs = this.procs.map(
        (p, i) =>
          `--- process ${i} (pid ${p.child.pid}, exit ${p.child.exitCode}, ${procState(p.child.pid)}):\n${p.output().slice(-3000)}`,
      )
      throw new Error(`${(err as Error).message}; left: ${left}\n${logs.join('\n')}`)
    }
  }

  /** The engine's own invariants after a run. */
  async invariants() {
    const k = this.keys
    const stats = await this.redis.hgetall(k.stats(Q))
    let pending = 0
    for (const p of PRIOS) {
      const r = (await this.redis.xpending(k.stream(Q, p), GROUP).catch(() => [0])) as [number]
      pending += Number(r[0] ?? 0)
    }
    return {
      pending,
      delayed: await this.redis.zcard(k.delayed(Q)),
      lost_entries: Number(stats.lost_entries ?? 0),
      orphan_entries: Number(stats.orphan_entries ?? 0),
      stale_writes: Number(stats.stale_writes ?? 0),
      stalled: Number(stats.stalled ?? 0),
    }
  }

  executions(): Map<string, number> {
    return readLedger(this.ledger)
  }
}

export type Outcome = 'accepted' | 'rejected' | 'indeterminate'

/**
 * Submits jobs over HTTP at a steady rate, each with a known id (job_id) and that id as its
 * idempotency key, recording what the API answered. An indeterminate submission (no answer,
 * reset, 5xx) is retried with the same key later: it must not create a second job.
 */
export class LoadGenerator {
  readonly outcomes = new Map<string, Outcome>()
  private seq = 0
  private stopped = false
  private readonly prefix = `L${Math.random().toString(36).slice(2, 7)}`

  private readonly url: string
  private readonly body: (id: string) => Record<string, unknown>
  private readonly ratePerSec: number

  /**
   * Resend at once (same idempotency key) a request whose connection closed before any answer
   * -- what a browser does on a reused keep-alive connection. Only for a client of nginx: a
   * reload makes nginx's old workers close their idle client connections, and a request sent on
   * one at that instant fails without ever reaching nginx. Counted in `reasons.resent`.
   */
  resendOnDroppedConnection = false

  constructor(url: string, body: (id: string) => Record<string, unknown>, ratePerSec = 200) {
    this.url = url
    this.body = body
    this.ratePerSec = ratePerSec
  }

  private async submit(id: string, resent = false): Promise<Outcome> {
    try {
      const r = await fetch(`${this.url}/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ...this.body(id), job_id: id, idempotency_key: id }),
        signal: AbortSignal.timeout(3000),
      })
      const body = await r.text()
      if (r.status === 200 || r.status === 201) return 'accepted'
      this.note(String(r.status))
      let code = '?'
      try {
        code = String((JSON.parse(body) as { code?: string }).code ?? '?')
      } catch {}
      this.codes[`${r.status} ${code}`] = (this.codes[`${r.status} ${code}`] ?? 0) + 1
      if (r.status >= 500 || r.status === 429) return 'indeterminate'
      return 'rejected'
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } }
      const code = e.cause?.code ?? e.name
      if (this.resendOnDroppedConnection && !resent && (code === 'UND_ERR_SOCKET' || code === 'ECONNRESET')) {
        this.note('resent')
        return this.submit(id, true)
      }
      this.note(code)
      return 'indeterminate'
    }
  }

  /** Why submissions were not accepted: HTTP status or error code -> count (for reports). */
  readonly reasons: Record<string, number> = {}
  /** The error replies by status and the API's code ("503 REPLICATION_TIMEOUT" -> count). */
  readonly codes: Record<string, number> = {}
  /** Each first submission of run(): when it was sent and answered, and how (for timelines). */
  readonly answers: Array<{ id: string; sentAt: number; at: number; outcome: Outcome }> = []

  /** Submissions sent at or after `t` (ms since the epoch) that were accepted. */
  acceptedSince(t: number): number {
    let n = 0
    for (const a of this.answers) if (a.sentAt >= t && a.outcome === 'accepted') n++
    return n
  }
  private note(reason: string): void {
    this.reasons[reason] = (this.reasons[reason] ?? 0) + 1
  }

  /** Runs until stop(); then retries the indeterminate ones once more. */
  async run(): Promise<void> {
    const interval = 1000 / this.ratePerSec
    const inflight = new Set<Promise<void>>()
    let next = Date.now()
    while (!this.stopped) {
      const id = `${this.prefix}-${this.seq++}`
      const sentAt = Date.now()
      const p = this.submit(id).then((o) => {
        this.outcomes.set(id, o)
        this.answers.push({ id, sentAt, at: Date.now(), outcome: o })
      })
      inflight.add(p)
      void p.finally(() => inflight.delete(p))
      if (inflight.size > 200) await Promise.race(inflight)
      next += interval
      const wait = next - Date.now()
      if (wait > 0) await new Promise((r) => setTimeout(r, wait))
    }
    await Promise.all(inflight)
  }

  stop(): void {
    this.stopped = true
  }

  /** After the faults: the same request again, same key; answered now, it settles the outcome. */
  async resolveIndeterminate(): Promise<number> {
    let resolved = 0
    for (const [id, o] of this.outcomes) {
      if (o !== 'indeterminate') continue
      const again = await this.submit(id)
      if (again === 'accepted') {
        this.outcomes.set(id, 'accepted')
        resolved++
      }
    }
    return resolved
  }

  get accepted(): string[] {
    return [...this.outcomes].filter(([, o]) => o === 'accepted').map(([id]) => id)
  }

  count(o: Outcome): number {
    return [...this.outcomes.values()].filter((x) => x === o).length
  }
}

export interface Verdict {
  submitted: number
  accepted: number
  rejected: number
  indeterminate: number
  lost: number
  duplicated: number
  unexpected: number
}

/** Jepsen-style count over what clients were told and what the ledger saw run. */
export function verdict(
  submitted: Map<string, Outcome>,
  completed: Set<string>,
  executions: Map<string, number>,
): Verdict {
  let lost = 0
  let duplicated = 0
  for (const [id, o] of submitted) {
    if (o === 'accepted' && !completed.has(id)) lost++
    if ((executions.get(id) ?? 0) > 1) duplicated++
  }
  return {
    submitted: submitted.size,
    accepted: [...submitted.values()].filter((o) => o === 'accepted').length,
    rejected: [...submitted.values()].filter((o) => o === 'rejected').length,
    indeterminate: [...submitted.values()].filter((o) => o === 'indeterminate').length,
    lost,
    duplicated,
    unexpected: [...executions.keys()].filter((id) => !submitted.has(id)).length,
  }
}

export function report(name: string, v: object): void {
  console.log(`[chaos] ${name}: ${JSON.stringify(v)}`)
}
