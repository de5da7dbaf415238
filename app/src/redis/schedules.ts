/**
 * Schedules in Redis (ADR 0018): a schedule is a hash in its template queue's slot
 * (`<prefix>:{<queue>}:sched:<name>`) with a capped history list next to it, so one function
 * (`schedule_fire`) can compare-and-set its next_fire and make the job together; the registry
 * `<prefix>:schedules` (name → queue) lists them, written by single-key commands only (it is in
 * no queue's slot). Writes outside a fire (upsert, pause, resume, remove) are plain commands:
 * each moves or clears next_fire, so a fire planned before them fails its compare.
 */
import { F, type JobState } from '../queue/job.ts'
import type { ScheduleDef } from '../queue/schedule.ts'
import type { JobStore, ScheduleFireCall, ScheduleFireReply } from './store.ts'

/** What the schedule_fire function makes its jobs from (the `tpl` field: values as stored). */
export interface JobTemplate {
  ty: string
  pl: string
  pr: string
  mr: string
  to: string
  pk: string
  /** Further job hash fields, flat [k, v, ...] (trace, backoff). */
  x: string[]
}

/** One line of a schedule's history; the job's state is read when the history is. */
export interface FireRecord {
  at: number
  job_id: string | null
  /** job | missed_run (a misfire's job) | triggered | skipped_overlap | missed | ended */
  outcome: string
  job_state: JobState | 'removed' | null
}

/** A stored schedule as read back. */
export interface ScheduleState extends ScheduleDef {
  paused: boolean
  next_fire: number | null
  runs: number
  last_fire: number | null
  last_job: string | null
  created_at: number
  updated_at: number
}

function num(v: string | undefined | null): number | null {
  return v === undefined || v === null || v === '' ? null : Number(v)
}

function decode(h: Record<string, string>): ScheduleState | null {
  if (!h.def) return null
  const def = JSON.parse(h.def) as ScheduleDef & { created_at: number; updated_at: number }
  return {
    ...def,
    paused: h.paused === '1',
    next_fire: num(h.next),
    runs: Number(h.runs ?? 0),
    last_fire: num(h.last_fire),
    last_job: h.last_job || null,
  }
}

export class ScheduleStore {
  readonly store: JobStore

  constructor(store: JobStore) {
    this.store = store
  }

  get redis() {
    return this.store.redis
  }
  get keys() {
    return this.store.keys
  }

  /** Every schedule's queue, by name. */
  async registry(): Promise<Record<string, string>> {
    return this.redis.hgetall(this.keys.schedules())
  }

  /** The queue of a schedule, or null. */
  async queueOf(name: string): Promise<string | null> {
    return this.redis.hget(this.keys.schedules(), name)
  }

  /**
   * Creates or replaces a schedule: definition, template, policies and next_fire (fires,
   * history and, unless given, the paused flag kept). The hash is written before the registry names it; a schedule that moved to
   * another queue leaves its old slot afterwards.
   */
  async save(
    def: ScheduleDef,
    tpl: JobTemplate,
    /** undefined: as it was (a new schedule is active). */
    paused: boolean | undefined,
    next: number | null,
  ): Promise<ScheduleState> {
    const now = this.store.clock.now()
    const before = await this.queueOf(def.name)
    const old = before === null ? null : await this.read(before, def.name)
    const stored = { ...def, created_at: old?.created_at ?? now, updated_at: now }
    const key = this.keys.schedule(def.queue, def.name)
    await this.redis.hset(key, {
      def: JSON.stringify(stored),
      tpl: JSON.stringify(tpl),
      overlap: def.overlap,
      max_runs: def.max_runs ?? '',
      next: next ?? '',
      paused: (paused ?? old?.paused) ? '1' : '0',
    })
    await this.redis.hset(this.keys.schedules(), def.name, def.queue)
    if (before !== null && before !== def.queue) {
      await this.redis.del(this.keys.schedule(before, def.name), this.keys.scheduleHistory(before, def.name))
    }
    return (await this.read(def.queue, def.name))!
  }

  /** A schedule's stored state, or null. */
  async read(queue: string, name: string): Promise<ScheduleState | null> {
    return decode(await this.redis.hgetall(this.keys.schedule(queue, name)))
  }

  /** Every schedule, by name (one HGETALL each, per node on a Cluster). */
  async list(): Promise<ScheduleState[]> {
    const reg = await this.registry()
    const all = await Promise.all(Object.entries(reg).map(([name, q]) => this.read(q, name)))
    return all.filter((s): s is ScheduleState => s !== null).sort((a, b) => a.name.localeCompare(b.name))
  }

  /** The schedule's last fires, newest first, each with its job's state as of now. */
  async history(queue: string, name: string, limit = 100): Promise<FireRecord[]> {
    const lines = await this.redis.lrange(this.keys.scheduleHistory(queue, name), 0, limit - 1)
    const recs = lines.map((l) => {
      const [at, id, outcome] = l.split(' ')
      return { at: Number(at), job_id: id && id !== '-' ? id : null, outcome: outcome ?? '' }
    })
    const states = await this.jobStates(
      queue,
      recs.map((r) => r.job_id),
    )
    return recs.map((r, i) => ({ ...r, job_state: states[i] ?? null }))
  }

  /** The states of jobs of a queue ('removed': gone after retention; null: no id). */
  async jobStates(queue: string, ids: Array<string | null>): Promise<Array<JobState | 'removed' | null>> {
    return Promise.all(
      ids.map(async (id) => {
        if (id === null) return null
        const st = await this.redis.hget(this.keys.job(queue, id), F.state)
        return (st as JobState | null) ?? 'removed'
      }),
    )
  }

  /** Pauses (next_fire kept) or resumes (next_fire set anew: times passed while paused are not run). */
  async setPaused(queue: string, name: string, paused: boolean, next?: number | null): Promise<void> {
    const f: Record<string, string | number> = { paused: paused ? '1' : '0' }
    if (next !== undefined) f.next = next ?? ''
    await this.redis.hset(this.keys.schedule(queue, name), f)
  }

  /** Removes a schedule: the registry first (no scheduler finds it), then its keys. */
  async remove(name: string): Promise<boolean> {
    const queue = await this.queueOf(name)
    if (queue === null) return false
    await this.redis.hdel(this.keys.schedules(), name)
    await this.redis.del(this.keys.schedule(queue, name), this.keys.scheduleHistory(queue, name))
    return true
  }

  /** The stored next_fire and paused flag of each schedule (what a scheduler polls). */
  async dueInfo(
    reg: Record<string, string>,
  ): Promise<Array<{ name: string; queue: string; next: number | null; paused: boolean }>> {
    return Promise.all(
      Object.entries(reg).map(async ([name, queue]) => {
        const [next, paused] = await this.redis.hmget(this.keys.schedule(queue, name), 'next', 'paused')
        return { name, queue, next: num(next), paused: paused === '1' }
      }),
    )
  }

  /** One schedule_fire call (JobStore.fireSchedule). */
  fire(queue: string, name: string, call: ScheduleFireCall): Promise<ScheduleFireReply> {
    return this.store.fireSchedule(queue, name, call)
  }
}
