/**
 * The worker registry: `<prefix>:workers` (zset id → last heartbeat ms) and one hash per live
 * worker, `<prefix>:worker:<id>`, that expires when its heartbeats stop. Each command touches one
 * key (the keys live in different Cluster slots): the zset is written after the hash, and a
 * name in it whose hash is gone is a dead worker, dropped by list().
 */
import type { RedisClient } from './connection.ts'
import type { Keys } from './keys.ts'

export type WorkerState = 'running' | 'paused' | 'draining' | 'stopping'
/** pause, resume, drain; `concurrency:<n>` sets how many jobs the worker runs at once (ADR 0020). */
export type WorkerCommand = 'pause' | 'resume' | 'drain' | `concurrency:${number}`
export const WORKER_COMMANDS: readonly WorkerCommand[] = ['pause', 'resume', 'drain']

/** A command as sent (registry field, pub/sub message), or null when it is none of ours. */
export function parseWorkerCommand(s: string | null | undefined): WorkerCommand | null {
  if (!s) return null
  if (WORKER_COMMANDS.includes(s as WorkerCommand)) return s as WorkerCommand
  const m = /^concurrency:([1-9]\d{0,4})$/.exec(s)
  return m && Number(m[1]) <= 10_000 ? (s as WorkerCommand) : null
}

export interface WorkerInfo {
  id: string
  host: string
  pid: number
  queues: string[]
  concurrency: number
  active: number
  processed: number
  failed: number
  /** Failed attempts by task type (at most 200 types; metrics: worker_errors_total). */
  failed_by_type?: Record<string, number>
  started_at: number
  heartbeat_at: number
  state: WorkerState
}

/* What a worker shows of itself beyond its counters: kept and bounded by worker/activity.ts. */
/** A job the worker runs now. */
export interface RunningJob {
  id: string
  queue: string
  task_type: string
  attempt: number
  /** When this run started (ms since the epoch). */
  started_at: number
}

/** A failed attempt on this worker (retried or dead-lettered). */
export interface WorkerFailure {
  id: string
  queue: string
  task_type: string
  attempt: number
  error: string
  error_class: string
  /** `retrying` or `failed` (dead-lettered). */
  outcome: string
  at: number
}

/** Outcomes of one minute (`minute`: its start, ms since the epoch). */
export interface WorkerMinute {
  minute: number
  completed: number
  failed: number
}

/** What a worker writes of its activity with each beat (worker/activity.ts; bounded there). */
export interface WorkerActivityInfo {
  running: RunningJob[]
  recent_failures: WorkerFailure[]
  rates: WorkerMinute[]
}

/** One worker as GET /workers/{id} shows it. */
export type WorkerDetail = WorkerInfo & WorkerActivityInfo

/** The registry fields of a WorkerInfo, as list() reads them (HMGET: not the activity's JSON). */
const INFO_FIELDS = [
  'id',
  'host',
  'pid',
  'queues',
  'concurrency',
  'active',
  'processed',
  'failed',
  'failed_by_type',
  'started_at',
  'heartbeat_at',
  'state',
] as const

export class Registry {
  readonly redis: RedisClient
  readonly keys: Keys

  constructor(redis: RedisClient, keys: Keys) {
    this.redis = redis
    this.keys = keys
  }

  async beat(info: WorkerInfo, ttlMs: number, activity?: WorkerActivityInfo): Promise<void> {
    const key = this.keys.worker(info.id)
    await this.redis
      .multi()
      .hset(key, {
        ...(activity && {
          running: JSON.stringify(activity.running),
          recent_failures: JSON.stringify(activity.recent_failures),
          rates: JSON.stringify(activity.rates),
        }),
        id: info.id,
        host: info.host,
        pid: info.pid,
        queues: info.queues.join(','),
        concurrency: info.concurrency,
        active: info.active,
        processed: info.processed,
        failed: info.failed,
        failed_by_type: JSON.stringify(info.failed_by_type ?? {}),
        started_at: info.started_at,
        heartbeat_at: info.heartbeat_at,
        state: info.state,
      })
      .pexpire(key, ttlMs)
      .exec()
    await this.redis.zadd(this.keys.workers(), info.heartbeat_at, info.id)
  }

