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

export const STREAM_ID = /^\d{1,20}-\d{1,20}$/

/** Stream ids compared as numbers (ms, then sequence). */
export function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(BigInt) as [bigint, bigint]
  const [bm, bs] = b.split('-').map(BigInt) as [bigint, bigint]
  if (am !== bm) return am < bm ? -1 : 1
  if (as !== bs) return as < bs ? -1 : 1
  return 0
}

function matches(f: EventFilter, e: LifecycleEvent): boolean {
  return (
    (!f.queue || f.queue === e.queue) &&
    (!f.task_type || f.task_type === e.task_type) &&
    (!f.job_id || f.job_id === e.job_id)
  )
}

function toEvent(queue: string, id: string, fields: string[]): LifecycleEvent {
  const f: Record<string, string> = {}
  for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!
  return {
    id,
    queue,
    job_id: f.job ?? '',
    event: f.event ?? '',
    task_type: f.type ?? '',
    at: Number(id.split('-')[0]),
  }
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
    const start = lastEventId ?? (await this.newestId(filter.queue))
    const sub: Subscriber = { filter, send, buffer: lastEventId ? [] : null, lastSent: start }
    this.subscribers.add(sub)
    this.ensureRunning()
    if (lastEventId) {
      try {
        const queues = filter.queue ? [filter.queue] : await this.store.queues()
        const missed: LifecycleEvent[] = []
        for (const q of queues) {
          const rows = (await this.store.redis.xrange(
            this.store.keys.events(q),
            `(${lastEventId}`,
            '+',
            'COUNT',
            10_000,
          )) as Array<[string, string[]]>
          for (const [id, fields] of rows) missed.push(toEvent(q, id, fields))
        }
        missed.sort((a, b) => compareIds(a.id, b.id))
        for (const e of missed) this.deliver(sub, e)
      } finally {
        const buffered = sub.buffer ?? []
        sub.buffer = null
        for (const e of buffered) this.deliver(sub, e)
      }
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
    return newest
  }

  private deliver(sub: Subscriber, e: LifecycleEvent): void {
    if (sub.buffer) {
      sub.buffer.push(e)
      return
    }
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
    // Queues known when the feed starts are read from their current end; queues that appear
    // later from their beginning (their first events happened after we last looked).
    const first = !this.started
    this.started = true
    const fresh = queues.filter((q) => !this.positions.has(q))
    for (const q of fresh) {
      if (first) {
        const last = (await this.store.redis.xrevrange(
          this.store.keys.events(q),
          '+',
          '-',
          'COUNT',
          1,
        )) as Array<[string, string[]]>
        this.positions.set(q, last[0]?.[0] ?? '0-0')
      } else this.positions.set(q, '0-0')
    }
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
          for (const [id, fields] of rows) batch.push(toEvent(q, id, fields))
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
