/**
 * Real local Redis topologies for tests: a Redis Cluster (masters with replicas) and a Sentinel
 * group (a primary, a replica, three sentinels), all from the plain `redis-server` binary
 * (Debian's 7.0 has no `redis-sentinel`: a sentinel is `redis-server sentinel.conf --sentinel`).
 *
 * House rules, as in test/chaos/harness.ts: free ports on 127.0.0.1 only, data in a private
 * mkdtemp dir, only processes started here are ever signalled (by their ChildProcess handle,
 * never by name), and every wait is a poll on a condition with a deadline — no fixed sleeps.
 * Every data node runs with AOF (everysec), noeviction and no RDB snapshots, like production;
 * each process logs to `redis.log` in its own dir (`logTail()` / `logTails()` for a failing test).
 * Set DTQ_KEEP_TOPOLOGY=1 to keep the dirs after stop() for a post-mortem, DTQ_TOPOLOGY_DEBUG=1
 * to log each wait's progress (what it is still waiting for, and since when).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { freePort } from '../src/redis/local-server.ts'

export const HOST = '127.0.0.1'
const SLOTS = 16384

// ---------------------------------------------------------------------------------------------
// Processes

/** Children still running: killed (SIGKILL, by pid) if the test process exits without stop(). */
const running = new Set<ChildProcess>()
let exitHookInstalled = false
function track(child: ChildProcess): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true
    process.once('exit', () => {
      for (const c of running) c.kill('SIGKILL')
    })
  }
  running.add(child)
  child.once('exit', () => running.delete(child))
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((r) => child.once('exit', () => r()))
}

/** Thrown from a waitUntil() check: stop waiting at once. */
class Fatal extends Error {}
class PortTaken extends Fatal {}

/**
 * Data-node settings shared by the cluster and the sentinel group (DTQ's durability check wants
 * AOF). `repl-diskless-sync-delay 0`: Redis 7.0 syncs replicas diskless by default but first waits
 * 5 s for more replicas to join the transfer; every full sync (a cluster's creation, a node
 * rejoining, a sentinel group's start) took ~5 s for an empty dataset because of it.
 */
const DATA_NODE_ARGS = [
  '--appendonly',
  'yes',
  '--appendfsync',
  'everysec',
  '--maxmemory-policy',
  'noeviction',
  '--save',
  '',
  '--repl-diskless-sync-delay',
  '0',
]

/**
 * One redis-server (data node or sentinel) we started: kill -9, stop, restart on the same port
 * and dir (so a cluster node finds its nodes.conf and AOF again).
 */
export class RedisProcess {
  readonly name: string
  readonly port: number
  readonly dir: string
  readonly logFile: string
  /** Arguments of the next launch (the sentinel group changes `--replicaof` before a restart). */
  args: string[]
  proc?: ChildProcess
  private stderr = ''
  private logOffset = 0

  constructor(name: string, port: number, dir: string, args: string[]) {
    this.name = name
    this.port = port
    this.dir = dir
    this.logFile = join(dir, 'redis.log')
    this.args = args
    mkdirSync(dir, { recursive: true })
  }

  get url(): string {
    return `redis://${HOST}:${this.port}`
  }

  get pid(): number | undefined {
    return this.alive ? this.proc?.pid : undefined
  }

  get alive(): boolean {
    return !!this.proc && this.proc.exitCode === null && this.proc.signalCode === null
  }

