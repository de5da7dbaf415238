/**
 * Flow-control limits (docs/decisions/0022): the spec a user gives for a queue -- rate limits,
 * concurrency caps, per-key concurrency, breakers, per queue and per task type -- its checks,
 * and the flat fields the engine stores (scripts/lib/2c-limits.lua). No I/O.
 */

import type { Problems } from './validate.ts'
import { TASK_TYPE_PATTERN } from './validate.ts'

export interface RateSpec {
  /** At most this many jobs start… */
  limit: number
  /** …per this many ms (a burst of up to `limit`, then one every window_ms / limit). */
  window_ms: number
}

export interface BreakerSpec {
  /** Consecutive failed attempts that open it. */
  failures: number
  /** How long it stays open before one probe runs, ms. */
  cooldown_ms: number
}

export interface TypeLimitsSpec {
  rate?: RateSpec
  /** At most this many of the type running at once across the fleet. */
  concurrency?: number
  breaker?: BreakerSpec
}

export interface LimitsSpec {
  rate?: RateSpec
  /** At most this many of the queue's jobs running at once across the fleet. */
  concurrency?: number
  /** At most this many running at once per partition_key, started in enqueue order (1: FIFO per key). */
  key_concurrency?: number
  /** Per task type, within this queue. */
  types?: Record<string, TypeLimitsSpec>
}

export const MAX_LIMITED_TYPES = 200

const isInt = (v: unknown, lo: number, hi: number): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi

function known(problems: Problems, where: string, v: object, fields: string[]): void {
  for (const k of Object.keys(v))
    if (!fields.includes(k)) problems.push(`${where}${k} is not a known field (${fields.join(', ')})`)
}

function rateFields(problems: Problems, where: string, r: unknown): string | null {
  if (!r || typeof r !== 'object') {
    problems.push(`${where} must be {limit, window_ms}`)
    return null
  }
  known(problems, `${where}.`, r, ['limit', 'window_ms'])
  const { limit, window_ms } = r as RateSpec
  const before = problems.length
  if (!isInt(limit, 1, 1_000_000)) problems.push(`${where}.limit must be an integer from 1 to 1000000`)
  if (!isInt(window_ms, 1, 86_400_000))
    problems.push(`${where}.window_ms must be an integer from 1 to 86400000`)
  return problems.length === before ? `${limit} ${window_ms}` : null
}

function capField(problems: Problems, where: string, v: unknown, max: number): string | null {
  if (isInt(v, 1, max)) return String(v)
  problems.push(`${where} must be an integer from 1 to ${max}`)
  return null
}

/** Checks a spec (every problem pushed) and returns the stored fields (only meaningful without problems). */
export function limitFields(spec: unknown, problems: Problems): Record<string, string> {
  const out: Record<string, string> = {}
  if (!spec || typeof spec !== 'object' || Array.isArray(spec)) {
    problems.push('limits must be an object')
    return out
  }
  const s = spec as LimitsSpec
  known(problems, '', s, ['rate', 'concurrency', 'key_concurrency', 'types'])
  const put = (k: string, v: string | null) => {
    if (v !== null) out[k] = v
  }
  if (s.rate !== undefined) put('rate', rateFields(problems, 'rate', s.rate))
  if (s.concurrency !== undefined) put('conc', capField(problems, 'concurrency', s.concurrency, 1_000_000))
  if (s.key_concurrency !== undefined)
    put('key', capField(problems, 'key_concurrency', s.key_concurrency, 10_000))
  if (s.types !== undefined) {
    if (!s.types || typeof s.types !== 'object' || Array.isArray(s.types))
      problems.push('types must be an object')
    else {
      const names = Object.keys(s.types)
      if (names.length > MAX_LIMITED_TYPES) problems.push(`at most ${MAX_LIMITED_TYPES} task types`)
      for (const t of names) {
        const where = `types.${t}`
        if (!TASK_TYPE_PATTERN.test(t))
          problems.push(`${where}: a task type is 1-128 letters, digits, _ . : / -`)
        const ts = s.types[t]
        if (!ts || typeof ts !== 'object') {
          problems.push(`${where} must be an object`)
          continue
        }
        known(problems, `${where}.`, ts, ['rate', 'concurrency', 'breaker'])
        if (ts.rate !== undefined) put(`t:${t}:rate`, rateFields(problems, `${where}.rate`, ts.rate))
        if (ts.concurrency !== undefined)
          put(`t:${t}:conc`, capField(problems, `${where}.concurrency`, ts.concurrency, 1_000_000))
        if (ts.breaker !== undefined) {
          const b = ts.breaker
          if (!b || typeof b !== 'object') problems.push(`${where}.breaker must be {failures, cooldown_ms}`)
          else {
            known(problems, `${where}.breaker.`, b, ['failures', 'cooldown_ms'])
            const f = capField(problems, `${where}.breaker.failures`, b.failures, 10_000)
            if (!isInt(b.cooldown_ms, 100, 86_400_000))
              problems.push(`${where}.breaker.cooldown_ms must be an integer from 100 to 86400000`)
            else if (f !== null) out[`t:${t}:cb`] = `${f} ${b.cooldown_ms}`
          }
        }
      }
    }
  }
  return out
}

/** The spec back from stored fields (the pause fields, state, left out). */
export function limitsSpec(fields: Record<string, string>): LimitsSpec {
  const spec: LimitsSpec = {}
  const rate = (v: string): RateSpec => {
    const [limit, window_ms] = v.split(' ').map(Number)
    return { limit: limit!, window_ms: window_ms! }
  }
  const type = (t: string): TypeLimitsSpec => {
    spec.types ??= {}
    spec.types[t] ??= {}
    return spec.types[t]
  }
  for (const [k, v] of Object.entries(fields)) {
    if (k === 'rate') spec.rate = rate(v)
    else if (k === 'conc') spec.concurrency = Number(v)
    else if (k === 'key') spec.key_concurrency = Number(v)
    else {
      const m = /^t:(.+):(rate|conc|cb)$/.exec(k)
      if (!m) continue
      const t = type(m[1]!)
      if (m[2] === 'rate') t.rate = rate(v)
      else if (m[2] === 'conc') t.concurrency = Number(v)
      else {
        const [failures, cooldown_ms] = v.split(' ').map(Number)
        t.breaker = { failures: failures!, cooldown_ms: cooldown_ms! }
      }
    }
  }
  return spec
}
