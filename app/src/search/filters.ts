/**
 * Search filters (ADR 0029): parsed and checked once, then applied twice -- as SQL over the
 * archive (history/search-sql.ts) and as a matcher over live jobs read from Redis -- with the
 * same meaning. Pure: no I/O.
 *
 * A payload filter (`where`) is `path=value` (JSON path equals a JSON scalar, or the text as a
 * string when it is not JSON) or `path~text` (the text at the path contains it, any case). A path
 * is dotted identifiers with array indexes (`user.id`, `items[0].sku`, an optional leading
 * `payload.`), bounded in depth and length, so it can never be anything but a path.
 */
import { DtqError } from '../errors.ts'
import type { Job, JobState } from '../queue/job.ts'
import { logicalQueue } from '../queue/partitions.ts'

export const MAX_WHERE = 8
export const MAX_PATH_DEPTH = 8
export const MAX_PATH_LENGTH = 200
export const MAX_TEXT = 200
const KEY = /^[A-Za-z_][A-Za-z0-9_-]{0,63}/
const INDEX = /^\[(\d{1,4})\]/

export type PathStep = string | number
export interface PayloadFilter {
  path: PathStep[]
  op: 'eq' | 'contains'
  /** eq: a JSON scalar; contains: the text (as given). */
  value: string | number | boolean | null
}

/** What a search asks, checked: every part optional. Times in ms since the epoch. */
export interface SearchFilters {
  queue?: string
  task_type?: string
  state?: JobState
  worker?: string
  from?: number
  to?: number
  q?: string
  where: PayloadFilter[]
}

const bad = (message: string, details?: unknown) => new DtqError('VALIDATION', message, details)

/** A JSON path as steps, or a 400 naming what is wrong with it. */
export function parsePath(text: string): { path: PathStep[]; rest: string } {
  let s = text.startsWith('payload.') ? text.slice('payload.'.length) : text
  const path: PathStep[] = []
  for (;;) {
    const k = KEY.exec(s)
    if (!k) {
      throw bad(
        `payload filter "${text}": a path is dotted names (a letter or _ then letters, digits, _ or -, at most 64) with optional [index], e.g. user.id or items[0].sku`,
      )
    }
    path.push(k[0])
    s = s.slice(k[0].length)
    for (let m = INDEX.exec(s); m; m = INDEX.exec(s)) {
      path.push(Number(m[1]))
      s = s.slice(m[0].length)
    }
    if (path.length > MAX_PATH_DEPTH)
      throw bad(`payload filter "${text}": a path has at most ${MAX_PATH_DEPTH} steps`)
    if (!s.startsWith('.')) return { path, rest: s }
    s = s.slice(1)
  }
}

/** One `where` item: `path=value` or `path~text`. */
export function parseWhere(text: string): PayloadFilter {
  const { path, rest } = parsePath(text)
  const pathLength = text.length - rest.length
  if (pathLength > MAX_PATH_LENGTH)
    throw bad(`payload filter "${text}": a path is at most ${MAX_PATH_LENGTH} characters`)
  const op = rest[0]
  const raw = rest.slice(1)
  if (op !== '=' && op !== '~') {
    throw bad(`payload filter "${text}": after the path comes = (equals a JSON value) or ~ (contains text)`)
  }
  if (raw.length > MAX_TEXT) throw bad(`payload filter "${text}": a value is at most ${MAX_TEXT} characters`)
  if (op === '~') {
    if (!raw) throw bad(`payload filter "${text}": ~ needs some text`)
    return { path, op: 'contains', value: raw }
  }
  let value: unknown = raw
  try {
    value = JSON.parse(raw)
  } catch {}
  if (value !== null && typeof value === 'object') {
    throw bad(
      `payload filter "${text}": = compares with a scalar (a string, number, true, false or null), not an object or array`,
    )
  }
  return { path, op: 'eq', value: value as PayloadFilter['value'] }
}

/** The filters as a request gives them: `where` unparsed, one or several. */
export type RawFilters = Omit<SearchFilters, 'where'> & { where?: string | string[] }

export function parseFilters(raw: RawFilters): SearchFilters {
  const items = raw.where === undefined ? [] : Array.isArray(raw.where) ? raw.where : [raw.where]
  if (items.length > MAX_WHERE) throw bad(`at most ${MAX_WHERE} payload filters (where)`)
  if (raw.from !== undefined && raw.to !== undefined && raw.from >= raw.to) {
    throw bad('from must be before to (both in ms since the epoch)')
  }
  const q = raw.q?.trim()
  return {
    queue: raw.queue,
    task_type: raw.task_type,
    state: raw.state,
    worker: raw.worker,
    from: raw.from,
    to: raw.to,
    q: q || undefined,
    where: items.map(parseWhere),
  }
}

