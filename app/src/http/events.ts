/**
 * EventHub: one reader per API process of every queue's lifecycle events stream, fanned out
 * to SSE subscribers with their filters. A subscriber that resumes (Last-Event-ID) first gets
 * what it missed (its own XRANGE in each queue, merged by id), then the live feed, without gaps
 * or repeats. Event ids are stream ids; the same Redis clock orders them across queues.
 *
 * No subscriber's input or pace reaches another's feed, and each costs O(bound), not O(backlog):
 * - the shared reader starts "now" and only ever moves forward from where it is; a resume point
 *   only decides what that subscriber's own replay reads;
 * - a replay covers at most `sseReplayMaxEvents` events, read a page at a time and written as
 *   the client takes them; a larger gap gets a `reload` event instead;
 * - live events wait for a client that is not keeping up as references to the one shared copy,
 *   at most `sseMaxLagEvents` of them, and nothing is written while its socket is full; a client
 *   that falls further behind, or takes nothing for `sseStallTimeoutMs`, is disconnected (it
 *   resumes with Last-Event-ID when it comes back).
 */

import type { Config } from '../config.ts'
import { DtqError } from '../errors.ts'
import { logicalQueue } from '../queue/partitions.ts'
import type { RedisClient } from '../redis/connection.ts'
import {
  compareDigits,
  compareIds,
  endOfEntry,
  entryOf,
  eventsAfter,
  type LifecycleEvent,
  newestEntries,
  rangeEntries,
  readEntries,
  redisNowMs,
  toEvents,
} from '../redis/event-stream.ts'
import type { JobStore } from '../redis/store.ts'

export { compareIds, type LifecycleEvent, parseEventId } from '../redis/event-stream.ts'

export interface EventFilter {
  queue?: string
  task_type?: string
  job_id?: string
}

/** Where a subscriber's events go: an HTTP response (Node's ServerResponse) fits. */
export interface EventSink {
  /** False when the client's buffer is full: nothing more until 'drain'. */
  write(chunk: string): boolean
  once(event: 'drain', listener: () => void): unknown
  removeListener(event: 'drain', listener: () => void): unknown
}

export type HubOptions = Pick<
  Config,
  'sseHeartbeatMs' | 'sseReplayMaxEvents' | 'sseMaxLagEvents' | 'sseStallTimeoutMs'
>

/** An event with its SSE text, built once and shared by every subscriber that gets it. */
interface FeedEvent extends LifecycleEvent {
  wire?: string
  /** When the hub found its queue (see Subscriber.accepts). */
  found?: number
}

const byId = (a: LifecycleEvent, b: LifecycleEvent) => compareIds(a.id, b.id)

function matches(f: EventFilter, e: LifecycleEvent): boolean {
  return (
    (!f.queue || f.queue === e.queue || f.queue === logicalQueue(e.queue)) &&
    (!f.task_type || f.task_type === e.task_type) &&
    (!f.job_id || f.job_id === e.job_id)
  )
}

function wire(e: FeedEvent): string {
  e.wire ??= `id: ${e.id}\nevent: ${e.event}\ndata: ${JSON.stringify({
    id: e.id,
    queue: e.queue,
    job_id: e.job_id,
    event: e.event,
    task_type: e.task_type,
    at: e.at,
  })}\n\n`
  return e.wire
}

/** Entries per XRANGE page of a replay (and per stream of one XREAD of the shared reader). */
const PAGE = 256
/** Queues whose replay is counted at once. */
const COUNT_PARALLEL = 8
/** Events joined into one write. */
const CHUNK_CHARS = 32_768
/** The reader keeps its place this long after its last subscriber left (reconnects are cheap). */
const IDLE_STOP_MS = 30_000
/** A resume point this far past Redis's clock cannot have been written: it is treated as "now". */
const FUTURE_SLACK_MS = 1000

export interface Subscription {
  /** Writes what the subscriber missed (or `reload`), then lets the live feed through. */
  replay(): Promise<void>
  unsubscribe(): void
}

