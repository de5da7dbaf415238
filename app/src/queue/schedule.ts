/**
 * Schedules (issue 18): the definition, its checks, and the time arithmetic -- which fire times
 * are due and what comes next. Pure: no I/O. The cron and time-zone arithmetic stays here, in
 * JS (croner); the Redis Function `schedule_fire` only compares and sets (ADR 0018).
 */
import { Cron } from 'croner'
import { checkInt, checkName, type Problems, parseIsoTime } from './validate.ts'

export const OVERLAP_POLICIES = ['allow', 'skip', 'queue_one'] as const
export type OverlapPolicy = (typeof OVERLAP_POLICIES)[number]
export const MISFIRE_POLICIES = ['skip', 'run_once', 'catch_up'] as const
export type MisfirePolicy = (typeof MISFIRE_POLICIES)[number]

/** Schedule names reach a key (`<prefix>:{<queue>}:sched:<name>`) and a path segment. */
export const SCHEDULE_NAME_PATTERN = /^(?!\.\.?$)[A-Za-z0-9_.-]{1,128}$/
export const SCHEDULE_NAME_RULE = '1-128 letters, digits, _ . - (not . or ..)'
export const MIN_EVERY_MS = 1000
export const MAX_EVERY_MS = 366 * 86_400_000
export const MAX_CATCH_UP = 1000
/** Fire times a schedule's history keeps (a capped list next to it). */
export const HISTORY_KEPT = 100
/** A fire later than this behind its time is a misfire (the scheduler polls every ~1 s). */
export const DEFAULT_MISFIRE_GRACE_MS = 60_000

/** What a caller gives to create or replace a schedule (the job template is checked by Queue). */
export interface ScheduleSpec {
  cron?: string
  /** IANA zone the cron expression is read in (default UTC). */
  tz?: string
  every_ms?: number
  job: Record<string, unknown> & { task_type: string }
  start_at?: number | string
  end_at?: number | string
  /** At most this many fires that create a job, then the schedule ends. */
  max_runs?: number
  paused?: boolean
  overlap?: OverlapPolicy
  misfire?: MisfirePolicy
  /** catch_up: at most this many jobs, for the most recent missed times. */
  catch_up_max?: number
  misfire_grace_ms?: number
}

/** The timing part of a stored schedule: what next-time arithmetic needs. */
export interface ScheduleTiming {
  cron: string | null
  tz: string
  every_ms: number | null
  start_at: number | null
  end_at: number | null
  /** Anchor of an every_ms schedule without start_at (its creation time). */
  anchor: number
}

/** A stored schedule's definition (JSON in its hash). */
export interface ScheduleDef extends ScheduleTiming {
  name: string
  queue: string
  job: Record<string, unknown> & { task_type: string }
  max_runs: number | null
  overlap: OverlapPolicy
  misfire: MisfirePolicy
  catch_up_max: number
  misfire_grace_ms: number
}

const SPEC_FIELDS = new Set([
  'cron',
  'tz',
  'every_ms',
  'job',
  'start_at',
  'end_at',
  'max_runs',
  'paused',
  'overlap',
  'misfire',
  'catch_up_max',
  'misfire_grace_ms',
])

/** The fields of a job template: a job's options less those naming one job (id, key, delay). */
export const TEMPLATE_FIELDS = [
  'task_type',
  'payload',
  'queue',
  'priority',
  'max_retries',
  'timeout_ms',
  'partition_key',
  'trace',
  'backoff',
] as const

/** Whether a zone name is one this runtime knows (IANA). */
export function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz })
    return true
  } catch {
    return false
  }
}

/** Parsed expressions, by zone and text: a runner plans from them every second. */
const parsed = new Map<string, Cron | string>()

/** A cron expression (5 fields, or 6 with seconds first) in a zone, or a problem. */
export function parseCron(expr: string, tz: string): Cron | string {
  const key = `${tz} ${expr}`
  let c = parsed.get(key)
  if (c === undefined) {
    c = parseCronOnce(expr, tz)
    if (parsed.size >= 1000) parsed.clear()
    parsed.set(key, c)
  }
  return c
}

