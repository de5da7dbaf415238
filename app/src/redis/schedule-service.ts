/**
 * The schedules part of the library API (ADR 0018), behind Queue's upsertSchedule, getSchedule,
 * ...: checks (queue/schedule.ts for the schedule, Queue's job rules for its template), then
 * the store (redis/schedules.ts). Reads add what a caller wants to see: the next five fire
 * times in the schedule's zone and the history with each job's state.
 */
import { DtqError } from '../errors.ts'
import { buildDef, nextFireAfter, nextFires, parseCron, type ScheduleSpec } from '../queue/schedule.ts'
import { type Problems, throwIfProblems } from '../queue/validate.ts'
import { type FireRecord, type JobTemplate, type ScheduleState, ScheduleStore } from './schedules.ts'
import type { Clock, JobStore, NewJobRecord } from './store.ts'

/** A schedule as the API shows it. */
export interface ScheduleView extends ScheduleState {
  /** The state of the last job it made ('removed' once retention took it). */
  last_outcome: string | null
}
export interface ScheduleDetail extends ScheduleView {
  next_runs: number[]
  history: FireRecord[]
}

/** Validates a template as a job (Queue.toRecord): its queue and the record to write. */
export type TemplateCheck = (
  job: Record<string, unknown>,
  problems: Problems,
) => { queue: string; record: NewJobRecord } | null

export class Schedules {
  readonly store: ScheduleStore
  private readonly clock: Clock
  private readonly checkTemplate: TemplateCheck

  constructor(jobs: JobStore, clock: Clock, checkTemplate: TemplateCheck) {
    this.store = new ScheduleStore(jobs)
    this.clock = clock
    this.checkTemplate = checkTemplate
  }

  /** Creates or replaces the schedule `name`; bad input writes nothing (VALIDATION). */
  async upsert(name: string, spec: ScheduleSpec): Promise<ScheduleDetail> {
    const problems: Problems = []
    const now = this.clock.now()
    const job = spec && typeof spec === 'object' && spec.job && typeof spec.job === 'object' ? spec.job : null
    const tplCheck = job ? this.checkTemplate(job, problems) : null
    const def = buildDef(problems, name, tplCheck?.queue ?? '', spec, now)
    throwIfProblems(problems, 'invalid schedule')
    if (!def || !tplCheck) throw new DtqError('VALIDATION', 'invalid schedule')
    const r = tplCheck.record
    const tpl: JobTemplate = {
      ty: r.task_type,
      pl: r.payload,
      pr: r.priority,
      mr: String(r.max_retries),
      to: String(r.timeout_ms),
      pk: r.partition_key,
      x: Object.entries(r.extra).flat(),
    }
    await this.store.save(def, tpl, spec.paused, nextFireAfter(def, now))
    return this.getOrThrow(name)
  }

  async list(): Promise<ScheduleView[]> {
    const all = await this.store.list()
    const last = await Promise.all(all.map((s) => this.store.jobStates(s.queue, [s.last_job])))
    return all.map((s, i) => ({ ...s, last_outcome: last[i]![0] ?? null }))
  }

  async get(name: string): Promise<ScheduleDetail | null> {
    const queue = await this.store.queueOf(name)
    const s = queue === null ? null : await this.store.read(queue, name)
    if (!s) return null
    const history = await this.store.history(s.queue, name)
    const [lastState] = await this.store.jobStates(s.queue, [s.last_job])
    const from = Math.max(this.clock.now(), (s.next_fire ?? this.clock.now()) - 1)
    return {
      ...s,
      last_outcome: lastState ?? null,
      next_runs: s.next_fire === null ? [] : nextFires(s, from, 5),
      history,
    }
  }

  async getOrThrow(name: string): Promise<ScheduleDetail> {
    const s = await this.get(name)
    if (!s) throw new DtqError('NOT_FOUND', `schedule ${name} not found`)
    return s
  }

  async remove(name: string): Promise<void> {
    if (!(await this.store.remove(name))) throw new DtqError('NOT_FOUND', `schedule ${name} not found`)
  }

  /** Pauses: no fires until resumed (next_fire kept for display). */
  async pause(name: string): Promise<ScheduleDetail> {
    const s = await this.getOrThrow(name)
    await this.store.setPaused(s.queue, name, true)
    return this.getOrThrow(name)
  }

  /** Resumes from now: the times that passed while paused are not fired. */
  async resume(name: string): Promise<ScheduleDetail> {
    const s = await this.getOrThrow(name)
    await this.store.setPaused(s.queue, name, false, nextFireAfter(s, this.clock.now()))
    return this.getOrThrow(name)
  }

  /** Fires now: one job from the template, next_fire untouched, no policy applied. */
  async trigger(name: string): Promise<{ job_id: string; schedule: ScheduleDetail }> {
    const s = await this.getOrThrow(name)
    const r = await this.store.fire(s.queue, name, { mode: 'trigger', fires: [this.clock.now()] })
    if (r.outcome === 'gone' || !r.jobs[0]) throw new DtqError('NOT_FOUND', `schedule ${name} not found`)
    return { job_id: r.jobs[0], schedule: await this.getOrThrow(name) }
  }

  /** The next `n` times of a cron expression in a zone, after now (the console's preview). */
  preview(cron: string, tz = 'UTC', n = 5): number[] {
    const c = parseCron(cron, tz)
    if (typeof c === 'string') throw new DtqError('VALIDATION', `invalid schedule: ${c}`, [c])
    return c.nextRuns(n, new Date(this.clock.now())).map((d) => d.getTime())
  }
}