class Subscriber implements Subscription {
  readonly filter: EventFilter
  private readonly sink: EventSink
  private readonly hub: EventHub
  private readonly opts: HubOptions
  /** Called when the hub disconnects the subscriber (why, as a comment for the client). */
  private readonly drop: (reason: string) => void
  /** Live events not yet written, oldest first from `head` (shared: a slot is a reference). */
  private pending: FeedEvent[] = []
  private head = 0
  /** While the replay is written, live events wait in `pending`. */
  private replaying = true
  /** Its resume point: events at or before it were seen (they may come from a queue found later). */
  floor: string | null
  /** The hub's count of queue discoveries when it joined, and Redis's time then. */
  private readonly joined: number
  private readonly joinedAt: string
  closed = false
  private blocked = false
  private stallTimer: NodeJS.Timeout | undefined
  private onDrained: (() => void) | undefined
  private readonly drained = () => this.unblock()
  /** Set by the hub when it joins (what to replay depends on where the reader stood then). */
  replay: () => Promise<void> = async () => {}

  constructor(
    hub: EventHub,
    filter: EventFilter,
    sink: EventSink,
    floor: string | null,
    joined: [number, number],
    opts: HubOptions,
    drop: (reason: string) => void,
  ) {
    this.joined = joined[0]
    this.joinedAt = `${joined[1]}-0`
    this.hub = hub
    this.filter = filter
    this.sink = sink
    this.floor = floor
    this.opts = opts
    this.drop = drop
  }

  /**
   * Whether an event is for it. The shared reader delivers only events after the subscriber's
   * place in every queue it knew of when the subscriber joined; a queue it found later is read
   * from its beginning, so there the subscriber's start (its resume point, or when it joined)
   * decides.
   */
  private accepts(e: FeedEvent): boolean {
    if (this.floor !== null) {
      if (compareIds(e.id, this.floor) <= 0) return false
    } else if ((e.found ?? 0) > this.joined && compareIds(e.id, this.joinedAt) <= 0) return false
    return matches(this.filter, e)
  }

  /** A live event from the shared reader (written by flush()). */
  offer(e: FeedEvent): void {
    if (this.closed || !this.accepts(e)) return
    this.pending.push(e)
    if (this.replaying || this.blocked) this.checkLag()
  }

  /** A client with more live events waiting than the bound is let go (it resumes later). */
  private checkLag(): void {
    if (this.pending.length - this.head > this.opts.sseMaxLagEvents)
      this.close(
        `disconnected: more than ${this.opts.sseMaxLagEvents} events behind; resume with Last-Event-ID`,
      )
  }

  /** Writes waiting live events until the client's buffer is full. */
  flush(): void {
    if (this.replaying || this.blocked || this.closed) return
    while (this.head < this.pending.length) {
      let chunk = ''
      while (this.head < this.pending.length && chunk.length < CHUNK_CHARS)
        chunk += wire(this.pending[this.head++]!)
      if (!this.write(chunk)) {
        this.checkLag()
        break
      }
    }
    if (this.closed) return
    if (this.head === this.pending.length) {
      this.pending = []
      this.head = 0
    } else if (this.head > 1024 && this.head * 2 > this.pending.length) {
      this.pending = this.pending.slice(this.head)
      this.head = 0
    }
  }

  /** Replayed events, written as the client takes them. False once the subscriber is gone. */
  async writeAll(events: FeedEvent[]): Promise<boolean> {
    let chunk = ''
    for (const e of events) {
      if (!this.accepts(e)) continue
      chunk += wire(e)
      if (chunk.length >= CHUNK_CHARS) {
        if (!(await this.writeWaiting(chunk))) return false
        chunk = ''
      }
    }
    return chunk ? this.writeWaiting(chunk) : !this.closed
  }

  /** Writes a chunk once the client's buffer has room, and waits until it has room again. */
  async writeWaiting(chunk: string): Promise<boolean> {
    while (this.blocked && !this.closed) await new Promise<void>((r) => (this.onDrained = r))
    if (this.closed) return false
    if (!this.write(chunk)) await new Promise<void>((r) => (this.onDrained = r))
    return !this.closed
  }

  /** The replay is over: from now on live events are written as they come. */
  live(): void {
    this.replaying = false
    this.flush()
  }

