/**
 * The audit log (ADR 0026): every operator action -- who (token name and role, or the CLI's
 * `cli:<user>@<host>`), what (the route), its target, its result, when and from where -- in one
 * bounded stream `<prefix>:audit` (XADD MAXLEN ~ AUDIT_MAX_LEN; one key, also on a Cluster).
 * Never a token, a payload or a request body. Recording never fails the action: a failed write
 * is logged and counted (writeFailures), and the action's answer is already sent.
 */
import type { RedisClient } from './connection.ts'
import type { Keys } from './keys.ts'

export interface AuditEntry {
  /** The stream entry id (the cursor of GET /audit). */
  id: string
  /** When it ended (ms). */
  at: number
  actor: string
  role: string
  /** `METHOD /route/:pattern` for the API, `cli <command>` for the CLI. */
  action: string
  /** What it acted on: `queue=... id=...` (route params, the queue of the query or body). */
  target: string
  /** The HTTP status (the CLI: 200 done, 500 failed). */
  status: number
  /** `ok`, or the error code (VALIDATION, NOT_FOUND, FORBIDDEN...). */
  result: string
  /** The client's address (as client-address.ts derives it; the CLI: its host). */
  ip: string
  user_agent: string
  request_id: string
  duration_ms: number
  /** Non-secret options of the action (its query string without access_token, CLI flags). */
  detail: string
}

export type AuditRecord = Omit<AuditEntry, 'id'>

export interface AuditFilter {
  actor?: string
  /** Substring of the action. */
  action?: string
  /** Substring of the target. */
  target?: string
  /** `ok`, `error` (anything else), or an exact code. */
  result?: string
  since?: number
  until?: number
  /** Continue below this entry id (the previous page's next_cursor). */
  cursor?: string
  limit: number
}

/** Entries one GET /audit examines at most (then it answers with a cursor). */
export const AUDIT_SCAN_MAX = 20_000
const FIELDS = [
  'at',
  'actor',
  'role',
  'action',
  'target',
  'status',
  'result',
  'ip',
  'user_agent',
  'request_id',
  'duration_ms',
  'detail',
] as const

const cut = (s: string, n: number) => (s.length > n ? s.slice(0, n) : s)

export class AuditLog {
  /** Writes that failed since start (also logged). */
  writeFailures = 0
  private readonly redis: RedisClient
  private readonly key: string
  private readonly maxLen: number
  private readonly onError: (err: unknown) => void

  constructor(redis: RedisClient, keys: Keys, maxLen: number, onError: (err: unknown) => void = () => {}) {
    this.redis = redis
    this.key = keys.audit()
    this.maxLen = maxLen
    this.onError = onError
  }

  get enabled(): boolean {
    return this.maxLen > 0
  }

  /** Appends an entry; never throws (a failure is counted and reported to onError). */
  async record(r: AuditRecord): Promise<void> {
    if (!this.enabled) return
    const v: Record<(typeof FIELDS)[number], string> = {
      at: String(r.at),
      actor: cut(r.actor, 128),
      role: cut(r.role, 16),
      action: cut(r.action, 200),
      target: cut(r.target, 300),
      status: String(r.status),
      result: cut(r.result, 64),
      ip: cut(r.ip, 64),
      user_agent: cut(r.user_agent, 200),
      request_id: cut(r.request_id, 64),
      duration_ms: String(Math.round(r.duration_ms)),
      detail: cut(r.detail, 300),
    }
    try {
      await this.redis.xadd(this.key, 'MAXLEN', '~', this.maxLen, '*', ...FIELDS.flatMap((f) => [f, v[f]]))
    } catch (err) {
      this.writeFailures++
      this.onError(err)
    }
  }

  /**
   * Entries newest first matching the filter: read in pages of the stream below the cursor
   * (XREVRANGE, bounded by `until`/`since` through the entry ids' times), filtered here; at most
   * AUDIT_SCAN_MAX entries examined per call -- a page cut short there has a next_cursor.
   */
  async list(f: AuditFilter): Promise<{ items: AuditEntry[]; next_cursor: string | null }> {
    const items: AuditEntry[] = []
    let hi = f.cursor ? `(${f.cursor}` : f.until !== undefined ? `${f.until}-18446744073709551615` : '+'
    const lo = f.since !== undefined ? `${f.since}-0` : '-'
    let examined = 0
    for (;;) {
      const count = Math.min(1000, Math.max(f.limit * 4, 100))
      const rows = (await this.redis.xrevrange(this.key, hi, lo, 'COUNT', count)) as Array<[string, string[]]>
      for (const [id, flat] of rows) {
        examined++
        const e = decode(id, flat)
        if (matches(e, f)) items.push(e)
        if (items.length >= f.limit) return { items, next_cursor: id }
      }
      if (rows.length < count) return { items, next_cursor: null }
      hi = `(${rows[rows.length - 1]![0]}`
      if (examined >= AUDIT_SCAN_MAX) return { items, next_cursor: rows[rows.length - 1]![0] }
    }
  }
}

function decode(id: string, flat: string[]): AuditEntry {
  const h: Record<string, string> = {}
  for (let i = 0; i + 1 < flat.length; i += 2) h[flat[i]!] = flat[i + 1]!
  return {
    id,
    at: Number(h.at ?? id.split('-')[0]),
    actor: h.actor ?? '',
    role: h.role ?? '',
    action: h.action ?? '',
    target: h.target ?? '',
    status: Number(h.status ?? 0),
    result: h.result ?? '',
    ip: h.ip ?? '',
    user_agent: h.user_agent ?? '',
    request_id: h.request_id ?? '',
    duration_ms: Number(h.duration_ms ?? 0),
    detail: h.detail ?? '',
  }
}

function matches(e: AuditEntry, f: AuditFilter): boolean {
  if (f.actor && e.actor !== f.actor) return false
  if (f.action && !e.action.toLowerCase().includes(f.action.toLowerCase())) return false
  if (f.target && !e.target.includes(f.target)) return false
  if (f.result) {
    if (f.result === 'error' ? e.result === 'ok' : e.result !== f.result) return false
  }
  return true
}