  /** Spawns redis-server and resolves once it answers PING (not LOADING). */
  async start(timeoutMs = 15_000): Promise<void> {
    if (this.alive) throw new Error(`${this.name} is already running (pid ${this.proc?.pid})`)
    this.logOffset = existsSync(this.logFile) ? statSync(this.logFile).size : 0
    this.stderr = ''
    const child = spawn('redis-server', this.args, { stdio: ['ignore', 'ignore', 'pipe'] })
    this.proc = child
    track(child)
    child.stderr?.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-4000)
    })
    child.once('error', (err) => {
      this.stderr += `\nspawn error: ${err.message}`
    })
    await waitUntil(`${this.name} (port ${this.port}) to answer PING`, timeoutMs, async () => {
      if (child.exitCode !== null || child.signalCode !== null) {
        const out = `${this.newLog()}\n${this.stderr}`
        const msg = `${this.name} exited (${child.exitCode ?? child.signalCode}) on start:\n${out.trim().slice(-2000)}`
        if (/Address already in use/i.test(out)) throw new PortTaken(msg)
        throw new Fatal(msg)
      }
      const pong = await call(this.port, ['PING'], 500)
      return pong === 'PONG' ? true : `answered ${String(pong)}`
    })
  }

  /**
   * SIGSTOP: the process is frozen (its replication link and cluster bus go quiet, its sockets
   * stay open) until resume(). stop() resumes it first.
   */
  pause(): void {
    if (this.alive) this.proc?.kill('SIGSTOP')
  }

  resume(): void {
    if (this.alive) this.proc?.kill('SIGCONT')
  }

  /** SIGKILL: no AOF fsync, no nodes.conf save — a crash. Resolves when the process is gone. */
  async kill9(): Promise<void> {
    const child = this.proc
    if (!child || !this.alive) return
    const gone = exited(child)
    child.kill('SIGKILL')
    await gone
  }

  /**
   * SIGTERM (graceful: AOF fsync, nodes.conf saved), repeated until it exits: a replica that has
   * just done a full sync drops a SIGTERM while it writes its first AOF ("Writing initial AOF,
   * can't exit") and does not retry it, so a single signal left stop() hanging now and then.
   * SIGKILL if it has not exited in `timeoutMs`.
   */
  async stop(timeoutMs = 10_000): Promise<void> {
    const child = this.proc
    if (!child || !this.alive) return
    let done = false
    const gone = exited(child).then(() => {
      done = true
    })
    child.kill('SIGCONT') // in case a test paused it
    const deadline = Date.now() + timeoutMs
    while (!done) {
      child.kill(Date.now() > deadline ? 'SIGKILL' : 'SIGTERM')
      await Promise.race([gone, new Promise((r) => setTimeout(r, 200))])
    }
  }

  /** Relaunches on the same port and dir (stops it first if it is running). */
  async restart(): Promise<void> {
    await this.stop()
    await this.start()
  }

  logTail(lines = 30): string {
    if (!existsSync(this.logFile)) return `(${this.name}: no log)`
    const all = readFileSync(this.logFile, 'utf8').trimEnd().split('\n')
    return all.slice(-lines).join('\n')
  }

  private newLog(): string {
    if (!existsSync(this.logFile)) return ''
    return readFileSync(this.logFile).subarray(this.logOffset).toString('utf8')
  }
}

/** Builds a process on fresh ports and starts it; retries with other ports if one was taken meanwhile. */
async function startOnFreePorts(
  build: (ports: number[]) => RedisProcess,
  nPorts: number,
): Promise<RedisProcess> {
  for (let attempt = 1; ; attempt++) {
    const p = build(await freePorts(nPorts))
    try {
      await p.start()
      return p
    } catch (err) {
      if (!(err instanceof PortTaken) || attempt >= 3) throw err
    }
  }
}