  async remove(id: string): Promise<void> {
    await Promise.all([this.redis.del(this.keys.worker(id)), this.redis.zrem(this.keys.workers(), id)])
  }

  /** Live workers (those whose hash has not expired); forgets the dead ones. */
  async list(): Promise<WorkerInfo[]> {
    const ids = await this.redis.zrange(this.keys.workers(), 0, -1)
    if (!ids.length) return []
    const res = await Promise.all(ids.map((id) => this.redis.hmget(this.keys.worker(id), ...INFO_FIELDS)))
    const out: WorkerInfo[] = []
    const dead: string[] = []
    ids.forEach((id, i) => {
      const values = res[i] ?? []
      const h = Object.fromEntries(INFO_FIELDS.map((f, j) => [f, values[j] ?? undefined]))
      const info = toInfo(h)
      if (info) out.push(info)
      else dead.push(id)
    })
    if (dead.length) await this.redis.zrem(this.keys.workers(), ...dead)
    return out
  }

  /** One live worker with its activity (running jobs, rates, latest failures), or null. */
  async get(id: string): Promise<WorkerDetail | null> {
    const h = await this.redis.hgetall(this.keys.worker(id))
    const info = toInfo(h)
    if (!info) return null
    return {
      ...info,
      running: jsonArray(h.running) as RunningJob[],
      recent_failures: jsonArray(h.recent_failures) as WorkerFailure[],
      rates: jsonArray(h.rates) as WorkerMinute[],
    }
  }

  /** Sends a command to one worker (or '*' for all); returns whether that worker is live. */
  async command(id: string, cmd: WorkerCommand): Promise<boolean> {
    if (id !== '*' && !(await this.redis.exists(this.keys.worker(id)))) return false
    if (id !== '*') await this.redis.hset(this.keys.worker(id), 'command', cmd)
    await this.redis.publish(this.keys.controlChannel(), `${id} ${cmd}`)
    return true
  }

  /** Reads and clears a command left for a worker (the pub/sub message may have been missed). */
  async takeCommand(id: string): Promise<WorkerCommand | null> {
    const [[, cmd]] = (await this.redis
      .multi()
      .hget(this.keys.worker(id), 'command')
      .hdel(this.keys.worker(id), 'command')
      .exec()) as [[unknown, string | null], unknown]
    return parseWorkerCommand(cmd)
  }
}

/** A registry hash as a WorkerInfo, or null when the hash is gone (a dead worker). */
function toInfo(h: Record<string, string | undefined>): WorkerInfo | null {
  if (!h.id) return null
  return {
    id: h.id,
    host: h.host ?? '',
    pid: Number(h.pid),
    queues: (h.queues ?? '').split(',').filter(Boolean),
    concurrency: Number(h.concurrency),
    active: Number(h.active),
    processed: Number(h.processed),
    failed: Number(h.failed),
    failed_by_type: failedByType(h.failed_by_type),
    started_at: Number(h.started_at),
    heartbeat_at: Number(h.heartbeat_at),
    state: (h.state ?? 'running') as WorkerState,
  }
}

/** A JSON array field as the worker wrote it, or [] when absent or not an array (an older worker). */
function jsonArray(s: string | undefined): unknown[] {
  try {
    const v = JSON.parse(s ?? '[]') as unknown
    return Array.isArray(v) ? v : []
  } catch {
    return []
  }
}

/** A worker's failures by type as it wrote them (JSON), or {} when absent or not an object of counts. */
function failedByType(s: string | undefined): Record<string, number> {
  try {
    const v = JSON.parse(s ?? '{}') as unknown
    if (!v || typeof v !== 'object' || Array.isArray(v)) return {}
    return Object.fromEntries(
      Object.entries(v).filter(
        (e): e is [string, number] => typeof e[1] === 'number' && Number.isFinite(e[1]),
      ),
    )
  } catch {
    return {}
  }
}
