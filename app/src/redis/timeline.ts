/**
 * A job's timeline (ADR 0028): every state change and attempt on record, merged from the two
 * places Redis keeps them -- the job hash (created, due, each failed attempt's start, end, worker
 * and error from `es`, the last attempt, the end, payload edits, replays) and the queue's
 * lifecycle events stream (each transition the scripts emitted for the job). The stream is
 * trimmed to ~EVENTS_MAX_LEN entries per queue, and the error history is bounded, so the answer
 * says when it is partial and why.
 */
import type { Job } from '../queue/job.ts'
import { type LifecycleEvent, rangeEntries, toEvents } from './event-stream.ts'
import type { JobStore } from './store.ts'

export interface TimelineEntry {
  /** ms since the epoch (Redis's clock). */
  at: number
  /** What happened: created, scheduled, attempt_started, attempt_failed, completed, … or an event's name. */
  event: string
  /** Where it is recorded: the job hash, the lifecycle events stream, or an archive (a JobSource). */
  source: 'job' | 'events' | 'archive'
  attempt?: number
  worker?: string | null
  message?: string
  /** The events-stream event id (source `events`). */
  event_id?: string
  detail?: Record<string, unknown>
}

export interface Timeline {
  job: { id: string; queue: string; task_type: string; state: string }
  entries: TimelineEntry[]
  /** True when the record is known to miss something: see `gaps`. */
  partial: boolean
  /** Why it is partial (older events trimmed, the scan's bound reached, attempts out of the error history). */
  gaps: string[]
  /** How many events-stream entries were read to find this job's. */
  events_scanned: number
}

/** The events scan reads pages of this many entries… */
const PAGE = 1000
/** …and at most this many entries in all (a job older than its queue's recent traffic: partial). */
export const TIMELINE_MAX_SCAN = 20_000
/** The events an enqueue emits for a new job (create_job in scripts/lib/6-create.lua). */
const CREATION_EVENTS = new Set(['queued', 'scheduled', 'waiting'])
/** Entry ids use Redis's clock, created_at the fleet's measure of it (ADR 0012): a margin. */
const CLOCK_MARGIN_MS = 2000

/** The timeline entries the job hash holds. */
export function hashEntries(j: Job): { entries: TimelineEntry[]; gaps: string[] } {
  const out: TimelineEntry[] = []
  const gaps: string[] = []
  const e = (x: TimelineEntry) => out.push(x)
  e({
    at: j.created_at,
    event: 'created',
    source: 'job',
    detail: {
      task_type: j.task_type,
      priority: j.priority,
      ...(j.replay_of ? { replay_of: j.replay_of } : {}),
      ...(j.schedule ? { schedule: j.schedule } : {}),
      ...(j.flow_id ? { flow_id: j.flow_id, flow_node: j.flow_node } : {}),
    },
  })
  const seen = new Set<number>()
  for (const a of j.errors) {
    seen.add(a.attempt)
    if (a.started_at !== undefined)
      e({ at: a.started_at, event: 'attempt_started', source: 'job', attempt: a.attempt, worker: a.worker })
    e({
      at: a.at,
      event: 'attempt_failed',
      source: 'job',
      attempt: a.attempt,
      worker: a.worker,
      message: a.message,
      detail: a.class ? { class: a.class } : undefined,
    })
  }
  // The job keeps only its latest due time and its latest entry into a ready stream.
  if (j.run_at !== null)
    e({ at: j.run_at, event: 'due', source: 'job', message: 'its latest due time (delay, or retry backoff)' })
  if (j.queued_at !== null && j.queued_at !== j.created_at)
    e({ at: j.queued_at, event: 'ready', source: 'job', message: 'it last entered a ready stream' })
  if (j.attempts > 0 && !seen.has(j.attempts) && j.started_at !== null)
    e({ at: j.started_at, event: 'attempt_started', source: 'job', attempt: j.attempts, worker: j.worker })
  const missing = []
  for (let n = 1; n < j.attempts; n++) if (!seen.has(n)) missing.push(n)
  if (missing.length)
    gaps.push(
      `attempts ${missing.join(', ')}: not in the error history (bounded; or ended without an error: reclaimed, handed back, snoozed)`,
    )
  if (
    j.finished_at !== null &&
    (j.state === 'completed' || j.state === 'failed' || j.state === 'cancelled')
  ) {
    e({
      at: j.finished_at,
      event: j.state,
      source: 'job',
      attempt: j.attempts || undefined,
      worker: j.worker,
      message: j.state === 'completed' ? undefined : (j.error ?? undefined),
      detail: j.expired ? { expired: true } : undefined,
    })
  }
  if (j.edits)
    e({
      at: j.edits.at,
      event: 'payload_edited',
      source: 'job',
      message: `edit ${j.edits.count} by ${j.edits.by}`,
      detail: { ...j.edits },
    })
  for (const r of j.replays?.last ?? [])
    e({ at: r.at, event: 'replayed', source: 'job', message: `replayed as ${r.job}`, detail: { job: r.job } })
  if (j.replays && j.replays.count > j.replays.last.length)
    gaps.push(`replays: ${j.replays.count} in all, the latest ${j.replays.last.length} listed`)
  return { entries: out, gaps }
}

