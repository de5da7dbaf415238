// Profiling aid: the read paths against a private redis-server. A sparse filtered listing
// (1 job in 500 matches) over 50k queued jobs and 10k dead letters: time, round trips and job
// hashes read into Node (HGETALL), for one request and for collecting a full page by following
// next_cursor; then listings and stats over 1 and 100 queues: round trips and commands.
// Usage: node scripts/bench/profile-reads.ts
import { Queue } from '@dtq/app'
import type { Redis } from 'ioredis'
import { privateRedis } from './private-redis.ts'

const N = 50_000
const DLQ_N = 10_000
const SPARSE = 500

/** Counts what a call sends: commands by name and round trips (distinct "replies seen" at send time). */
function meter(redis: Redis) {
  let replies = 0
  let waves = new Set<number>()
  let commands: Record<string, number> = {}
  const send = redis.sendCommand.bind(redis)
  redis.sendCommand = ((cmd: { name: string; promise: Promise<unknown> }, ...rest: unknown[]) => {
    waves.add(replies)
    commands[cmd.name] = (commands[cmd.name] ?? 0) + 1
    cmd.promise?.then(
      () => replies++,
      () => replies++,
    )
    return send(cmd as never, ...(rest as []))
  }) as Redis['sendCommand']
  return async <T>(fn: () => Promise<T>) => {
    waves = new Set()
    commands = {}
    const t0 = performance.now()
    const value = await fn()
    const ms = performance.now() - t0
    return { value, ms, roundTrips: waves.size, commands }
  }
}

const sum = (c: Record<string, number>) => Object.values(c).reduce((a, b) => a + b, 0)

const { cfg, stop } = await privateRedis('r')
const q = await Queue.connect(cfg)
const measure = meter(q.redis as Redis)
try {
  for (let i = 0; i < N; i += 1000)
    await q.addBulk(
      Array.from({ length: 1000 }, (_, k) => ({
        task_type: (i + k) % SPARSE === 0 ? 'rare' : 'common',
        payload: { n: i + k, pad: 'x'.repeat(100) },
      })),
    )
  // Dead letters: max_retries 0, delivered and failed permanently.
  for (let i = 0; i < DLQ_N; i += 500) {
    await q.addBulk(Array.from({ length: 500 }, () => ({ task_type: 'dead', queue: 'dlq', max_retries: 0 })))
    const d = await q.store.deliver('dlq', 'w', 500)
    for (const [k, j] of d.jobs.entries()) {
      const message = (i + k) % SPARSE === 0 ? 'Disk FULL on host' : 'upstream timeout'
      await q.store.fail('dlq', j.id, j.epoch, 'permanent', { message, worker: 'w', attempt: 1 }, 0)
    }
  }

  const report = (what: string, r: Awaited<ReturnType<typeof measure>>, items: number) =>
    console.log(
      `${what.padEnd(58)} ${r.ms.toFixed(1).padStart(8)} ms  items ${String(items).padStart(3)}  round trips ${String(r.roundTrips).padStart(3)}  commands ${String(sum(r.commands)).padStart(5)}  HGETALL ${r.commands.hgetall ?? 0}`,
    )

  for (let rep = 0; rep < 2; rep++) {
    console.log(rep === 0 ? '-- cold' : '-- again')
    const one = await measure(() => q.listJobs({ task_type: 'rare', limit: 50 }))
    report(`jobs task_type (1 in ${SPARSE} of ${N}), one request`, one, one.value.items.length)
    const full = await measure(async () => {
      const got: unknown[] = []
      let cursor: string | undefined
      do {
        const page = await q.listJobs({ task_type: 'rare', limit: 50 - got.length, cursor })
        got.push(...page.items)
        cursor = page.next_cursor ?? undefined
      } while (cursor && got.length < 50)
      return got
    })
    report('jobs task_type, following next_cursor to 50 items', full, full.value.length)
    const dlq = await measure(() => q.listDlq({ error_contains: 'disk full', limit: 50 }))
    report(`dlq error text (1 in ${SPARSE} of ${DLQ_N}), one request`, dlq, dlq.value.items.length)
    const plain = await measure(() => q.listJobs({ queue: 'default', limit: 50 }))
    report('jobs unfiltered, one queue', plain, plain.value.items.length)
  }

  for (const queues of [1, 100]) {
    await q.redis.flushdb()
    for (let i = 0; i < queues; i++)
      await q.addBulk(Array.from({ length: 20 }, () => ({ task_type: 'echo', queue: `q${queues}-${i}` })))
    console.log(`-- ${queues} queue(s) of 20 jobs`)
    const stats = await measure(() => q.stats())
    report('stats (GET /queues)', stats, stats.value.queues.length)
    const tp = await measure(() => q.throughput(60))
    report('throughput (GET /stats)', tp, tp.value.length)
    const list = await measure(() => q.listJobs({ limit: 50 }))
    report('jobs unfiltered, every queue', list, list.value.items.length)
    const queued = await measure(() => q.listJobs({ state: 'queued', limit: 50 }))
    report('jobs status=queued, every queue', queued, queued.value.items.length)
  }
} finally {
  await q.close()
  stop()
}
