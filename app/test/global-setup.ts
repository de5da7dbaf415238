/**
 * Starts one private redis-server for the test run (a free port, AOF on, data in a temp dir)
 * and hands its URL to the tests. Tests isolate themselves by key prefix; tests that restart or
 * kill Redis start their own.
 *
 * DTQ_TEST_REDIS picks what the suites run against (`testTarget()` in helpers.ts):
 *   standalone (default)  that server;
 *   cluster               a local Redis Cluster: 3 primaries with a replica each (test/topology.ts);
 *   sentinel              a primary, a replica and 3 sentinels.
 * The standalone server is started in every mode, for the tests that need one server of their own.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestProject } from 'vitest/node'
import type { RedisTarget } from '../src/redis/connection.ts'
import { startLocalRedis } from '../src/redis/local-server.ts'
import { ensureTestPostgres } from './postgres.ts'
import { startCluster, startSentinelGroup } from './topology.ts'

export default async function setup(project: TestProject) {
  const dir = mkdtempSync(join(tmpdir(), 'dtq-test-redis-'))
  const redis = await startLocalRedis(dir)
  project.provide('redisUrl', redis.url)
  const stops: Array<() => Promise<void>> = [redis.stop]
  // The history tests' PostgreSQL: the machine's, else a private one for the run (postgres.ts).
  const stopPostgres = await ensureTestPostgres()
  if (stopPostgres) stops.push(stopPostgres)
  const mode = process.env.DTQ_TEST_REDIS ?? 'standalone'
  let target: RedisTarget = { kind: 'standalone', url: redis.url }
  if (mode === 'cluster') {
    const cluster = await startCluster()
    stops.push(() => cluster.stop())
    target = { kind: 'cluster', nodes: cluster.seeds }
  } else if (mode === 'sentinel') {
    const group = await startSentinelGroup()
    stops.push(() => group.stop())
    target = {
      kind: 'sentinel',
      sentinels: group.sentinels.map((s) => `${s.host}:${s.port}`),
      master: group.masterName,
      url: `redis://${group.masterName}`, // credentials and scheme only (none here); the host is not used
    }
  } else if (mode !== 'standalone') {
    throw new Error(`DTQ_TEST_REDIS=${mode}: expected standalone, cluster or sentinel`)
  }
  project.provide('redisTarget', target)
  return async () => {
    for (const stop of stops.reverse()) await stop().catch(() => {})
    rmSync(dir, { recursive: true, force: true })
  }
}

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string
    redisTarget: RedisTarget
  }
}
