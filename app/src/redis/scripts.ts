/**
 * The Lua state changes as one Redis Function library (Redis 7): generated constants (job hash
 * fields, key spellings, limits), the prelude's parts `scripts/lib/*.lua` in name order
 * (helpers, defined once when the library loads), then every `scripts/<name>.lua` body, each
 * registered as `dtq_<version>_<name>`. The version is a hash of the source, so two DTQ
 * versions in a rolling deploy each call their own functions. A Redis that lacks the library
 * (new, restarted without persistence, FUNCTION FLUSH) gets it loaded on the first call that
 * misses it — invisible to callers.
 *
 * Why functions and not EVALSHA: the prelude cost ~19 µs of Redis CPU on every call when it
 * was re-evaluated per script run (docs/performance.md).
 */
import { createHash } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { luaFieldConstants, MAX_RETRIES_UNSTORED } from '../queue/job.ts'
import { HISTORY_KEPT } from '../queue/schedule.ts'
import { MAX_DELAY_MS } from '../queue/validate.ts'
import { isCluster, nodeName, primaries, type RedisClient } from './connection.ts'
import { luaKeyConstants } from './keys.ts'

export const SCRIPT_NAMES = [
  'enqueue',
  'deliver',
  'complete',
  'fetch',
  'fail',
  'promote',
  'reclaim',
  'heartbeat',
  'handback',
  'cancel',
  'requeue',
  'dlq_delete',
  'progress',
  'remove_consumer',
  'prune',
  'lead',
  'register_queue',
  'repair',
  'forget_queue',
  'list',
  'queue_stats',
  'throughput',
  'schedule_fire',
  'flow_create',
  'flow_done',
  'flow_release',
  'flow_attach',
  'set_limits',
  'breaker',
  'pause_type',
  'snooze',
  'run_now',
  'set_priority',
  'edit_payload',
  'note_replay',
  'delete_job',
  'empty_queue',
  'alert_write',
  'dlq_stats',
  'history',
  'history_snapshot',
  'archive_on',
  'archive_ack',
  'archive_off',
  'created_index',
  'created_sweep',
] as const
export type ScriptName = (typeof SCRIPT_NAMES)[number]

/**
 * The functions that add work: refused while Redis is at `maxmemory` (Redis checks before the
 * function runs, so nothing is half-written and the caller gets an OOM error: a 503). Every
 * other function is flagged `allow-oom`: what finishes, renews, reclaims, moves, cancels or
 * deletes jobs keeps running on a full Redis, so in-flight work ends normally and retention
 * pruning frees memory -- a full Redis recovers by itself (docs/architecture.md, "Memory").
 */
const DENIED_WHEN_FULL: ReadonlySet<ScriptName> = new Set([
  'enqueue',
  'requeue',
  'progress',
  'schedule_fire',
  'flow_create',
  'edit_payload',
  'history_snapshot',
  'created_index',
])

/**
 * Functions that only read (listings and stats): they write nothing, so they carry the
 * `no-writes` flag (callable with FCALL_RO, on a replica, and while Redis is out of memory).
 */
export const READ_ONLY_SCRIPTS: ReadonlySet<ScriptName> = new Set([
  'list',
  'queue_stats',
  'throughput',
  'dlq_stats',
  'history',
])

function flagsOf(name: ScriptName, unsafe: LibraryOptions): string {
  if (READ_ONLY_SCRIPTS.has(name)) return "{ 'no-writes' }"
  if (unsafe.noOomFlags || DENIED_WHEN_FULL.has(name)) return '{}'
  return "{ 'allow-oom' }"
}

export interface LibraryOptions {
  /** NEGATIVE CONTROL ONLY: register every function without flags (all refused at maxmemory). */
  noOomFlags?: boolean
  /** NEGATIVE CONTROL ONLY: retention does not wait for the archiver (ADR 0027). */
  noArchiveHold?: boolean
  /** NEGATIVE CONTROL ONLY: jobs created while the created-time index builds are not indexed (ADR 0035). */
  noCreatedWhileBuilding?: boolean
  /** NEGATIVE CONTROL ONLY: archive_ack expires a job by the state the archiver read, even one retried since (ADR 0027). */
  archiveReleaseByReadState?: boolean
}

const dir = new URL('./scripts/', import.meta.url)
const libDir = new URL('./scripts/lib/', import.meta.url)

/**
 * The generated constants the prelude starts with: job hash fields (job.ts), key spellings
 * (keys.ts), limits (validate.ts), the negative controls' switches. Also what the function A/Bs
 * (scripts/bench/function-ab.ts) put before a base commit's prelude.
 */
export function luaConstants(opts: LibraryOptions = {}): string[] {
  return [
    luaFieldConstants(),
    luaKeyConstants(),
    `local MAX_DELAY_MS = ${MAX_DELAY_MS}`,
    `local MAX_RETRIES_UNSTORED_S = '${MAX_RETRIES_UNSTORED}'`,
    `local SCHEDULE_HISTORY = ${HISTORY_KEPT}`,
    `local ARCHIVE_HOLD = ${opts.noArchiveHold ? 'false' : 'true'}`,
    `local CREATED_WHILE_BUILDING = ${opts.noCreatedWhileBuilding ? 'false' : 'true'}`,
    `local ARCHIVE_RELEASE_LIVE = ${opts.archiveReleaseByReadState ? 'false' : 'true'}`,
  ]
}

