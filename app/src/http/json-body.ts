/**
 * The JSON body parser: rejects bodies nested deeper than a limit before parsing them (a deep
 * body is a 400, never a stack overflow or a poison job), and `__proto__` / `constructor`
 * keys (prototype poisoning).
 */
import sjson from 'secure-json-parse'
import { DtqError } from '../errors.ts'

export const MAX_BODY_DEPTH = 40

/** Nesting depth of a JSON text, scanning past strings; stops at `limit + 1`. */
export function jsonTextDepth(text: string, limit = MAX_BODY_DEPTH): number {
  let depth = 0
  let max = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 92)
        i++ // backslash: skip the escaped character
      else if (c === 34) inString = false
    } else if (c === 34) inString = true
    else if (c === 123 || c === 91) {
      depth++
      if (depth > max) {
        max = depth
        if (max > limit) return max
      }
    } else if (c === 125 || c === 93) depth--
  }
  return max
}

export function parseJsonBody(text: string): unknown {
  if (text.trim() === '') throw new DtqError('VALIDATION', 'the body is empty; send JSON')
  if (jsonTextDepth(text) > MAX_BODY_DEPTH) {
    throw new DtqError('VALIDATION', `the body is nested deeper than ${MAX_BODY_DEPTH} levels`)
  }
  try {
    return sjson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' })
  } catch (err) {
    const m = (err as Error).message
    if (/prototype|constructor/i.test(m))
      throw new DtqError('VALIDATION', 'the body has a forbidden key (__proto__ or constructor)')
    throw new DtqError('VALIDATION', 'the body is not valid JSON')
  }
}