const handedOut = new Set<number>()
/** Distinct free ports (freePort() may hand the same one out twice in a row; never 6379). */
async function freePorts(n: number): Promise<number[]> {
  const out: number[] = []
  while (out.length < n) {
    const p = await freePort()
    if (p === 6379 || handedOut.has(p)) continue
    handedOut.add(p)
    out.push(p)
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// Talking to a node

/** One command on a fresh short-lived connection (no retries, no offline queue). */
export async function call(port: number, args: Array<string | number>, timeoutMs = 2000): Promise<unknown> {
  const [r] = await calls(port, [args], timeoutMs)
  return r
}

/** Several commands on one short-lived connection, in order. */
export async function calls(
  port: number,
  commands: Array<Array<string | number>>,
  timeoutMs = 2000,
): Promise<unknown[]> {
  const c = new Redis({
    host: HOST,
    port,
    lazyConnect: true,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
    enableReadyCheck: false,
  })
  c.on('error', () => {})
  try {
    await c.connect()
    const out: unknown[] = []
    for (const [cmd, ...rest] of commands) out.push(await c.call(String(cmd), ...rest))
    return out
  } finally {
    c.disconnect()
  }
}

/** `INFO` / `CLUSTER INFO` text as a map. */
export function parseInfo(text: unknown): Record<string, string> {
  const out: Record<string, string> = {}
  for (const line of String(text).split(/\r?\n/)) {
    const i = line.indexOf(':')
    if (i > 0 && !line.startsWith('#')) out[line.slice(0, i)] = line.slice(i + 1).trim()
  }
  return out
}

/** A flat [k1, v1, k2, v2, …] reply (SENTINEL MASTER / REPLICAS entries) as a map. */
function pairs(reply: unknown): Record<string, string> {
  const a = reply as string[]
  const out: Record<string, string> = {}
  for (let i = 0; i + 1 < a.length; i += 2) out[a[i]!] = a[i + 1]!
  return out
}

// ---------------------------------------------------------------------------------------------
// Waiting

/**
 * Polls `check` until it returns true. A string return (or a thrown error) is the reason it is
 * not there yet, quoted in the timeout error; so is a thrown error (retried), except a Fatal one.
 */
export async function waitUntil(
  what: string,
  timeoutMs: number,
  check: () => Promise<true | string> | true | string,
  intervalMs = 100,
): Promise<void> {
  const started = Date.now()
  const deadline = started + timeoutMs
  const debug = process.env.DTQ_TOPOLOGY_DEBUG === '1'
  let last = ''
  for (;;) {
    let reason: string
    try {
      const r = await check()
      if (r === true) {
        if (debug) console.error(`[topology] +${Date.now() - started} ms: ${what}: done`)
        return
      }
      reason = r
    } catch (err) {
      if (err instanceof Fatal) throw err
      reason = err instanceof Error ? err.message : String(err)
    }
    if (debug && reason !== last) console.error(`[topology] +${Date.now() - started} ms: ${what}: ${reason}`)
    last = reason
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}: ${last}`)
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}

function run(
  cmd: string,
  args: string[],
  timeoutMs: number,
): Promise<{ code: number | null; output: string }> {
  return new Promise((done) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    track(child)
    let output = ''
    child.stdout?.on('data', (d: Buffer) => {
      output += d.toString()
    })
    child.stderr?.on('data', (d: Buffer) => {
      output += d.toString()
    })
    const t = setTimeout(() => {
      output += `\n(killed after ${timeoutMs} ms)`
      child.kill('SIGKILL')
    }, timeoutMs)
    child.once('error', (err) => {
      output += `\nspawn error: ${err.message}`
    })
    child.once('close', (code) => {
      clearTimeout(t)
      done({ code, output })
    })
  })
}

const keepDirs = () => process.env.DTQ_KEEP_TOPOLOGY === '1'

// ---------------------------------------------------------------------------------------------
// Redis Cluster

export type ClusterNode = RedisProcess

/** One line of CLUSTER NODES. */
export interface ClusterNodeView {
  id: string
  port: number
  flags: string[]
  /** The master's node id, for a replica. */
  masterId: string | null
  slots: Array<[number, number]>
}

export function parseClusterNodes(text: unknown): ClusterNodeView[] {
  const out: ClusterNodeView[] = []
  for (const line of String(text).split('\n')) {
    const f = line.trim().split(' ')
    if (f.length < 8) continue
    const port = Number(/:(\d+)@/.exec(f[1]!)?.[1] ?? 0)
    const slots: Array<[number, number]> = []
    for (const s of f.slice(8)) {
      if (s.startsWith('[')) continue // a slot being migrated
      const [a, b] = s.split('-')
      slots.push([Number(a), Number(b ?? a)])
    }
    out.push({ id: f[0]!, port, flags: f[2]!.split(','), masterId: f[3] === '-' ? null : f[3]!, slots })
  }
  return out
}

const isFailed = (v: ClusterNodeView) =>
  v.flags.some((f) => f === 'fail' || f === 'fail?' || f === 'handshake' || f === 'noaddr')
const servesSlots = (v: ClusterNodeView) => v.flags.includes('master') && v.slots.length > 0 && !isFailed(v)

export interface ClusterOptions {
  masters?: number
  replicasPerMaster?: number
  /**
   * cluster-node-timeout. Small so that a dead master is flagged FAIL and its replica elected in a
   * few seconds (a replica starts its election ~0.5–1 s after FAIL, votes need a majority of masters).
   */
  nodeTimeoutMs?: number
  /** For waitHealthy() after `redis-cli --cluster create`. */
  startTimeoutMs?: number
}

/**
 * Around the kill -9 of a primary (killMaster, killPrimary): `beforeKill` runs once the primary
 * and its replica are known, just before the kill (e.g. to freeze the replica so that it lags);
 * `afterKill` right after it (e.g. to resume the replica). Nothing asks a node anything between
 * the two, so a frozen replica delays nothing.
 */
export interface KillHooks {
  beforeKill?: (primary: RedisProcess, replica: RedisProcess) => Promise<void> | void
  afterKill?: (primary: RedisProcess, replica: RedisProcess) => Promise<void> | void
}

export class LocalCluster {
  readonly root: string
  readonly nodes: ClusterNode[]
  readonly masterCount: number
  readonly replicasPerMaster: number

  constructor(root: string, nodes: ClusterNode[], masterCount: number, replicasPerMaster: number) {
    this.root = root
    this.nodes = nodes
    this.masterCount = masterCount
    this.replicasPerMaster = replicasPerMaster
  }

  /** Node URLs: seeds for ioredis Cluster, or `.join(',')` for REDIS_CLUSTER_NODES. */
  get seeds(): string[] {
    return this.nodes.map((n) => n.url)
  }

  byPort(port: number): ClusterNode | undefined {
    return this.nodes.find((n) => n.port === port)
  }

  /** CLUSTER NODES as seen by the first live node that answers. */
  async view(): Promise<ClusterNodeView[]> {
    let last: unknown
    for (const n of this.nodes.filter((x) => x.alive)) {
      try {
        return parseClusterNodes(await call(n.port, ['CLUSTER', 'NODES']))
      } catch (err) {
        last = err
      }
    }
    throw new Error(`no live cluster node answered CLUSTER NODES: ${String(last)}`)
  }

  /** The masters serving slots now (roles change after a failover), ordered by their first slot. */
  async masters(): Promise<ClusterNode[]> {
    const v = (await this.view()).filter(servesSlots)
    v.sort((a, b) => Math.min(...a.slots.map((s) => s[0])) - Math.min(...b.slots.map((s) => s[0])))
    return v.map((x) => this.mustKnow(x.port))
  }

  /** The slot ranges a master serves now. */
  async slotsOf(master: ClusterNode): Promise<Array<[number, number]>> {
    return (await this.view()).find((x) => x.port === master.port)?.slots ?? []
  }

  /**
   * The master serving `key`'s slot now (CLUSTER KEYSLOT, asked of a live node), with its index in
   * masters() -- what killMaster() takes.
   */
  async masterFor(key: string): Promise<{ node: ClusterNode; index: number; slot: number }> {
    const live = this.nodes.find((n) => n.alive)
    if (!live) throw new Error('no cluster node is running')
    const slot = Number(await call(live.port, ['CLUSTER', 'KEYSLOT', key]))
    const view = await this.view()
    const masters = await this.masters()
    const index = masters.findIndex((m) =>
      view.find((v) => v.port === m.port)?.slots.some(([a, b]) => slot >= a && slot <= b),
    )
    if (index < 0) throw new Error(`no live master serves slot ${slot} (key ${key})`)
    return { node: masters[index]!, index, slot }
  }

  /** The (not failed) replicas of a master, from CLUSTER NODES. */
  async replicasOf(master: ClusterNode): Promise<ClusterNode[]> {
    const v = await this.view()
    const m = v.find((x) => x.port === master.port)
    if (!m) throw new Error(`port ${master.port} is not in the cluster`)
    return v.filter((x) => x.masterId === m.id && !isFailed(x)).map((x) => this.mustKnow(x.port))
  }

  /** The first replica of a master. */
  async replicaOf(master: ClusterNode): Promise<ClusterNode> {
    const r = (await this.replicasOf(master))[0]
    if (!r) throw new Error(`master ${master.port} has no replica`)
    return r
  }

  /**
   * Resolves once every live node: reports cluster_state:ok with all 16384 slots ok and knows
   * every node; has the same view as the others of who serves which slots and who replicates
   * whom; flags no live node as failed; and every live replica has its link to its master up
   * (master_link_status:up, no sync in progress). With every node alive, also: `masters` masters
   * with `replicasPerMaster` replicas each.
   */
  async waitHealthy(timeoutMs = 30_000): Promise<void> {
    try {
      await waitUntil('a healthy cluster', timeoutMs, () => this.healthProblem(), 150)
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${this.logTails(8)}`)
    }
  }

  private async healthProblem(): Promise<true | string> {
    const live = this.nodes.filter((n) => n.alive)
    if (live.length === 0) return 'no node is running'
    const per = await Promise.all(
      live.map(async (n) => {
        const [ci, cn, rep] = await calls(n.port, [
          ['CLUSTER', 'INFO'],
          ['CLUSTER', 'NODES'],
          ['INFO', 'replication'],
        ])
        return { node: n, info: parseInfo(ci), view: parseClusterNodes(cn), repl: parseInfo(rep) }
      }),
    )
    const liveSet = new Set(live.map((n) => n.port))
    let signature: string | undefined
    for (const { node, info, view } of per) {
      if (info.cluster_state !== 'ok') return `${node.port}: cluster_state:${info.cluster_state}`
      if (info.cluster_slots_assigned !== String(SLOTS) || info.cluster_slots_ok !== String(SLOTS))
        return `${node.port}: slots assigned ${info.cluster_slots_assigned}, ok ${info.cluster_slots_ok}`
      if (info.cluster_known_nodes !== String(this.nodes.length))
        return `${node.port}: knows ${info.cluster_known_nodes} of ${this.nodes.length} nodes`
      for (const v of view) {
        if (liveSet.has(v.port) && isFailed(v))
          return `${node.port} sees live ${v.port} as ${v.flags.join(',')}`
        if (servesSlots(v) && !liveSet.has(v.port)) return `${node.port} sees dead ${v.port} serving slots`
      }
      // Who serves what and who follows whom, among live nodes: identical on every node.
      const byId = new Map(view.map((v) => [v.id, v]))
      const sig = view
        .filter((v) => liveSet.has(v.port))
        .map((v) =>
          servesSlots(v)
            ? `${v.port}=M[${v.slots.map((s) => s.join('-')).join(' ')}]`
            : `${v.port}=S(${byId.get(v.masterId ?? '')?.port ?? v.flags.join(',')})`,
        )
        .sort()
        .join(' ')
      if (signature === undefined) signature = sig
      else if (sig !== signature) return `views differ: ${signature} / ${sig}`
    }
    const view = per[0]!.view
    const byId = new Map(view.map((v) => [v.id, v]))
    const masters = view.filter(servesSlots)
    if (masters.length !== this.masterCount)
      return `${masters.length} masters serve slots, want ${this.masterCount}`
    for (const { node, repl } of per) {
      const me = view.find((v) => v.port === node.port)
      if (!me) return `${node.port} is not in the view`
      if (servesSlots(me)) {
        if (repl.role !== 'master') return `${node.port} serves slots but its role is ${repl.role}`
        const followers = view.filter((v) => v.masterId === me.id && liveSet.has(v.port)).length
        if (Number(repl.connected_slaves ?? 0) < followers)
          return `${node.port}: ${repl.connected_slaves} replicas connected, ${followers} live in the view`
        continue
      }
      const master = byId.get(me.masterId ?? '')
      if (!master || !servesSlots(master))
        return `${node.port} is neither a master with slots nor replicates one`
      if (repl.role !== 'slave')
        return `${node.port}: role ${repl.role}, the view says replica of ${master.port}`
      if (Number(repl.master_port) !== master.port)
        return `${node.port} replicates ${repl.master_port}, not ${master.port}`
      if (repl.master_link_status !== 'up')
        return `${node.port}: master_link_status:${repl.master_link_status}`
      if (repl.master_sync_in_progress !== '0') return `${node.port}: sync in progress`
    }
    if (live.length === this.nodes.length) {
      for (const m of masters) {
        const n = view.filter((v) => v.masterId === m.id).length
        if (n !== this.replicasPerMaster)
          return `master ${m.port} has ${n} replicas, want ${this.replicasPerMaster}`
      }
    }
    return true
  }

  /**
   * kill -9 the master at `index` of masters() (ordered by first slot); resolves once one of its
   * replicas serves its slots in every live node's view, answers ROLE as master, and the cluster
   * is healthy again (cluster_state:ok everywhere). Returns the promoted node. The killed node
   * stays down (node.restart() brings it back as a replica of the promoted one). `hooks` run
   * around the kill (KillHooks; their replica is the master's first).
   */
  async killMaster(index: number, timeoutMs = 30_000, hooks: KillHooks = {}): Promise<ClusterNode> {
    const target = (await this.masters())[index]
    if (!target) throw new Error(`no master at index ${index}`)
    const [firstSlot] = (await this.slotsOf(target))[0] ?? []
    const candidates = (await this.replicasOf(target)).filter((n) => n.alive)
    if (candidates.length === 0) throw new Error(`master ${target.port} has no live replica to promote`)
    await hooks.beforeKill?.(target, candidates[0]!)
    await target.kill9()
    await hooks.afterKill?.(target, candidates[0]!)
    let promoted: ClusterNode | undefined
    try {
      await waitUntil(`a replica of ${target.port} to take over its slots`, timeoutMs, async () => {
        for (const n of this.nodes.filter((x) => x.alive)) {
          const owner = parseClusterNodes(await call(n.port, ['CLUSTER', 'NODES'])).find(
            (v) => servesSlots(v) && v.slots.some(([a, b]) => firstSlot! >= a && firstSlot! <= b),
          )
          if (!owner || owner.port === target.port)
            return `${n.port}: slot ${firstSlot} still on ${target.port}`
          if (!candidates.some((c) => c.port === owner.port))
            return `${n.port}: slot ${firstSlot} on ${owner.port}?`
          promoted = this.mustKnow(owner.port)
        }
        const role = (await call(promoted!.port, ['ROLE'])) as unknown[]
        return role[0] === 'master' ? true : `${promoted!.port} ROLE ${String(role[0])}`
      })
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${this.logTails(10)}`)
    }
    await this.waitHealthy(timeoutMs)
    return promoted!
  }

  /** The last lines of every node's log, for a failing test. */
  logTails(lines = 20): string {
    return this.nodes
      .map((n) => `--- ${n.name} port ${n.port} ${n.alive ? `pid ${n.pid}` : '(down)'}\n${n.logTail(lines)}`)
      .join('\n')
  }

  /** Stops every node started here (SIGTERM, then SIGKILL after 10 s) and removes the dirs. */
  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()))
    if (!keepDirs()) rmSync(this.root, { recursive: true, force: true })
  }

  private mustKnow(port: number): ClusterNode {
    const n = this.byPort(port)
    if (!n) throw new Error(`port ${port} is not one of this cluster's nodes`)
    return n
  }
}

