/**
 * `dtq archiver` (ADR 0027): the archiver as a process -- PostgreSQL's migrations, then the
 * archive loop until SIGTERM/SIGINT; `--off` switches archiving off in every queue instead (the
 * jobs held for the archiver get their retention back). PostgreSQL unreachable at start is
 * waited for: nothing is lost meanwhile, Redis holds the finished jobs.
 */
import type { Config } from '../config.ts'
import { ArchiveStore } from '../redis/archive.ts'
import { RedisClock } from '../redis/clock.ts'
import { connectRedis, createRedis, redisTarget } from '../redis/connection.ts'
import { Archiver, type ArchiverLog } from './archiver.ts'
import { createPool, History, migrate } from './db.ts'

function storeOf(cfg: Config) {
  const redis = createRedis({
    target: redisTarget(cfg),
    commandTimeoutMs: cfg.redisCommandTimeoutMs,
    name: 'dtq-archiver',
  })
  // Redis's time, as every process writes it (ADR 0012): the acknowledgements' retention and
  // the archiver's reports read it.
  const clock = new RedisClock(redis, { skewMs: cfg.testClockSkewMs })
  const store = new ArchiveStore(redis, {
    prefix: cfg.keyPrefix,
    eventsMaxLen: cfg.eventsMaxLen,
    completedRetentionS: cfg.completedRetentionS,
    failedRetentionS: cfg.failedRetentionS,
    clock,
  })
  return { redis, store, clock }
}

/**
 * Runs migrations, retrying (with backoff up to 30 s) until PostgreSQL answers or `stopped()`.
 * Before each try, archiving is switched on in every queue of the registry: Redis holds what
 * finishes from then on until it is archived, whether PostgreSQL is there yet or not.
 */
async function migrated(
  cfg: Config,
  log: ArchiverLog,
  stopped: () => boolean,
  enableAll: () => Promise<void>,
): Promise<boolean> {
  for (let attempt = 0; !stopped(); attempt++) {
    try {
      await enableAll()
      await migrate(cfg.databaseUrl, cfg.historySchema)
      return true
    } catch (err) {
      const wait = Math.min(30_000, 500 * 2 ** Math.min(attempt, 6))
      log.warn({ err: (err as Error).message, retry_in_ms: wait }, 'archiver: migrations failed, will retry')
      // In short steps, so a stop does not wait out the backoff.
      for (let t = 0; t < wait && !stopped(); t += 250) await new Promise((r) => setTimeout(r, 250))
    }
  }
  return false
}

export interface RunningArchiver {
  archiver: Archiver | undefined
  stop(): Promise<void>
  /** Cuts the Redis and PostgreSQL connections at once (the shutdown budget is spent). */
  abandon(): void
}

/** Starts an archiver in this process (also what `dtq dev` does when DATABASE_URL is set). */
export async function startArchiver(cfg: Config, log: ArchiverLog): Promise<RunningArchiver> {
  const { redis, store, clock } = storeOf(cfg)
  await connectRedis(redis, 60_000)
  void clock.start().catch(() => {}) // until measured (or if TIME fails), this machine's time
  let stopped = false
  const running: RunningArchiver = {
    archiver: undefined,
    async stop() {
      stopped = true
      await ready
      await running.archiver?.stop()
      await pool.end().catch(() => {})
      clock.stop()
      redis.disconnect()
    },
    abandon() {
      clock.stop()
      redis.disconnect()
      void pool.end().catch(() => {})
    },
  }
  const pool = createPool(cfg.databaseUrl)
  const enableAll = async () => {
    for (const q of await store.queues()) await store.enable(q)
  }
  const ready = migrated(cfg, log, () => stopped, enableAll).then((ok) => {
    if (!ok) return
    running.archiver = new Archiver({
      store,
      history: new History(pool, cfg.historySchema),
      batch: cfg.archiverBatch,
      claimIdleMs: cfg.archiverClaimIdleMs,
      retentionDays: cfg.historyRetentionDays,
      log,
    })
    running.archiver.start()
    log.info(
      { consumer: running.archiver.consumer, schema: cfg.historySchema },
      'archiver: writing finished jobs to PostgreSQL',
    )
  })
  return running
}

/** `dtq archiver --off`: archiving off in every queue of the registry. */
export async function archivingOff(cfg: Config): Promise<string[]> {
  const { redis, store } = storeOf(cfg)
  try {
    await connectRedis(redis, 10_000)
    const queues = await store.queues()
    for (const q of queues) await store.disable(q)
    return queues
  } finally {
    redis.disconnect()
  }
}