function buildLibrary(opts: LibraryOptions): { name: string; source: string } {
  // The generated constants first, then the prelude's parts in name order (scripts/lib/).
  const constants = luaConstants(opts)
  const parts = readdirSync(libDir)
    .filter((f) => f.endsWith('.lua'))
    .sort()
    .map((f) => readFileSync(new URL(f, libDir), 'utf8'))
  const prelude = [...constants, ...parts].join('\n')
  const bodies = SCRIPT_NAMES.map((n) => [n, readFileSync(new URL(`${n}.lua`, dir), 'utf8')] as const)
  // The version covers everything Redis is given, flags included: two builds that differ in
  // any way never share a library name.
  const version = createHash('sha1')
    .update(prelude)
    .update(bodies.map(([n, b]) => `${n}\n${flagsOf(n, opts)}\n${b}`).join('\n'))
    .digest('hex')
    .slice(0, 12)
  const name = `dtq_${version}`
  // The script bodies are fields of one table, not locals: a Lua function (the library's main
  // chunk here) has at most 200 locals, and the prelude's constants and helpers use most.
  const source = [`#!lua name=${name}`, prelude, 'local RUN = {}']
  for (const [n, body] of bodies) {
    source.push(`RUN.${n} = function()\n${body}\nend`)
    source.push(
      `redis.register_function{ function_name = '${name}_${n}', flags = ${flagsOf(n, opts)},\n` +
        `  callback = function(keys, args) setup(keys, args) local r = RUN.${n}() flush() return r end }`,
    )
  }
  return { name, source: source.join('\n') }
}

export class FunctionLibrary {
  readonly name: string
  readonly source: string
  private loading: Promise<void> | undefined

  constructor(opts: LibraryOptions = {}) {
    const lib = buildLibrary(opts)
    this.name = lib.name
    this.source = lib.source
  }

  /**
   * Loads the library on every primary (idempotent: REPLACE). Replicas get it from their
   * primary, so a replica promoted by a failover has it; a primary that lacks it anyway (a new
   * node, a restart without persistence, FUNCTION FLUSH) gets it when a call there misses it.
   */
  async load(redis: RedisClient): Promise<void> {
    this.loading ??= Promise.all(
      primaries(redis).map((node) =>
        (node.call('FUNCTION', 'LOAD', 'REPLACE', this.source) as Promise<unknown>).catch((err: Error) => {
          throw new Error(`loading the function library on ${nodeName(node)}: ${err.message}`)
        }),
      ),
    )
      .then(() => {})
      .finally(() => {
        this.loading = undefined
      })
    await this.loading
  }

  /** Calls function `name` with KEYS[1] = base and the given ARGV (routed to base's slot). */
  async call<T = unknown>(
    redis: RedisClient,
    name: ScriptName,
    base: string,
    args: ReadonlyArray<string | number>,
  ): Promise<T> {
    const fn = `${this.name}_${name}`
    try {
      return (await redis.call('FCALL', fn, 1, base, ...args)) as T
    } catch (err) {
      if (!isFunctionMissing(err)) throw err
      await this.load(redis)
      return (await redis.call('FCALL', fn, 1, base, ...args)) as T
    }
  }

  /**
   * Calls function `name`, then WAITs on the same connection until `replicas` replicas have
   * acknowledged every write made so far, up to `timeoutMs` (one pipelined round trip, on the
   * node that owns base's slot). Answers the call's reply and how many replicas acknowledged.
   */
  async callAndWait<T = unknown>(
    redis: RedisClient,
    name: ScriptName,
    base: string,
    args: ReadonlyArray<string | number>,
    replicas: number,
    timeoutMs: number,
  ): Promise<{ reply: T; acked: number }> {
    const fn = `${this.name}_${name}`
    const once = async () => {
      const res = (await redis
        .pipeline()
        .call('FCALL', fn, 1, base, ...args)
        .call('WAIT', replicas, timeoutMs)
        .exec()) as Array<[Error | null, unknown]>
      const [callErr, reply] = res[0]!
      if (callErr) throw callErr
      const [waitErr, acked] = res[1]!
      if (waitErr) throw waitErr
      return { reply: reply as T, acked: Number(acked) }
    }
    const attempt = async () => {
      try {
        return await once()
      } catch (err) {
        if (!isFunctionMissing(err)) throw err
        await this.load(redis)
        return once()
      }
    }
    // ioredis follows a Cluster pipeline's MOVED only when none of its commands succeeded, and
    // WAIT succeeds on any node: after a failover the call's MOVED (it did not run) comes back
    // here with the slot map still stale. Refresh it and call again.
    for (let redirections = 0; ; redirections++) {
      try {
        return await attempt()
      } catch (err) {
        if (!isCluster(redis) || !isMoved(err) || redirections >= MAX_PIPELINE_REDIRECTIONS) throw err
        await new Promise<void>((done) => redis.refreshSlotsCache(() => done()))
      }
    }
  }
}

const MAX_PIPELINE_REDIRECTIONS = 3

function isMoved(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('MOVED ')
}

function isFunctionMissing(err: unknown): boolean {
  return err instanceof Error && err.message.includes('Function not found')
}

let library: FunctionLibrary | undefined
let libraryOptions: LibraryOptions = {}

export function functions(): FunctionLibrary {
  library ??= new FunctionLibrary(libraryOptions)
  return library
}

/** NEGATIVE CONTROL ONLY (DTQ_UNSAFE=no-oom-flags): build the process's library with these options. */
export function setLibraryOptions(opts: LibraryOptions): void {
  libraryOptions = opts
  library = undefined
}
