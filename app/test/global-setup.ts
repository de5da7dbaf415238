/**
 * Starts one private redis-server for the test run (a free port, AOF off, data in a temp
 * dir) and hands its URL to the tests. Tests isolate themselves by key prefix; tests that
 * restart or kill Redis start their own.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestProject } from 'vitest/node'
import type { RedisTarget } from '../src/redis/connection.ts'
import { startLocalRedis } from '../src/redis/local-server.ts'

export default async function setup(project: TestProject) {
  const dir = mkdtempSync(join(tmpdir(), 'dtq-test-redis-'))
  const redis = await startLocalRedis(dir)
  project.provide('redisUrl', redis.url)
  project.provide('redisTarget', { kind: 'standalone', url: redis.url })
  return async () => {
    await redis.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string
    redisTarget: RedisTarget
  }
}
