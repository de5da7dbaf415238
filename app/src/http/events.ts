/**
 * EventHub: one reader per API process of every queue's lifecycle events stream, fanned out
 * to SSE subscribers with their filters. A subscriber that resumes (Last-Event-ID) first gets
 * what it missed (XRANGE after that id, in every queue), then the live feed, without gaps or
 * repeats. Event ids are stream ids; the same Redis clock orders them across queues.
 */
import type { Redis } from 'ioredis'
import type { JobStore } from '../redis/store.ts'

export interface LifecycleEvent {
  id: string
  queue: string
  job_id: string
  event: string
  task_type: string
  at: number
}

export interface EventFilter {
  queue?: string
  task_type?: string
  job_id?: string
}

interface Subscriber {
  filter: EventFilter
  send: (e: LifecycleEvent) => void
  /** While replaying history, live events wait here. */
  buffer: LifecycleEvent[] | null
  lastSent: string
}

/**
 * An event's id: the id of the events-stream entry that holds it, then `.<n>` for the n-th
 * (n ≥ 1) of several events written as one entry (one script call starting 30 jobs writes one
 * entry). Ids order events the way they happened; the same Redis clock orders them across queues.
 */
export const EVENT_ID = /^\d{1,20}-\d{1,20}(\.\d{1,9})?$/

/** An event id as [ms, seq, n]. */
function parseEventId(id: string): [bigint, bigint, number] {
  const dot = id.indexOf('.')
  const entry = dot < 0 ? id : id.slice(0, dot)
  const [ms, seq] = entry.split('-').map(BigInt) as [bigint, bigint]
  return [ms, seq, dot < 0 ? 0 : Number(id.slice(dot + 1))]
}

/** Event ids compared in order (entry id as numbers, then position in the entry). */
export function compareIds(a: string, b: string): number {
  const [am, as, an] = parseEventId(a)
  const [bm, bs, bn] = parseEventId(b)
  if (am !== bm) return am < bm ? -1 : 1
  if (as !== bs) return as < bs ? -1 : 1
  return an === bn ? 0 : an < bn ? -1 : 1
}

/** The id after every event of an entry (where a subscriber that starts "now" stands). */
const endOfEntry = (entry: string) => `${entry}.999999999`

function matches(f: EventFilter, e: LifecycleEvent): boolean {
  return (
    (!f.queue || f.queue === e.queue) &&
    (!f.task_type || f.task_type === e.task_type) &&
    (!f.job_id || f.job_id === e.job_id)
  )
}

/** The events of one stream entry: `job` holds one id or several, space-separated. */
function toEvents(queue: string, id: string, fields: string[], out: LifecycleEvent[]): void {
  let jobs = ''
  let event = ''
  let type = ''
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const k = fields[i]
    if (k === 'job') jobs = fields[i + 1]!
    else if (k === 'event') event = fields[i + 1]!
    else if (k === 'type') type = fields[i + 1]!
  }
  const at = Number(id.slice(0, id.indexOf('-')))
  jobs.split(' ').forEach((job_id, n) => {
    out.push({ id: n === 0 ? id : `${id}.${n}`, queue, job_id, event, task_type: type, at })
  })
}

export class EventHub {
  private readonly store: JobStore
  private readonly blocking: Redis
  private readonly subscribers = new Set<Subscriber>()
  private readonly positions = new Map<string, string>()
  private running = false
  private loopDone: Promise<void> = Promise.resolve()
  private queuesCheckedAt = 0
  private started = false

  constructor(store: JobStore, blocking: Redis) {
    this.store = store
    this.blocking = blocking
  }

  get size(): number {
    return this.subscribers.size
  }

