/**
 * Whether the Redis in use keeps what it acknowledges: AOF on (a restart replays it) and
 * `maxmemory-policy noeviction` (an evicting policy silently drops queue data). Read from
 * INFO, which managed services allow even where CONFIG is renamed. With REDIS_DURABILITY
 * `enforce` (the default in production) a process refuses to start on such a Redis.
 */
import type { Redis } from 'ioredis'
import { type Config, ConfigError } from '../config.ts'

export async function durabilityProblems(redis: Redis): Promise<string[]> {
  const info = await redis.info()
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
  redis: Redis,
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
    warn(`could not check Redis durability: ${(err as Error).message}`)
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
