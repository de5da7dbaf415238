/**
 * The lifecycle events stream of a queue (`<prefix>:{q}:events`): its format and its reads, next
 * to what writes it (flush() in scripts/lib/2-batch.lua). An entry holds the events of one run
 * of same-kind transitions in a script call -- fields `job` (one id, or several space-separated),
 * `event`, `type` -- so an entry of n jobs is n events with ids `E`, `E.1` … `E.(n-1)`
 * (ADR 0009). The API's SSE hub (http/events.ts) reads through here only.
 */
import { isCluster, type RedisClient } from './connection.ts'
import type { JobStore } from './store.ts'

export interface LifecycleEvent {
  id: string
  queue: string
  job_id: string
  event: string
  task_type: string
  at: number
}

/**
 * An event's id: the id of the events-stream entry that holds it, then `.<n>` for the n-th
 * (n ≥ 1) of several events written as one entry (one script call starting 30 jobs writes one
 * entry). Ids order events the way they happened; the same Redis clock orders them across queues.
 */
const EVENT_ID = /^(\d{1,20})-(\d{1,20})(?:\.(\d{1,9}))?$/
/** Both parts of a stream id are 64-bit unsigned integers; Redis rejects anything larger. */
const MAX_ID_PART = 2n ** 64n - 1n

/**
 * A client's event id in the form Redis writes (no leading zeros, no `.0`), or null when it
 * cannot be one. Everything that reaches Redis from a client passed here.
 */
export function parseEventId(raw: string): string | null {
  const m = EVENT_ID.exec(raw)
  if (!m) return null
  const ms = BigInt(m[1]!)
  const seq = BigInt(m[2]!)
  if (ms > MAX_ID_PART || seq > MAX_ID_PART) return null
  const n = m[3] === undefined ? 0 : Number(m[3])
  return n ? `${ms}-${seq}.${n}` : `${ms}-${seq}`
}

/** Decimal integers without leading zeros (as Redis writes them) compared as numbers. */
export const compareDigits = (a: string, b: string): number =>
  a.length !== b.length ? a.length - b.length : a < b ? -1 : a > b ? 1 : 0

/** Event ids compared in order (entry id as numbers, then position in the entry). */
export function compareIds(a: string, b: string): number {
  const ad = a.indexOf('-')
  const bd = b.indexOf('-')
  const c = compareDigits(a.slice(0, ad), b.slice(0, bd))
  if (c) return Math.sign(c)
  const ap = a.indexOf('.', ad)
  const bp = b.indexOf('.', bd)
  const s = compareDigits(a.slice(ad + 1, ap < 0 ? undefined : ap), b.slice(bd + 1, bp < 0 ? undefined : bp))
  if (s) return Math.sign(s)
  return Math.sign((ap < 0 ? 0 : Number(a.slice(ap + 1))) - (bp < 0 ? 0 : Number(b.slice(bp + 1))))
}

export const entryOf = (id: string) => (id.includes('.') ? id.slice(0, id.indexOf('.')) : id)
/** The id after every event of an entry (where a client that reloaded stands). */
export const endOfEntry = (entry: string) => `${entry}.999999999`

/** The events of one stream entry: `job` holds one id or several, space-separated. */
export function toEvents(queue: string, id: string, fields: string[], out: LifecycleEvent[]): void {
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

/** How many events of an entry come after `after` (an event id). */
export function eventsAfter(id: string, fields: string[], after: string): number {
  let n = 1
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i] === 'job') {
      const jobs = fields[i + 1]!
      for (let j = jobs.indexOf(' '); j >= 0; j = jobs.indexOf(' ', j + 1)) n++
    }
  }
  if (id !== entryOf(after)) return compareIds(id, after) > 0 ? n : 0
  const dot = after.indexOf('.')
  return Math.max(0, n - 1 - (dot < 0 ? 0 : Number(after.slice(dot + 1))))
}

type Entries = Array<[string, string[]]>

/** Entries of a queue's events stream in [from, to] (XRANGE syntax), at most `count`. */
export function rangeEntries(store: JobStore, queue: string, from: string, to: string, count: number) {
  return store.redis.xrange(store.keys.events(queue), from, to, 'COUNT', count) as Promise<Entries>
}

/** The newest entry id of each queue's events stream ('0-0' when empty): one pipelined round. */
export async function newestEntries(store: JobStore, queues: readonly string[]): Promise<string[]> {
  const newest = await Promise.all(
    queues.map((q) => store.redis.xrevrange(store.keys.events(q), '+', '-', 'COUNT', 1) as Promise<Entries>),
  )
  return newest.map((rows) => rows[0]?.[0] ?? '0-0')
}

/** On a Redis Cluster, how often the events streams are read while nothing comes (see readEntries). */
export const CLUSTER_POLL_MS = 100

type ReadReply = Array<[string, Entries]> | null

/**
 * Entries of several queues' events streams after the given positions (`keys[i]` after
 * `after[i]`), waiting up to `blockMs` (0: not at all) for one. Null when nothing came.
 *
 * On one server it is one XREAD BLOCK. On a Redis Cluster each queue is a slot of its own and one
 * XREAD cannot span slots, nor one connection hold a blocking read per queue: the streams are
 * read with one XREAD each, sent together (one round trip per node), every CLUSTER_POLL_MS while
 * nothing comes -- a cost of (queues × 10) reads a second per API instance while someone
 * watches the feed (the hub stops reading when no one does), and up to CLUSTER_POLL_MS of
 * added delay (ADR 0017). The polls go on the store's own connection (autopipelined; it outlives
 * the blocking one at shutdown), not on `blocking`.
 */
export async function readEntries(
  store: JobStore,
  blocking: RedisClient,
  keys: string[],
  after: string[],
  count: number,
  blockMs: number,
): Promise<ReadReply> {
  const conn = store.redis
  if (!isCluster(conn)) {
    return blocking.xread(
      'COUNT',
      count,
      ...((blockMs > 0 ? ['BLOCK', blockMs] : []) as []),
      'STREAMS',
      ...keys,
      ...after,
    ) as Promise<ReadReply>
  }
  const deadline = Date.now() + blockMs
  for (;;) {
    const replies = await Promise.all(
      keys.map((k, i) => conn.xread('COUNT', count, 'STREAMS', k, after[i]!) as Promise<ReadReply>),
    )
    const got = replies.flatMap((r) => r ?? [])
    if (got.length) return got
    const left = deadline - Date.now()
    if (left <= 0 || blocking.status === 'end') return null
    await new Promise((r) => setTimeout(r, Math.min(CLUSTER_POLL_MS, left)))
  }
}

/** Redis's clock now, ms. */
export async function redisNowMs(store: JobStore): Promise<number> {
  const [s, us] = (await store.redis.time()) as [string | number, string | number]
  return Number(s) * 1000 + Math.floor(Number(us) / 1000)
}