/**
 * The events-stream entries of one job, scanned forward from its creation (bounded: pages of
 * PAGE entries, at most TIMELINE_MAX_SCAN). Partial when the job's creation event is not there
 * and the stream begins after the job was created (trimmed by MAXLEN), or when the bound was
 * reached before the stream's end.
 */
export async function streamEntries(
  store: JobStore,
  j: Job,
): Promise<{ entries: TimelineEntry[]; gaps: string[]; scanned: number }> {
  const gaps: string[] = []
  const from = Math.max(0, j.created_at - CLOCK_MARGIN_MS)
  const first = await rangeEntries(store, j.queue, '-', '+', 1)
  const oldest = first[0] ? Number(first[0][0].split('-')[0]) : null
  const found: LifecycleEvent[] = []
  let start = String(from)
  let scanned = 0
  for (;;) {
    const page = await rangeEntries(store, j.queue, start, '+', PAGE)
    scanned += page.length
    for (const [id, fields] of page) {
      const jobs = fieldOf(fields, 'job')
      if (jobs === j.id || ` ${jobs} `.includes(` ${j.id} `)) {
        const evs: LifecycleEvent[] = []
        toEvents(j.queue, id, fields, evs)
        found.push(...evs.filter((x) => x.job_id === j.id))
      }
    }
    if (page.length < PAGE) break
    if (scanned >= TIMELINE_MAX_SCAN) {
      gaps.push(
        `the events scan stopped after ${scanned} entries (at ${page.at(-1)![0]}): later events of this job are not listed`,
      )
      break
    }
    start = `(${page.at(-1)![0]}`
  }
  // Whole from the start only if the job's creation event is there (the stream may begin with it).
  const created =
    found[0] && CREATION_EVENTS.has(found[0].event) && found[0].at <= j.created_at + CLOCK_MARGIN_MS
  if (oldest === null)
    gaps.unshift('the events stream of its queue is empty (trimmed, or the queue was forgotten)')
  else if (!created && oldest > from)
    gaps.unshift(
      `events before ${new Date(oldest).toISOString()} were trimmed from the stream (EVENTS_MAX_LEN): the earliest are missing`,
    )
  return {
    entries: found.map((x) => ({ at: x.at, event: x.event, source: 'events' as const, event_id: x.id })),
    gaps,
    scanned,
  }
}

function fieldOf(fields: string[], name: string): string {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name) return fields[i + 1]!
  return ''
}

/** Merges entries in time order (at equal times: the job hash's first, then the events in id order). */
export function mergeTimeline(...lists: TimelineEntry[][]): TimelineEntry[] {
  const rank = { job: 0, archive: 1, events: 2 }
  return lists
    .flat()
    .map((x, i) => ({ x, i }))
    .sort((p, q) => p.x.at - q.x.at || rank[p.x.source] - rank[q.x.source] || p.i - q.i)
    .map((p) => p.x)
}

/** The job's timeline from Redis: its hash and its queue's events stream. */
export async function redisTimeline(store: JobStore, j: Job, more: TimelineEntry[] = []): Promise<Timeline> {
  const fromHash = hashEntries(j)
  const fromStream = await streamEntries(store, j)
  const gaps = [...fromStream.gaps, ...fromHash.gaps]
  return {
    job: { id: j.id, queue: j.queue, task_type: j.task_type, state: j.state },
    entries: mergeTimeline(fromHash.entries, more, fromStream.entries),
    partial: gaps.length > 0,
    gaps,
    events_scanned: fromStream.scanned,
  }
}