  ping(): void {
    if (!this.blocked && !this.closed) this.write(': ping\n\n')
  }

  private write(chunk: string): boolean {
    if (this.sink.write(chunk)) return true
    if (this.blocked) return false
    // The client's buffer is full: nothing more is written until it drains, and a client that
    // takes nothing for the stall timeout is let go.
    this.blocked = true
    this.sink.once('drain', this.drained)
    this.stallTimer = setTimeout(
      () => this.close(`disconnected: took nothing for ${this.opts.sseStallTimeoutMs} ms`),
      this.opts.sseStallTimeoutMs,
    )
    return false
  }

  private unblock(): void {
    this.blocked = false
    clearTimeout(this.stallTimer)
    const waiting = this.onDrained
    this.onDrained = undefined
    if (waiting) waiting()
    else this.flush()
  }

  /** Leaves the feed; with a reason, the hub let it go and the connection is ended. */
  close(reason?: string): void {
    if (this.closed) return
    this.closed = true
    clearTimeout(this.stallTimer)
    this.sink.removeListener('drain', this.drained)
    this.pending = []
    this.head = 0
    this.hub.remove(this)
    this.onDrained?.()
    this.onDrained = undefined
    if (reason) this.drop(reason)
  }

  unsubscribe(): void {
    this.close()
  }
}

export class EventHub {
  private readonly store: JobStore
  private readonly blocking: RedisClient
  private readonly opts: HubOptions
  private readonly subscribers = new Set<Subscriber>()
  /** Per queue, the last entry the shared reader has read (what it delivered comes after). */
  private readonly positions = new Map<string, string>()
  private readonly queueOfKey = new Map<string, string>()
  /** Per queue, when the reader found it (a count of the rounds that found queues). */
  private readonly foundIn = new Map<string, number>()
  private found = 0
  /** Registry reads issued and applied (an older answer is never applied after a newer one). */
  private refreshesIssued = 0
  private refreshesApplied = 0
  private starting: Promise<void> | null = null
  private running = false
  private stopped = false
  private loopDone: Promise<void> = Promise.resolve()
  private queuesCheckedAt = 0
  private idleSince = 0
  private heartbeat: NodeJS.Timeout | undefined

  constructor(store: JobStore, blocking: RedisClient, opts: HubOptions) {
    this.store = store
    this.blocking = blocking
    this.opts = opts
  }

  get size(): number {
    return this.subscribers.size
  }

  /**
   * Adds a subscriber at the reader's current place (rejects when Redis cannot be read). Its
   * `replay()` then writes what it missed since `lastEventId` (a parseEventId() result). `drop`
   * is called when the hub lets the subscriber go.
   */
  async subscribe(
    filter: EventFilter,
    sink: EventSink,
    opts: { lastEventId?: string; drop: (reason: string) => void },
  ): Promise<Subscription> {
    const start = opts.lastEventId ?? null
    do {
      await this.start()
      // A resuming subscriber's replay covers the queues the reader knows of; a queue created
      // since it last looked is read from its beginning and the resume point filters it.
      if (start !== null) await this.refreshQueues(true)
    } while (!this.running)
    const joined: [number, number] = [this.found, this.store.clock.now()]
    const sub = new Subscriber(this, filter, sink, start, joined, this.opts, opts.drop)
    this.subscribers.add(sub)
    if (start === null) {
      sub.replay = async () => sub.live()
      return sub
    }
    // Taken in the same turn as the subscriber joins: the shared reader delivers every event
    // after these positions, the replay reads up to them.
    let newest = '0-0'
    const upTo: Array<[string, string]> = []
    for (const [q, pos] of this.positions) {
      if (compareIds(pos, newest) > 0) newest = pos
      if (!filter.queue || filter.queue === q || filter.queue === logicalQueue(q)) upTo.push([q, pos])
    }
    sub.replay = () => this.replay(sub, start, upTo, newest)
    return sub
  }

