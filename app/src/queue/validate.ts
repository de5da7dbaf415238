/**
 * Input rules shared by the library, the CLI and the API: names that may reach a Redis key,
 * payload limits, job options. Pure: no I/O.
 */
import { NAME_PATTERN } from '../config.ts'
import { validationError } from '../errors.ts'
import { PRIORITIES, type Priority } from './job.ts'

/**
 * Queue names and job ids become part of Redis keys: no `{`, `}`, `:`, `*`, spaces or controls.
 * They are path segments of the API too (`/jobs/{id}`, `/queues/{queue}/pause`): `.` and `..`
 * are refused, since URL normalization (browsers, proxies) turns them into another path.
 */
/** Queue names: the same rule as every name setting (config.ts NAME_PATTERN: one spelling). */
export const QUEUE_PATTERN = NAME_PATTERN
export const JOB_ID_PATTERN = /^(?!\.\.?$)[A-Za-z0-9_.-]{1,128}$/
export const TASK_TYPE_PATTERN = /^[A-Za-z0-9_.:/-]{1,128}$/
// biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
const CONTROL = /[\u0000-\u001f\u007f]/
export const MAX_JSON_DEPTH = 32
export const MAX_DELAY_MS = 366 * 24 * 3600 * 1000

/** Task types with this prefix are DTQ's own system jobs (the DLQ redrive): the API refuses them. */
export const RESERVED_TASK_PREFIX = 'dtq.'

export type Problems = string[]

const ISO_TIME =
  /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|([+-])(\d{2}):(\d{2})))?$/

/**
 * An ISO 8601 time as ms since the epoch, or null: a date (`2025-03-01`: midnight UTC), or a date
 * and a time with its zone (`Z` or `±hh:mm`; seconds and a fraction optional), every field in its
 * range and the day in its month. Not Date.parse: it rolls `2024-02-30` over to 1 March, reads a
 * time without a zone in the server's zone (which differs across a fleet) and takes other formats.
 */
export function parseIsoTime(text: string): number | null {
  const m = ISO_TIME.exec(text)
  if (!m) return null
  const [y, mo, d, h, mi, sec] = [1, 2, 3, 4, 5, 6].map((i) => Number(m[i] ?? 0)) as number[]
  const daysInMonth = new Date(Date.UTC(y!, mo!, 0)).getUTCDate() // day 0 of the next month
  const zoneH = Number(m[10] ?? 0)
  const zoneM = Number(m[11] ?? 0)
  if (y! < 1970 || mo! < 1 || mo! > 12 || d! < 1 || d! > daysInMonth) return null
  if (h! > 23 || mi! > 59 || sec! > 59 || zoneH > 23 || zoneM > 59) return null
  const offsetMin = (m[9] === '-' ? -1 : 1) * (zoneH * 60 + zoneM)
  const fraction = Math.round(Number(`0.${m[7] ?? '0'}`) * 1000)
  return Date.UTC(y!, mo! - 1, d!, h!, mi!, sec!) + fraction - offsetMin * 60_000
}

export function checkName(
  problems: Problems,
  field: string,
  v: unknown,
  pattern: RegExp,
  what: string,
): v is string {
  if (typeof v !== 'string' || !pattern.test(v)) {
    problems.push(`${field} must be ${what}`)
    return false
  }
  return true
}

export function checkText(problems: Problems, field: string, v: unknown, max: number): v is string {
  if (typeof v !== 'string' || v.length === 0 || v.length > max || CONTROL.test(v)) {
    problems.push(`${field} must be a string of 1 to ${max} characters without control characters`)
    return false
  }
  return true
}

export function checkInt(
  problems: Problems,
  field: string,
  v: unknown,
  min: number,
  max: number,
): v is number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    problems.push(`${field} must be an integer from ${min} to ${max}`)
    return false
  }
  return true
}

export function checkPriority(problems: Problems, v: unknown): v is Priority {
  if (!PRIORITIES.includes(v as Priority)) {
    problems.push(`priority must be one of ${PRIORITIES.join(', ')}`)
    return false
  }
  return true
}

/** Depth of a JSON value (a scalar is 0); stops counting past `limit`. */
export function jsonDepth(v: unknown, limit = MAX_JSON_DEPTH + 1): number {
  if (v === null || typeof v !== 'object') return 0
  if (limit <= 0) return 1
  let d = 0
  for (const child of Array.isArray(v) ? v : Object.values(v)) {
    d = Math.max(d, jsonDepth(child, limit - 1))
    if (d >= limit) break
  }
  return d + 1
}

/** Serializes a payload or result, enforcing the size and depth limits. */
export function encodeJson(problems: Problems, field: string, v: unknown, maxBytes: number): string | null {
  if (v === undefined) v = null
  if (jsonDepth(v) > MAX_JSON_DEPTH) {
    problems.push(`${field} is nested deeper than ${MAX_JSON_DEPTH} levels`)
    return null
  }
  let s: string
  try {
    s = JSON.stringify(v)
  } catch (err) {
    problems.push(`${field} is not serializable as JSON (${(err as Error).message})`)
    return null
  }
  if (s === undefined) {
    problems.push(`${field} is not serializable as JSON`)
    return null
  }
  const bytes = Buffer.byteLength(s)
  if (bytes > maxBytes) {
    problems.push(`${field} is ${bytes} bytes, above the limit of ${maxBytes}`)
    return null
  }
  return s
}

export function throwIfProblems(problems: Problems, what = 'invalid job'): void {
  if (problems.length) throw validationError(`${what}: ${problems.join('; ')}`, problems)
}