function parseCronOnce(expr: string, tz: string): Cron | string {
  if (!isTimeZone(tz)) return `tz must be an IANA time zone (Europe/Berlin, UTC), got ${JSON.stringify(tz)}`
  const fields = expr.trim().split(/\s+/).length
  if (fields !== 5 && fields !== 6) return 'cron must have 5 fields, or 6 with seconds first'
  try {
    return new Cron(expr, { timezone: tz, paused: true, mode: '5-or-6-parts' })
  } catch (err) {
    return `cron: ${(err as Error).message.replace(/^CronPattern: /, '')}`
  }
}

function time(problems: Problems, field: string, v: unknown): number | null {
  if (v === undefined || v === null) return null
  const t = typeof v === 'string' ? parseIsoTime(v) : v
  if (typeof t !== 'number' || !Number.isFinite(t) || t < 0 || t > 1e14) {
    problems.push(`${field} must be ms since the epoch or an ISO 8601 time with its zone`)
    return null
  }
  return Math.round(t)
}

/**
 * Checks a schedule's own fields (the template's are Queue's) and builds its definition;
 * problems are pushed, and null returned when there are any.
 */
export function buildDef(
  problems: Problems,
  name: string,
  queue: string,
  spec: ScheduleSpec,
  now: number,
): ScheduleDef | null {
  const start = problems.length
  checkName(problems, 'name', name, SCHEDULE_NAME_PATTERN, SCHEDULE_NAME_RULE)
  if (spec === null || typeof spec !== 'object') {
    problems.push('a schedule must be an object')
    return null
  }
  for (const k of Object.keys(spec)) {
    if (!SPEC_FIELDS.has(k)) problems.push(`${k} is not a known field (${[...SPEC_FIELDS].join(', ')})`)
  }
  const tz = spec.tz ?? 'UTC'
  if (typeof tz !== 'string') problems.push('tz must be a string')
  if ((spec.cron === undefined) === (spec.every_ms === undefined))
    problems.push('give cron or every_ms (one of them)')
  if (spec.cron !== undefined) {
    if (typeof spec.cron !== 'string' || spec.cron.length > 256) problems.push('cron must be a string')
    else {
      const c = parseCron(spec.cron, tz)
      if (typeof c === 'string') problems.push(c)
    }
  } else if (typeof tz === 'string' && !isTimeZone(tz))
    problems.push(`tz must be an IANA time zone, got ${tz}`)
  if (spec.every_ms !== undefined) checkInt(problems, 'every_ms', spec.every_ms, MIN_EVERY_MS, MAX_EVERY_MS)
  const startAt = time(problems, 'start_at', spec.start_at)
  const endAt = time(problems, 'end_at', spec.end_at)
  if (startAt !== null && endAt !== null && endAt <= startAt) problems.push('end_at must be after start_at')
  if (spec.max_runs !== undefined) checkInt(problems, 'max_runs', spec.max_runs, 1, 1e9)
  if (spec.paused !== undefined && typeof spec.paused !== 'boolean')
    problems.push('paused must be true or false')
  const overlap = spec.overlap ?? 'allow'
  if (!OVERLAP_POLICIES.includes(overlap))
    problems.push(`overlap must be one of ${OVERLAP_POLICIES.join(', ')}`)
  const misfire = spec.misfire ?? 'skip'
  if (!MISFIRE_POLICIES.includes(misfire))
    problems.push(`misfire must be one of ${MISFIRE_POLICIES.join(', ')}`)
  const catchUp = spec.catch_up_max ?? 10
  checkInt(problems, 'catch_up_max', catchUp, 1, MAX_CATCH_UP)
  const grace = spec.misfire_grace_ms ?? DEFAULT_MISFIRE_GRACE_MS
  checkInt(problems, 'misfire_grace_ms', grace, 1000, 86_400_000)
  if (spec.job === null || typeof spec.job !== 'object')
    problems.push('job must be an object (a job template)')
  else {
    for (const k of Object.keys(spec.job)) {
      if (!(TEMPLATE_FIELDS as readonly string[]).includes(k))
        problems.push(`job.${k} is not a template field (${TEMPLATE_FIELDS.join(', ')})`)
    }
  }
  if (problems.length > start) return null
  return {
    name,
    queue,
    cron: spec.cron?.trim() ?? null,
    tz,
    every_ms: spec.every_ms ?? null,
    start_at: startAt,
    end_at: endAt,
    anchor: startAt ?? now,
    job: spec.job,
    max_runs: spec.max_runs ?? null,
    overlap,
    misfire,
    catch_up_max: catchUp,
    misfire_grace_ms: grace,
  }
}