  /** What a resuming subscriber missed: (start, position] of each queue, at most N events. */
  private async replay(
    sub: Subscriber,
    start: string,
    upTo: Array<[string, string]>,
    newest: string,
  ): Promise<void> {
    try {
      if (compareIds(start, newest) > 0 && (await this.inFuture(start))) {
        // Not an id Redis has written: the subscriber starts now, like one without an id.
        sub.floor = null
        return
      }
      const from = entryOf(start)
      const queues = upTo.filter(([, pos]) => compareIds(pos, from) >= 0)
      const max = this.opts.sseReplayMaxEvents
      let total = queues.length > max ? max + 1 : 0
      const counts: number[] = []
      for (let i = 0; i < queues.length && total <= max; i += COUNT_PARALLEL) {
        const part = queues.slice(i, i + COUNT_PARALLEL)
        const left = max - total + 1
        for (const n of await Promise.all(part.map(([q, pos]) => this.countAfter(q, start, pos, left)))) {
          counts.push(n)
          total += n
        }
      }
      if (total > max) {
        const now = upTo.reduce((a, [, pos]) => (compareIds(pos, a) > 0 ? pos : a), '0-0')
        const data = JSON.stringify({ reason: 'replay_limit', replay_max_events: max })
        await sub.writeWaiting(`id: ${endOfEntry(now)}\nevent: reload\ndata: ${data}\n\n`)
        sub.floor = null
        return
      }
      await this.merge(
        sub,
        queues.filter((_, i) => counts[i]! > 0),
        from,
      )
    } finally {
      sub.live()
    }
  }

  /** Events of `queue` in (after, to], counted up to `limit`, a page at a time. */
  private async countAfter(queue: string, after: string, to: string, limit: number): Promise<number> {
    let from = entryOf(after)
    let n = 0
    for (;;) {
      const want = Math.min(PAGE, limit - n + 1)
      const rows = await rangeEntries(this.store, queue, from, to, want)
      for (const [id, fields] of rows) n += eventsAfter(id, fields, after)
      if (n >= limit || rows.length < want) return n
      from = `(${rows[rows.length - 1]![0]}`
    }
  }

  /**
   * Writes the queues' ranges merged by id, a page per queue at a time: what is written each
   * round is every buffered event up to the smallest last id of a queue that may hold more.
   */
  private async merge(sub: Subscriber, queues: Array<[string, string]>, from: string): Promise<void> {
    let cursors = queues.map(([q, to]) => ({
      q,
      from,
      to,
      buf: [] as FeedEvent[],
      at: 0,
      done: false,
    }))
    while (!sub.closed) {
      await Promise.all(
        cursors
          .filter((c) => !c.done && c.at >= c.buf.length)
          .map(async (c) => {
            const rows = await rangeEntries(this.store, c.q, c.from, c.to, PAGE)
            c.buf = []
            c.at = 0
            for (const [id, fields] of rows) toEvents(c.q, id, fields, c.buf)
            c.done = rows.length < PAGE
            if (rows.length) c.from = `(${rows[rows.length - 1]![0]}`
          }),
      )
      cursors = cursors.filter((c) => c.at < c.buf.length)
      if (!cursors.length) return
      let safe: string | null = null
      for (const c of cursors) {
        const last = c.buf[c.buf.length - 1]!.id
        if (!c.done && (safe === null || compareIds(last, safe) < 0)) safe = last
      }
      const out: FeedEvent[] = []
      for (const c of cursors)
        while (c.at < c.buf.length && (safe === null || compareIds(c.buf[c.at]!.id, safe) <= 0))
          out.push(c.buf[c.at++]!)
      out.sort(byId)
      if (!(await sub.writeAll(out))) return
    }
  }

  /** True when an id is past Redis's clock (by more than a little): no stream can hold it yet. */
  private async inFuture(id: string): Promise<boolean> {
    const now = await redisNowMs(this.store)
    return compareDigits(id.slice(0, id.indexOf('-')), String(now + FUTURE_SLACK_MS)) > 0
  }

  /** Called by a subscriber that leaves. */
  remove(sub: Subscriber): void {
    if (this.subscribers.delete(sub) && !this.subscribers.size) this.idleSince = Date.now()
  }