  /** Adds a subscriber; resolves after any replay. Returns the unsubscribe function. */
  async subscribe(
    filter: EventFilter,
    send: (e: LifecycleEvent) => void,
    lastEventId?: string,
  ): Promise<() => void> {
    // Without Last-Event-ID a subscriber starts at "now": after the newest event of its queues.
    // It then resumes from there like any other, so what the feed delivered between that read
    // and this subscription is not lost (the replay is usually empty).
    const start = lastEventId ?? (await this.newestId(filter.queue))
    const sub: Subscriber = { filter, send, buffer: [], lastSent: start }
    this.subscribers.add(sub)
    this.ensureRunning()
    try {
      const queues = filter.queue ? [filter.queue] : await this.store.queues()
      const missed: LifecycleEvent[] = []
      for (const q of queues) {
        const rows = (await this.store.redis.xrange(
          this.store.keys.events(q),
          start.split('.')[0]!, // from its entry on; send() skips what was already sent
          '+',
          'COUNT',
          10_000,
        )) as Array<[string, string[]]>
        for (const [id, fields] of rows) toEvents(q, id, fields, missed)
      }
      missed.sort((a, b) => compareIds(a.id, b.id))
      // Sent straight away: live events that arrived meanwhile wait in the buffer and come
      // after (those already replayed are skipped by their id).
      for (const e of missed) this.send(sub, e)
    } finally {
      const buffered = sub.buffer ?? []
      sub.buffer = null
      for (const e of buffered) this.send(sub, e)
    }
    return () => {
      this.subscribers.delete(sub)
    }
  }

  private async newestId(queue?: string): Promise<string> {
    const queues = queue ? [queue] : await this.store.queues()
    let newest = '0-0'
    for (const q of queues) {
      const last = (await this.store.redis.xrevrange(
        this.store.keys.events(q),
        '+',
        '-',
        'COUNT',
        1,
      )) as Array<[string, string[]]>
      const id = last[0]?.[0]
      if (id && compareIds(id, newest) > 0) newest = id
    }
    return endOfEntry(newest)
  }

  /** A live event: to the subscriber, or to its buffer while it replays what it missed. */
  private deliver(sub: Subscriber, e: LifecycleEvent): void {
    if (sub.buffer) sub.buffer.push(e)
    else this.send(sub, e)
  }

  /** Sends an event newer than the last one sent that matches the filter. */
  private send(sub: Subscriber, e: LifecycleEvent): void {
    if (compareIds(e.id, sub.lastSent) <= 0 || !matches(sub.filter, e)) return
    sub.lastSent = e.id
    sub.send(e)
  }

  private ensureRunning(): void {
    if (this.running) return
    this.running = true
    this.loopDone = this.loop()
  }

  async stop(): Promise<void> {
    this.running = false
    this.subscribers.clear()
    this.blocking.disconnect()
    await this.loopDone
  }

  private async refreshQueues(): Promise<void> {
    if (this.started && Date.now() - this.queuesCheckedAt < 1000) return
    this.queuesCheckedAt = Date.now()
    const queues = await this.store.queues()
    // When the feed starts, every queue is read from the earliest point a subscriber stands at
    // (not from "now": events written between a subscriber's start or replay and this moment
    // would be lost; what a subscriber already has is skipped by deliver()). Queues that appear
    // later are read from their beginning (their first events happened after we last looked).
    let from = '0-0'
    if (!this.started) {
      let earliest: string | null = null
      for (const sub of this.subscribers) {
        const entry = sub.lastSent.split('.')[0]!
        if (earliest === null || compareIds(entry, earliest) < 0) earliest = entry
      }
      from = earliest ?? '0-0'
    }
    this.started = true
    for (const q of queues) if (!this.positions.has(q)) this.positions.set(q, from)
  }

  private async loop(): Promise<void> {
    let failures = 0
    while (this.running) {
      if (!this.subscribers.size) {
        this.running = false
        this.positions.clear()
        this.started = false
        return
      }
      try {
        await this.refreshQueues()
        if (!this.positions.size) {
          await new Promise((r) => setTimeout(r, 500))
          continue
        }
        if (this.blocking.status === 'wait') await this.blocking.connect().catch(() => {})
        const queues = [...this.positions.keys()]
        const res = (await this.blocking.xread(
          'COUNT',
          1000,
          'BLOCK',
          1000,
          'STREAMS',
          ...queues.map((q) => this.store.keys.events(q)),
          ...queues.map((q) => this.positions.get(q)!),
        )) as Array<[string, Array<[string, string[]]>]> | null
        failures = 0
        if (!res) continue
        const batch: LifecycleEvent[] = []
        for (const [key, rows] of res) {
          const q = queues[queues.findIndex((x) => this.store.keys.events(x) === key)]!
          for (const [id, fields] of rows) toEvents(q, id, fields, batch)
          const last = rows[rows.length - 1]
          if (last) this.positions.set(q, last[0])
        }
        batch.sort((a, b) => compareIds(a.id, b.id))
        for (const e of batch) for (const s of this.subscribers) this.deliver(s, e)
      } catch {
        if (!this.running) return
        failures++
        await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** failures, 2000)))
      }
    }
  }
}
