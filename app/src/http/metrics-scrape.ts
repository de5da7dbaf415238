/**
 * The body of GET /metrics: the engine's figures read from Redis at scrape time, then this
 * process's own (prom-client). `redis_up` says whether the read worked: with Redis unreachable
 * the scrape still answers 200 with `redis_up 0` and the process metrics (the engine series are
 * absent), so Prometheus keeps scraping and the "Redis unreachable" alert can fire.
 */
import type { Registry } from 'prom-client'
import { isRedisUnreachable } from '../errors.ts'
import type { Queue } from '../queue/queue.ts'
import { alertMetrics } from './alert-metrics.ts'
import { archiveMetrics } from './archive-metrics.ts'
import { engineMetrics, Text } from './metrics.ts'

export async function scrapeMetrics(queue: Queue, registry: Registry): Promise<string> {
  let engine: string
  let up = 1
  try {
    const [stats, workers, names, alerts] = await Promise.all([
      queue.stats(),
      queue.workers(),
      queue.store.queues(),
      alertMetrics(queue.alerts), // the alerts' block (ADR 0025)
    ])
    engine =
      engineMetrics(stats.queues, workers, await queue.limits.views(names)) +
      alerts +
      (await archiveMetrics(queue.store, names, queue.clock.now())) // the archiver's backlog (ADR 0031)
  } catch (err) {
    if (!isRedisUnreachable(err)) throw err
    engine = ''
    up = 0
  }
  const t = new Text()
  t.metric(
    'redis_up',
    'gauge',
    '1 when this scrape read the engine figures from Redis, 0 when Redis was unreachable',
    [[{}, up]],
  )
  return engine + t.toString() + (await registry.metrics())
}