/** The first fire time strictly after `t`, within start_at..end_at; null when there is none. */
export function nextFireAfter(s: ScheduleTiming, t: number): number | null {
  const from = s.start_at !== null && t < s.start_at ? s.start_at - 1 : t
  let next: number | null
  if (s.every_ms !== null) {
    const k = Math.floor((from - s.anchor) / s.every_ms) + 1
    next = s.anchor + Math.max(0, k) * s.every_ms
    if (next <= from) next += s.every_ms
  } else {
    const c = parseCron(s.cron ?? '', s.tz)
    if (typeof c === 'string') return null
    next = c.nextRun(new Date(from))?.getTime() ?? null
  }
  return next !== null && (s.end_at === null || next <= s.end_at) ? next : null
}

/** The next `n` fire times after `t`. */
export function nextFires(s: ScheduleTiming, t: number, n: number): number[] {
  const out: number[] = []
  for (let at = nextFireAfter(s, t); at !== null && out.length < n; at = nextFireAfter(s, at)) out.push(at)
  return out
}

/** Up to `n` fire times in (after, upTo], the most recent ones, oldest first. */
export function latestFires(s: ScheduleTiming, after: number, upTo: number, n: number): number[] {
  let times: number[]
  if (s.every_ms !== null) {
    times = []
    const last = s.anchor + Math.floor((upTo - s.anchor) / s.every_ms) * s.every_ms
    for (let at = last; at > after && times.length < n; at -= s.every_ms) times.unshift(at)
  } else {
    const c = parseCron(s.cron ?? '', s.tz)
    if (typeof c === 'string') return []
    // Cron times are whole seconds and previousRuns is strictly before its reference.
    times = c
      .previousRuns(n + 1, new Date(upTo + 1000))
      .map((d) => d.getTime())
      .filter((at) => at > after && at <= upTo)
      .slice(0, n)
      .reverse()
  }
  return times.filter(
    (at) => (s.start_at === null || at >= s.start_at) && (s.end_at === null || at <= s.end_at),
  )
}

/** What one scheduler does with a due schedule: the CAS call's arguments (schedule_fire). */
export interface FirePlan {
  /** The stored next_fire the call must find (compare-and-set). */
  expected: number
  /** The fire times to make jobs for (oldest first); empty: a misfire skipped. */
  fires: number[]
  /** next_fire after the call (null: the schedule has ended). */
  next: number | null
  /** A misfire: the times were missed by more than the grace. */
  missed: boolean
}

/**
 * The plan for a schedule whose stored next_fire is `due` at time `now`, or null when it is
 * not due. On time (within the grace): that one time. Later: the misfire policy -- skip (no
 * job), run_once (the latest missed time), catch_up (the most recent catch_up_max missed times).
 */
export function planFire(def: ScheduleDef, due: number, now: number): FirePlan | null {
  if (due > now) return null
  if (now - due <= def.misfire_grace_ms) {
    return { expected: due, fires: [due], next: nextFireAfter(def, due), missed: false }
  }
  const next = nextFireAfter(def, now)
  const keep = def.misfire === 'skip' ? 0 : def.misfire === 'run_once' ? 1 : def.catch_up_max
  const fires = keep ? latestFires(def, due - 1, now, keep) : []
  return { expected: due, fires, next, missed: true }
}
