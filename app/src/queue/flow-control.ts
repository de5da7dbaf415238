/**
 * The job options of flow control that Queue.add checks and turns into stored fields
 * (docs/decisions/0021): deduplication (`dedup`) and the start deadline (`start_by`,
 * `expires_in_ms`). Pure: no I/O.
 */
import { createHash } from 'node:crypto'
import { DEDUP_MODES, type DedupMode } from './job.ts'
import { checkInt, checkText, MAX_DELAY_MS, type Problems, parseIsoTime } from './validate.ts'

/** `dedup` as a caller gives it. */
export interface DedupSpec {
  /**
   * unique: at most one job per key while the earlier one lives or within ttl_ms of its
   * creation; throttle: the first add of a window of ttl_ms is kept, later ones answer it;
   * debounce: the pending job takes the latest payload and runs ttl_ms after the latest add.
   */
  mode: DedupMode
  /** The window, ms (unique: optional, 0 -- while the earlier job lives). */
  ttl_ms?: number
  /** The key; without it, the task type and the payload (its JSON with sorted keys). */
  key?: string
}

const DEDUP_FIELDS = new Set(['mode', 'ttl_ms', 'key'])

/** JSON with every object's keys sorted: the same payload hashes the same however it was built. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>
    const keys = Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`
  }
  return JSON.stringify(v ?? null)
}

/** The dedup key's hash: of the caller's key, or of the task type and the payload. */
export function dedupHash(taskType: string, payload: unknown, key?: string): string {
  const text = key !== undefined ? `k\n${key}` : `p\n${taskType}\n${canonicalJson(payload)}`
  return createHash('sha256').update(text).digest('base64url')
}

/** Checks `dedup`; returns its stored value (F.dedup: "<mode> <ttl_ms> <hash>"), or null. */
export function dedupField(
  problems: Problems,
  d: unknown,
  taskType: string,
  payload: unknown,
): string | null {
  const start = problems.length
  if (d === null || typeof d !== 'object' || Array.isArray(d)) {
    problems.push('dedup must be an object {mode, ttl_ms, key?}')
    return null
  }
  const spec = d as Record<string, unknown>
  for (const k of Object.keys(spec)) {
    if (!DEDUP_FIELDS.has(k)) problems.push(`dedup.${k} is not a known field (mode, ttl_ms, key)`)
  }
  const mode = spec.mode as DedupMode
  if (!DEDUP_MODES.includes(mode)) problems.push(`dedup.mode must be one of ${DEDUP_MODES.join(', ')}`)
  const ttl = spec.ttl_ms ?? (mode === 'unique' ? 0 : undefined)
  if (ttl === undefined) problems.push(`dedup.ttl_ms is required for ${mode}: the window, ms`)
  else checkInt(problems, 'dedup.ttl_ms', ttl, mode === 'unique' ? 0 : 1, MAX_DELAY_MS)
  if (spec.key !== undefined) checkText(problems, 'dedup.key', spec.key, 256)
  if (problems.length > start) return null
  return `${mode} ${ttl} ${dedupHash(taskType, payload, spec.key as string | undefined)}`
}

/**
 * The start deadline from `start_by` (ms since the epoch or ISO 8601) or `expires_in_ms`
 * (from now): null without one. It must be ahead of now and not before the job's run time
 * (`runAt`: 0 now, -d in d ms, else ms since the epoch) -- a job that could never start in
 * time is refused rather than created to expire.
 */
export function startByOf(
  problems: Problems,
  spec: { start_by?: number | string; expires_in_ms?: number },
  now: number,
  runAt: number,
): number | null {
  if (spec.start_by !== undefined && spec.expires_in_ms !== undefined) {
    problems.push('give start_by or expires_in_ms, not both')
    return null
  }
  let t: number | null = null
  if (spec.expires_in_ms !== undefined) {
    if (!checkInt(problems, 'expires_in_ms', spec.expires_in_ms, 1, MAX_DELAY_MS)) return null
    t = now + spec.expires_in_ms
  } else if (spec.start_by !== undefined) {
    const v = typeof spec.start_by === 'string' ? parseIsoTime(spec.start_by) : spec.start_by
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= now || v > now + MAX_DELAY_MS) {
      problems.push(
        'start_by must be a time ahead of now and within a year: ms since the epoch, or ISO 8601 with its zone',
      )
      return null
    }
    t = v
  } else return null
  const due = runAt < 0 ? now - runAt : runAt
  if (due > t) problems.push('start_by is before the job would run (run_at / delay_ms): it could never start')
  return t
}
