/**
 * Listing pages: the cursor (opaque to clients: base64url of score, job id, queue) and the
 * newest-first order every listing follows -- score desc, then job id desc by bytes, then queue
 * desc -- shared by the API, the store's page merge and the `list` function (scripts/list.lua).
 */
import { DtqError } from '../errors.ts'
import { PHYSICAL_QUEUE_PATTERN } from '../queue/partitions.ts'
import { JOB_ID_PATTERN } from '../queue/validate.ts'

export interface ListCursor {
  score: number
  id: string
  queue: string
}

export interface Page<T> {
  items: T[]
  next_cursor: string | null
}

export function encodeCursor(c: ListCursor): string {
  return Buffer.from(JSON.stringify([c.score, c.id, c.queue])).toString('base64url')
}

/**
 * The position a cursor names, or null unless it is exactly what encodeCursor gives for a position
 * (a whole score from 0, a job id, a queue name): a crafted score (negative, fractional, huge,
 * spelled with an exponent) never reaches a script.
 */
export function decodeCursor(s: string): ListCursor | null {
  try {
    const v = JSON.parse(Buffer.from(s, 'base64url').toString('utf8'))
    if (
      Array.isArray(v) &&
      v.length === 3 &&
      Number.isSafeInteger(v[0]) &&
      v[0] >= 0 &&
      typeof v[1] === 'string' &&
      JOB_ID_PATTERN.test(v[1]) &&
      typeof v[2] === 'string' &&
      PHYSICAL_QUEUE_PATTERN.test(v[2])
    ) {
      const c = { score: v[0], id: v[1], queue: v[2] }
      if (encodeCursor(c) === s) return c
    }
  } catch {}
  return null
}

/** A listing's starting position: none, or the cursor given (a 400 when it is not one of ours). */
export function startAt(cursor: string | null | undefined): ListCursor | null {
  if (cursor === undefined || cursor === null) return null
  const c = decodeCursor(cursor)
  if (!c) throw new DtqError('VALIDATION', "cursor is not valid: pass a page's next_cursor as it was given")
  return c
}

export interface Candidate {
  score: number
  id: string
  queue: string
  /** Extra data carried by the source (the DLQ entry fields). */
  extra?: Record<string, string>
}

/**
 * Newest-first order: score desc, then id desc, then queue desc (the cursor's total order).
 * True when `a` comes after `b`.
 */
export function before(a: ListCursor, b: ListCursor): boolean {
  if (a.score !== b.score) return a.score < b.score
  if (a.id !== b.id) return a.id < b.id
  return a.queue < b.queue
}

/** A queue's part in a listing page (see JobStore.scanPage). */
export interface QueueScan {
  queue: string
  /** Matches the `list` function returned that are not on the page yet, in order. */
  buf: Candidate[]
  done: boolean
  /** The last candidate examined: everything up to it is in `buf` or on the page already. */
  last: ListCursor | null
}

/**
 * Whether a queue may still hold a match ahead of candidate `c` (or of anything, without `c`):
 * it has nothing buffered and has not examined that far.
 */
export function blocks(s: QueueScan, c: Candidate | undefined, later: typeof before = before): boolean {
  return !s.done && !s.buf.length && (!c || !s.last || later(c, s.last))
}

/** Oldest-first order (ADR 0033): the reverse of `before`. True when `a` comes after `b`. */
export function beforeAsc(a: ListCursor, b: ListCursor): boolean {
  return before(b, a)
}

/**
 * `list`: matches (flat: score, id, entry, failed_at), done, last score, last id, examined; and
 * for the created-time index, the members met whose job hash is gone.
 */
export type ListReply = [string[], number, string, string, number, string[]?]