  /** Starts the shared reader "now" (after the newest entry of every queue), once. */
  private start(): Promise<void> {
    if (this.stopped) return Promise.reject(new DtqError('DRAINING'))
    this.starting ??= this.init().catch((err) => {
      this.starting = null
      throw err
    })
    return this.starting
  }

  private async init(): Promise<void> {
    const queues = await this.store.queues()
    const newest = await newestEntries(this.store, queues)
    if (this.stopped) return
    for (const [i, q] of queues.entries()) this.follow(q, newest[i]!)
    this.queuesCheckedAt = Date.now()
    this.idleSince = Date.now()
    this.running = true
    this.heartbeat = setInterval(() => {
      for (const s of this.subscribers) s.ping()
    }, this.opts.sseHeartbeatMs)
    this.loopDone = this.loop()
  }

  private follow(queue: string, from: string): void {
    this.positions.set(queue, from)
    this.queueOfKey.set(this.store.keys.events(queue), queue)
    this.foundIn.set(queue, this.found)
  }

  private halt(): void {
    this.running = false
    this.starting = null
    clearInterval(this.heartbeat)
    this.positions.clear()
    this.queueOfKey.clear()
    this.foundIn.clear()
  }

  async stop(): Promise<void> {
    this.stopped = true
    for (const s of [...this.subscribers]) s.close()
    this.halt()
    this.blocking.disconnect()
    await this.loopDone
  }

  /** Queues that appear are read from their beginning (their events came after we last looked). */
  private async refreshQueues(force = false): Promise<void> {
    if (!force && Date.now() - this.queuesCheckedAt < 1000) return
    this.queuesCheckedAt = Date.now()
    const n = ++this.refreshesIssued
    const queues = await this.store.queues()
    if (n < this.refreshesApplied || !this.running) return
    this.refreshesApplied = n
    const known = new Set(queues)
    const added = queues.filter((q) => !this.positions.has(q))
    if (added.length) this.found++
    for (const q of added) this.follow(q, '0-0')
    for (const q of this.positions.keys()) {
      if (known.has(q)) continue
      this.positions.delete(q)
      this.queueOfKey.delete(this.store.keys.events(q))
      this.foundIn.delete(q)
    }
  }

  /** One XREAD of every queue from the reader's place (blocking up to 1 s), into `batch`. */
  private async read(block: boolean, batch: FeedEvent[]): Promise<boolean> {
    const keys = [...this.queueOfKey.keys()]
    const res = await readEntries(
      this.store,
      this.blocking,
      keys,
      keys.map((k) => this.positions.get(this.queueOfKey.get(k)!)!),
      PAGE,
      block ? 1000 : 0,
    )
    if (!res || !this.running) return false
    for (const [key, rows] of res) {
      const q = this.queueOfKey.get(key)
      const last = rows[rows.length - 1]
      if (q === undefined || !last) continue
      const from = batch.length
      for (const [id, fields] of rows) toEvents(q, id, fields, batch)
      const found = this.foundIn.get(q)
      for (let i = from; i < batch.length; i++) batch[i]!.found = found
      this.positions.set(q, last[0])
    }
    return true
  }

  private async loop(): Promise<void> {
    let failures = 0
    while (this.running) {
      if (!this.subscribers.size && Date.now() - this.idleSince > IDLE_STOP_MS) {
        this.halt()
        return
      }
      try {
        await this.refreshQueues()
        if (!this.positions.size) {
          await new Promise((r) => setTimeout(r, 500))
          continue
        }
        if (this.blocking.status === 'wait') await this.blocking.connect().catch(() => {})
        const batch: FeedEvent[] = []
        const found = this.found
        if (!(await this.read(true, batch))) continue
        // Queues found while the read waited were not in it: read them (and the rest) up to now
        // before delivering, so their older events do not come after newer ones.
        if (this.found !== found) await this.read(false, batch).catch(() => false)
        failures = 0
        batch.sort(byId)
        for (const s of [...this.subscribers]) {
          for (const e of batch) s.offer(e)
          s.flush()
        }
      } catch {
        if (!this.running) return
        failures++
        await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** failures, 2000)))
      }
    }
  }
}