/**
 * Starts `masters * (1 + replicasPerMaster)` cluster-enabled redis-servers and joins them the way
 * an operator would, with `redis-cli --cluster create … --cluster-replicas N --cluster-yes`.
 *
 * Choices:
 *  - `--cluster-port` (7.0+) is a second free port, instead of the default data port + 10000,
 *    which may be taken or above 65535 for an ephemeral port.
 *  - cluster-node-timeout 2000 ms by default: a killed master is failed over in ~3–5 s.
 *  - cluster-replica-validity-factor stays at its default (10): after a kill -9 the replica's link
 *    has been down only ~node-timeout, far below the 10 × node-timeout it tolerates, so setting 0
 *    is not needed (and would let a long-disconnected replica win an election with stale data).
 *  - cluster-require-full-coverage yes and cluster-allow-reads-when-down no (the defaults): while a
 *    master is down the cluster reports fail, which is what a client sees in production.
 */
export async function startCluster(opts: ClusterOptions = {}): Promise<LocalCluster> {
  const masters = opts.masters ?? 3
  const replicas = opts.replicasPerMaster ?? 1
  const nodeTimeout = opts.nodeTimeoutMs ?? 2000
  if (masters < 3) throw new Error('redis-cli --cluster create needs at least 3 masters')
  const root = mkdtempSync(join(tmpdir(), 'dtq-cluster-'))
  const nodes: ClusterNode[] = []
  try {
    const count = masters * (1 + replicas)
    const started = await Promise.allSettled(
      Array.from({ length: count }, (_, i) =>
        startOnFreePorts(([port, bus]) => {
          const dir = join(root, `node-${i}`)
          return new RedisProcess(`cluster-node-${i}`, port!, dir, [
            '--port',
            String(port),
            '--cluster-port',
            String(bus),
            '--bind',
            HOST,
            '--dir',
            dir,
            '--daemonize',
            'no',
            '--logfile',
            join(dir, 'redis.log'),
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            'nodes.conf',
            '--cluster-node-timeout',
            String(nodeTimeout),
            ...DATA_NODE_ARGS,
          ])
        }, 2),
      ),
    )
    for (const s of started) if (s.status === 'fulfilled') nodes.push(s.value)
    const failed = started.find((s) => s.status === 'rejected')
    if (failed) throw (failed as PromiseRejectedResult).reason
    const cluster = new LocalCluster(root, nodes, masters, replicas)
    // redis-cli assigns the first `masters` addresses as masters, the rest as their replicas; it
    // waits itself until the nodes agree on the slot map ("Waiting for the cluster to join").
    const created = await run(
      'redis-cli',
      [
        '--cluster',
        'create',
        ...nodes.map((n) => `${HOST}:${n.port}`),
        '--cluster-replicas',
        String(replicas),
        '--cluster-yes',
      ],
      60_000,
    )
    if (created.code !== 0) {
      // biome-ignore lint/suspicious/noControlCharactersInRegex: strips redis-cli's colour codes
      const out = created.output.replace(/\x1b\[[0-9;]*m/g, '')
      throw new Error(`redis-cli --cluster create failed (${created.code}):\n${out.slice(-3000)}`)
    }
    // Then every node must agree: state ok, all nodes known, replicas linked and synced.
    await cluster.waitHealthy(opts.startTimeoutMs ?? 30_000)
    return cluster
  } catch (err) {
    await Promise.all(nodes.map((n) => n.stop()))
    if (!keepDirs()) rmSync(root, { recursive: true, force: true })
    throw err
  }
}

// ---------------------------------------------------------------------------------------------
// Sentinel

export interface SentinelOptions {
  /** down-after-milliseconds: how long without a valid PING reply before a sentinel says SDOWN. */
  downAfterMs?: number
  /**
   * failover-timeout. Small (default 4000) because it also spaces out retries: a sentinel whose
   * failover attempt failed (e.g. a split vote) may try again for the same master only after
   * 2 × failover-timeout; the default 180 s would turn one unlucky vote into a hung test. It also
   * bounds the wait for the chosen replica to report itself master, which takes ~1 s here.
   */
  failoverTimeoutMs?: number
  masterName?: string
}

export type SentinelDataNode = RedisProcess

export class LocalSentinelGroup {
  readonly root: string
  readonly masterName: string
  /** The two data nodes (their roles change: ask primary() / replica()). */
  readonly nodes: SentinelDataNode[]
  readonly sentinelNodes: RedisProcess[]

  constructor(root: string, masterName: string, nodes: SentinelDataNode[], sentinelNodes: RedisProcess[]) {
    this.root = root
    this.masterName = masterName
    this.nodes = nodes
    this.sentinelNodes = sentinelNodes
  }

  /** For ioredis: `new Redis({ sentinels, name: masterName })`. */
  get sentinels(): Array<{ host: string; port: number }> {
    return this.sentinelNodes.map((s) => ({ host: HOST, port: s.port }))
  }

  /** The primary's port according to the first live sentinel that answers. */
  async masterPort(): Promise<number> {
    let last: unknown
    for (const s of this.sentinelNodes.filter((x) => x.alive)) {
      try {
        const r = (await call(s.port, ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', this.masterName])) as
          | string[]
          | null
        if (r) return Number(r[1])
      } catch (err) {
        last = err
      }
    }
    throw new Error(`no sentinel named the primary: ${String(last)}`)
  }

  /** The current primary, as a sentinel names it. */
  async primary(): Promise<SentinelDataNode> {
    const port = await this.masterPort()
    const n = this.nodes.find((x) => x.port === port)
    if (!n) throw new Error(`the sentinels name ${port}, not one of our nodes`)
    return n
  }

  /** The current replica: the data node that is not the primary. */
  async replica(): Promise<SentinelDataNode> {
    const port = await this.masterPort()
    return this.nodes.find((x) => x.port !== port)!
  }

  /**
   * kill -9 the current primary; resolves once every live sentinel names the other node and that
   * node answers ROLE as master. Returns the new primary. The old one stays down (restartNode()).
   * `hooks` run around the kill (KillHooks).
   */
  async killPrimary(timeoutMs = 30_000, hooks: KillHooks = {}): Promise<SentinelDataNode> {
    const old = await this.primary()
    const next = this.nodes.find((x) => x !== old)!
    if (!next.alive) throw new Error(`the replica ${next.port} is down: nothing to fail over to`)
    await hooks.beforeKill?.(old, next)
    await old.kill9()
    await hooks.afterKill?.(old, next)
    try {
      await waitUntil(`the sentinels to promote ${next.port}`, timeoutMs, async () => {
        for (const s of this.sentinelNodes.filter((x) => x.alive)) {
          const r = (await call(s.port, ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', this.masterName])) as string[]
          if (Number(r[1]) !== next.port) return `sentinel ${s.port} names ${r[1]}`
        }
        const role = (await call(next.port, ['ROLE'])) as unknown[]
        return role[0] === 'master' ? true : `${next.port} ROLE ${String(role[0])}`
      })
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${this.logTails(15)}`)
    }
    return next
  }

  /**
   * (Re)starts a data node on its port and dir: as a replica of the primary the sentinels name, or
   * without --replicaof if they name this node (the sentinels would also reconfigure a node that
   * comes back as a stale primary, but only after it has answered their INFO). Waits until it is
   * up; call waitHealthy() to wait for its replication link.
   */
  async restartNode(node: SentinelDataNode): Promise<void> {
    await node.stop()
    const primary = await this.masterPort()
    node.args = node.args.filter((_, i, a) => a[i] !== '--replicaof' && a[i - 1] !== '--replicaof')
    if (primary !== node.port) node.args.push('--replicaof', `${HOST} ${primary}`)
    await node.start()
  }

  /**
   * Resolves once: every live sentinel names the same live primary, is not in a failover, flags
   * the primary as plain `master`, knows the other live sentinels, passes CKQUORUM and lists every
   * live replica without s_down/disconnected; the primary answers ROLE master; every live replica
   * follows it with its link up and no sync in progress (read from the replica itself: the
   * sentinels refresh their copy of a replica's INFO only every 10 s).
   */
  async waitHealthy(timeoutMs = 30_000): Promise<void> {
    try {
      await waitUntil('a healthy sentinel group', timeoutMs, () => this.healthProblem(), 150)
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${this.logTails(8)}`)
    }
  }

  private async healthProblem(): Promise<true | string> {
    const liveSentinels = this.sentinelNodes.filter((s) => s.alive)
    const liveData = this.nodes.filter((n) => n.alive)
    let primary: number | undefined
    for (const s of liveSentinels) {
      const [addr, master, ckq, replicas] = await calls(s.port, [
        ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', this.masterName],
        ['SENTINEL', 'MASTER', this.masterName],
        ['SENTINEL', 'CKQUORUM', this.masterName],
        ['SENTINEL', 'REPLICAS', this.masterName],
      ]).catch((err: Error) => [err, null, null, null])
      if (addr instanceof Error) return `sentinel ${s.port}: ${addr.message}`
      const port = Number((addr as string[])[1])
      if (primary === undefined) primary = port
      else if (port !== primary) return `sentinels disagree: ${primary} / ${port} (from ${s.port})`
      const m = pairs(master)
      if (m.flags !== 'master') return `sentinel ${s.port} flags the primary ${m.flags}`
      if (Number(m['num-other-sentinels']) < liveSentinels.length - 1)
        return `sentinel ${s.port} knows ${m['num-other-sentinels']} other sentinels`
      if (!String(ckq).startsWith('OK')) return `sentinel ${s.port} CKQUORUM: ${String(ckq)}`
      const known = (replicas as unknown[]).map(pairs)
      for (const n of liveData) {
        if (n.port === port) continue
        const r = known.find((x) => Number(x.port) === n.port)
        if (!r) return `sentinel ${s.port} does not know replica ${n.port}`
        if (r.flags !== 'slave') return `sentinel ${s.port} flags replica ${n.port} ${r.flags}`
      }
    }
    if (primary === undefined) return 'no sentinel is running'
    const p = liveData.find((n) => n.port === primary)
    if (!p) return `the sentinels name ${primary}, which is down`
    const role = (await call(primary, ['ROLE'])) as unknown[]
    if (role[0] !== 'master') return `${primary} ROLE ${String(role[0])}`
    for (const n of liveData) {
      if (n === p) continue
      const r = parseInfo(await call(n.port, ['INFO', 'replication']))
      if (r.role !== 'slave' || Number(r.master_port) !== primary)
        return `${n.port} replicates ${r.master_port}`
      if (r.master_link_status !== 'up') return `${n.port}: master_link_status:${r.master_link_status}`
      if (r.master_sync_in_progress !== '0') return `${n.port}: sync in progress`
    }
    return true
  }

  logTails(lines = 20): string {
    return [...this.nodes, ...this.sentinelNodes]
      .map((n) => `--- ${n.name} port ${n.port} ${n.alive ? `pid ${n.pid}` : '(down)'}\n${n.logTail(lines)}`)
      .join('\n')
  }

  /** Stops the sentinels first (no failover during shutdown), then the data nodes; removes the dirs. */
  async stop(): Promise<void> {
    await Promise.all(this.sentinelNodes.map((s) => s.stop()))
    await Promise.all(this.nodes.map((n) => n.stop()))
    if (!keepDirs()) rmSync(this.root, { recursive: true, force: true })
  }
}

function dataNodeArgs(port: number, dir: string): string[] {
  return [
    '--port',
    String(port),
    '--bind',
    HOST,
    '--dir',
    dir,
    '--daemonize',
    'no',
    '--logfile',
    join(dir, 'redis.log'),
    ...DATA_NODE_ARGS,
  ]
}

/**
 * A primary, one replica (`--replicaof`) and three sentinels (quorum 2). Each sentinel has its
 * own dir and conf file, since a sentinel rewrites its conf (myid, known replicas and sentinels,
 * the current epoch). Sentinels keep no data: the AOF settings apply to the data nodes only.
 */
export async function startSentinelGroup(opts: SentinelOptions = {}): Promise<LocalSentinelGroup> {
  const name = opts.masterName ?? 'dtq-primary'
  const downAfter = opts.downAfterMs ?? 1000
  const failoverTimeout = opts.failoverTimeoutMs ?? 4000
  const root = mkdtempSync(join(tmpdir(), 'dtq-sentinel-'))
  const started: RedisProcess[] = []
  try {
    const primary = await startOnFreePorts(([port]) => {
      const dir = join(root, 'data-0')
      return new RedisProcess('data-0', port!, dir, dataNodeArgs(port!, dir))
    }, 1)
    started.push(primary)
    const replica = await startOnFreePorts(([port]) => {
      const dir = join(root, 'data-1')
      return new RedisProcess('data-1', port!, dir, [
        ...dataNodeArgs(port!, dir),
        '--replicaof',
        `${HOST} ${primary.port}`,
      ])
    }, 1)
    started.push(replica)
    const settled = await Promise.allSettled(
      [0, 1, 2].map((i) =>
        startOnFreePorts(([port]) => {
          const dir = join(root, `sentinel-${i}`)
          mkdirSync(dir, { recursive: true })
          const conf = join(dir, 'sentinel.conf')
          writeFileSync(
            conf,
            [
              `port ${port}`,
              `bind ${HOST}`,
              'daemonize no',
              `dir ${dir}`,
              `logfile ${join(dir, 'redis.log')}`,
              `sentinel monitor ${name} ${HOST} ${primary.port} 2`,
              `sentinel down-after-milliseconds ${name} ${downAfter}`,
              `sentinel failover-timeout ${name} ${failoverTimeout}`,
              `sentinel parallel-syncs ${name} 1`,
              '',
            ].join('\n'),
          )
          return new RedisProcess(`sentinel-${i}`, port!, dir, [conf, '--sentinel'])
        }, 1),
      ),
    )
    const sentinels: RedisProcess[] = []
    for (const s of settled) if (s.status === 'fulfilled') sentinels.push(s.value)
    started.push(...sentinels)
    const failed = settled.find((s) => s.status === 'rejected')
    if (failed) throw (failed as PromiseRejectedResult).reason
    const group = new LocalSentinelGroup(root, name, [primary, replica], sentinels)
    // Sentinels find the replica through the primary's INFO at once, and each other through
    // hello messages on the primary every 2 s: a failover needs both.
    await group.waitHealthy(30_000)
    return group
  } catch (err) {
    await Promise.all(started.map((p) => p.stop()))
    if (!keepDirs()) rmSync(root, { recursive: true, force: true })
    throw err
  }
}
