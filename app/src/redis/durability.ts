/**
 * Whether the Redis in use keeps what it acknowledges: AOF on (a restart replays it) and
 * `maxmemory-policy noeviction` (an evicting policy silently drops queue data). Read from
 * INFO, which managed services allow even where CONFIG is renamed. With REDIS_DURABILITY
 * `enforce` (the default in production) a process refuses to start on such a Redis. On a Redis
 * Cluster every primary is checked (replicas are what a failover promotes: run them with the same
 * settings).
 */

import { type Config, ConfigError } from '../config.ts'
import { nodeName, primaries, type RedisClient } from './connection.ts'

export async function durabilityProblems(redis: RedisClient): Promise<string[]> {
  const nodes = primaries(redis)
  const each = await Promise.all(nodes.map((node) => node.info()))
  // On a Cluster every primary is checked, and a problem names its node.
  return each.flatMap((info, i) =>
    nodeProblems(info).map((p) => (nodes.length > 1 ? `${nodeName(nodes[i]!)}: ${p}` : p)),
  )
}

function nodeProblems(info: string): string[] {
  const field = (name: string) => new RegExp(`^${name}:(.*)$`, 'm').exec(info)?.[1]?.trim()
  const problems: string[] = []
  if (field('aof_enabled') === '0')
    problems.push('AOF is off (appendonly no): a Redis restart loses acknowledged jobs')
  const policy = field('maxmemory_policy')
  if (policy && policy !== 'noeviction')
    problems.push(`maxmemory-policy is ${policy}: Redis may evict queue data; use noeviction`)
  const version = field('redis_version')
  if (version && Number(version.split('.')[0]) < 7)
    problems.push(`Redis ${version} is too old: DTQ needs 7 or newer`)
  return problems
}

/** Checks at start; throws in enforce mode, logs in warn mode. */
export async function checkDurability(
  redis: RedisClient,
  config: Config,
  warn: (msg: string) => void,
): Promise<void> {
  const mode =
    config.redisDurability === 'auto'
      ? config.environment === 'production'
        ? 'enforce'
        : 'warn'
      : config.redisDurability
  if (mode === 'off') return
  let problems: string[]
  try {
    problems = await durabilityProblems(redis)
  } catch (err) {
    // Enforced, a check that could not be made refuses too (INFO failing is no proof of AOF).
    const msg = `could not check Redis durability: ${(err as Error).message}`
    if (mode === 'enforce') throw new ConfigError([msg, 'set REDIS_DURABILITY=warn to run without the check'])
    warn(msg)
    return
  }
  if (!problems.length) return
  if (mode === 'enforce') {
    throw new ConfigError([
      ...problems,
      'set REDIS_DURABILITY=warn to run anyway (acknowledged jobs may then be lost)',
    ])
  }
  for (const p of problems) warn(`Redis durability: ${p}`)
}
