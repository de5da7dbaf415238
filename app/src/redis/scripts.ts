/**
 * Loads the Lua scripts (scripts/*.lua, each prefixed with scripts/_prelude.lua) and runs them
 * by SHA with an EVAL fallback, so a Redis restart (empty script cache) is invisible to callers.
 * A script's SHA is its content: two versions of DTQ in a rolling deploy never run each other's.
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { Redis } from 'ioredis'

export const SCRIPT_NAMES = [
  'enqueue',
  'deliver',
  'complete',
  'fail',
  'promote',
  'reclaim',
  'heartbeat',
  'handback',
  'cancel',
  'requeue',
  'dlq_delete',
  'progress',
  'remove_consumer',
] as const
export type ScriptName = (typeof SCRIPT_NAMES)[number]

const dir = new URL('./scripts/', import.meta.url)
const prelude = readFileSync(new URL('_prelude.lua', dir), 'utf8')

export class LuaScript {
  readonly name: ScriptName
  readonly source: string
  readonly sha: string

  constructor(name: ScriptName) {
    this.name = name
    this.source = `${prelude}\n${readFileSync(new URL(`${name}.lua`, dir), 'utf8')}`
    this.sha = createHash('sha1').update(this.source).digest('hex')
  }

  /** Runs the script with KEYS[1] = base and the given ARGV. */
  async run<T = unknown>(redis: Redis, base: string, args: ReadonlyArray<string | number>): Promise<T> {
    try {
      return (await redis.evalsha(this.sha, 1, base, ...args)) as T
    } catch (err) {
      if (err instanceof Error && err.message.startsWith('NOSCRIPT')) {
        return (await redis.eval(this.source, 1, base, ...args)) as T
      }
      throw err
    }
  }
}

let cache: Record<ScriptName, LuaScript> | undefined

export function scripts(): Record<ScriptName, LuaScript> {
  if (!cache) {
    cache = Object.fromEntries(SCRIPT_NAMES.map((n) => [n, new LuaScript(n)])) as Record<
      ScriptName,
      LuaScript
    >
  }
  return cache
}