/** The values at a path, in jsonpath's lax mode (what PostgreSQL's `@@` does): arrays unwrapped. */
export function valuesAt(doc: unknown, path: readonly PathStep[]): unknown[] {
  let cur: unknown[] = [doc]
  for (const step of path) {
    const next: unknown[] = []
    for (const v of cur) {
      if (typeof step === 'number') {
        const arr = Array.isArray(v) ? v : [v]
        if (step < arr.length) next.push(arr[step])
      } else {
        for (const o of Array.isArray(v) ? v : [v])
          if (o !== null && typeof o === 'object' && !Array.isArray(o) && Object.hasOwn(o, step))
            next.push((o as Record<string, unknown>)[step])
      }
    }
    cur = next
  }
  return cur
}

/** The text at a path as `payload #>> path` gives it (strings bare, anything else as JSON). */
export function textAt(doc: unknown, path: readonly PathStep[]): string | null {
  let v: unknown = doc
  for (const step of path) {
    if (typeof step === 'number') v = Array.isArray(v) ? v[step] : undefined
    else
      v =
        v !== null && typeof v === 'object' && !Array.isArray(v)
          ? (v as Record<string, unknown>)[step]
          : undefined
    if (v === undefined) return null
  }
  if (v === null) return null
  return typeof v === 'string' ? v : JSON.stringify(v)
}

function matchesWhere(payload: unknown, f: PayloadFilter): boolean {
  if (f.op === 'contains') {
    const t = textAt(payload, f.path)
    return t?.toLowerCase().includes(String(f.value).toLowerCase()) === true
  }
  return valuesAt(payload, f.path).some((v) => (Array.isArray(v) ? v : [v]).some((x) => x === f.value))
}

/**
 * The words of a free-text query, as the live matcher uses them: plain and quoted words must all
 * be in the text, `-word` must not; `or` is ignored (PostgreSQL's websearch_to_tsquery does the
 * real thing over the archive; this is the live part's close approximation).
 */
export function textTerms(q: string): { must: string[]; not: string[] } {
  const must: string[] = []
  const not: string[] = []
  for (const m of q.toLowerCase().matchAll(/(-?)"([^"]*)"|(-?)(\S+)/g)) {
    const neg = (m[1] ?? m[3]) === '-'
    const text = m[2] ?? m[4] ?? ''
    if (!m[2] && text === 'or') continue
    for (const w of text.split(/[^\p{L}\p{N}]+/u).filter(Boolean)) (neg ? not : must).push(w)
  }
  return { must, not }
}

/** The time a job sorts by: when it finished, or (still live) when it was created. */
export const sortTime = (job: Job): number => job.finished_at ?? job.created_at

/** Whether a live job matches (the archive applies the same filters in SQL). */
export function matcher(f: SearchFilters): (job: Job) => boolean {
  const terms = f.q ? textTerms(f.q) : null
  return (job) => {
    if (f.queue && logicalQueue(job.queue) !== f.queue) return false
    if (f.task_type && job.task_type !== f.task_type) return false
    if (f.state && job.state !== f.state) return false
    if (f.worker && job.worker !== f.worker) return false
    const at = sortTime(job)
    if (f.from !== undefined && at < f.from) return false
    if (f.to !== undefined && at >= f.to) return false
    for (const w of f.where) if (!matchesWhere(job.payload, w)) return false
    if (terms) {
      const text =
        `${job.error_class ?? ''} ${job.error ?? ''} ${JSON.stringify(job.payload ?? null)}`.toLowerCase()
      const words = new Set(text.split(/[^\p{L}\p{N}]+/u))
      if (!terms.must.every((w) => words.has(w)) || terms.not.some((w) => words.has(w))) return false
    }
    return true
  }
}

/** A position in a search's order: time desc, then queue desc, then job id desc. */
export interface SearchKey {
  at: number
  queue: string
  id: string
}

/** True when `a` comes before `b` in the results (newer first). */
export function ahead(a: SearchKey, b: SearchKey): boolean {
  if (a.at !== b.at) return a.at > b.at
  if (a.queue !== b.queue) return a.queue > b.queue
  return a.id > b.id
}

export function encodeSearchCursor(k: SearchKey): string {
  return Buffer.from(JSON.stringify(['s1', k.at, k.queue, k.id])).toString('base64url')
}

export function decodeSearchCursor(s: string): SearchKey {
  try {
    const v = JSON.parse(Buffer.from(s, 'base64url').toString('utf8'))
    if (
      Array.isArray(v) &&
      v.length === 4 &&
      v[0] === 's1' &&
      Number.isSafeInteger(v[1]) &&
      v[1] >= 0 &&
      typeof v[2] === 'string' &&
      typeof v[3] === 'string' &&
      v[2].length <= 200 &&
      v[3].length <= 200
    ) {
      const k = { at: v[1], queue: v[2], id: v[3] }
      if (encodeSearchCursor(k) === s) return k
    }
  } catch {}
  throw bad("cursor is not valid: pass a search page's next_cursor as it was given")
}
