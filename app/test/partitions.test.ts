/**
 * Partitioned queues (ADR 0017, app/src/queue/partitions.ts): one queue spread over N physical
 * queues -- N slots of a Redis Cluster -- routed by key or in turn, served by the workers of the
 * queue, and read, counted, paused and shown as one queue. Runs on every topology
 * (DTQ_TEST_REDIS); on a Cluster it also checks that the partitions spread over the primaries.
 */
import { afterEach, describe, expect, it } from 'vitest'
import type { Job } from '../src/queue/job.ts'
import {
  logicalQueue,
  PHYSICAL_QUEUE_PATTERN,
  partitionIndex,
  partitionName,
  placePartitions,
  routingHash,
} from '../src/queue/partitions.ts'
import { isCluster } from '../src/redis/connection.ts'
import { type ApiBundle, apiSetup, bearer, TOKEN_SETTING } from './api-helpers.ts'
import { waitFor } from './helpers.ts'

const Q = 'hot'
let b: ApiBundle
afterEach(() => b?.cleanup())

const partitionOf = (job: Job) => partitionIndex(job.queue)

/** Waits until the (one) worker has beaten `n` more times. */
async function heartbeats(n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const before = (await b.queue.workers())[0]?.heartbeat_at ?? 0
    await waitFor(async () => ((await b.queue.workers())[0]?.heartbeat_at ?? 0) > before, {
      what: 'a heartbeat',
    })
  }
}

describe('partition names and routing', () => {
  it('partition 0 is the queue itself; the routing hash is stable', () => {
    expect(partitionName('q', 0)).toBe('q')
    expect(partitionName('q', 3)).toBe('q~3')
    expect(logicalQueue('q~3')).toBe('q')
    expect(partitionIndex('q~3')).toBe(3)
    expect(partitionName('q', 3, 17)).toBe('q~3.17')
    expect(partitionIndex('q~3.17')).toBe(3)
    expect(logicalQueue('q~3.17')).toBe('q')
    expect(partitionIndex('q')).toBe(0)
    // FNV-1a 32: fixed values, so a key's partition never changes across releases.
    expect(routingHash('')).toBe(0x811c9dc5)
    expect(routingHash('a')).toBe(0xe40c292c)
    expect(routingHash('foobar')).toBe(0xbf9cf968)
    for (const ok of ['q', 'q~1', 'q~127', 'q~3.17', 'a.b~2.999'])
      expect(PHYSICAL_QUEUE_PATTERN.test(ok), ok).toBe(true)
    for (const bad of ['q~0', 'q~', 'q~1.0', 'q~1.', 'q~1.1000', 'q~1~2', '~1'])
      expect(PHYSICAL_QUEUE_PATTERN.test(bad), bad).toBe(false)
  })

  it('places each new partition on a primary with the fewest of the queue, keeping the ones it has', () => {
    // A made-up placement: the node is a hash of the name, so some names collide.
    const nodes = ['a', 'b', 'c']
    const nodeOf = (p: string) => nodes[routingHash(p) % 3]!
    for (const queue of ['hot', 'emails', 'q1', 'x']) {
      for (const count of [3, 6, 9]) {
        const names = placePartitions(queue, [queue], count, nodeOf, nodes)
        expect(names[0]).toBe(queue)
        expect(names.map(partitionIndex)).toEqual([...Array(count).keys()])
        const per = nodes.map((n) => names.filter((p) => nodeOf(p) === n).length)
        expect(per, `${queue} × ${count}`).toEqual([count / 3, count / 3, count / 3])
      }
      // Raised later: the first names stay as they were.
      const three = placePartitions(queue, [queue], 3, nodeOf, nodes)
      expect(placePartitions(queue, three, 6, nodeOf, nodes).slice(0, 3)).toEqual(three)
    }
    // One primary: plain names.
    expect(placePartitions('q', ['q'], 3, null)).toEqual(['q', 'q~1', 'q~2'])
  })
})

describe('a partitioned queue', () => {
  it('is set by an admin, only grows, and refuses bad counts changing nothing', async () => {
    b = await apiSetup({ apiTokens: TOKEN_SETTING })
    const put = (n: unknown, role: 'admin' | 'write' = 'admin', queue = Q) =>
      b.app.inject({
        method: 'PUT',
        url: `/queues/${queue}/partitions`,
        headers: bearer(role),
        payload: { partitions: n },
      })
    const get = async () =>
      (await b.app.inject({ method: 'GET', url: `/queues/${Q}/partitions`, headers: bearer('read') })).json()

    expect((await get()).partitions).toBe(1)
    expect((await put(4, 'write')).statusCode).toBe(403)
    for (const bad of [0, -1, 129, 2.5, '4', null]) {
      const res = await put(bad)
      expect(res.statusCode, String(bad)).toBe(400)
      expect(res.json().code).toBe('VALIDATION')
    }
    expect((await put(4, 'admin', 'a{b}')).statusCode).toBe(400)
    expect((await get()).partitions).toBe(1)

    const set = await put(4)
    expect(set.statusCode).toBe(200)
    expect(set.json()).toEqual({ queue: Q, partitions: 4, before: 1 })
    const lower = await put(2)
    expect(lower.statusCode).toBe(409)
    expect(lower.json().message).toMatch(/has 4 partitions: a count only grows/)
    expect((await get()).partitions).toBe(4)
    expect((await put(4)).json()).toEqual({ queue: Q, partitions: 4, before: 4 }) // idempotent

    // The library refuses the same, with the same messages.
    await expect(b.queue.setPartitions(Q, 0)).rejects.toThrow(/partitions must be/)
    await expect(b.queue.setPartitions(Q, 3)).rejects.toThrow(/only grows/)
  })

  it('routes by partition_key, idempotency_key or job_id, and keyless requests in turn', async () => {
    b = await apiSetup()
    await b.queue.setPartitions(Q, 4)
    // The same partition key: the same partition, whatever else the job carries.
    const byKey = new Map<string, Set<number>>()
    for (let i = 0; i < 80; i++) {
      const key = `tenant-${i % 8}`
      const { job } = await b.queue.add('echo', { i }, { queue: Q, partition_key: key })
      byKey.set(key, (byKey.get(key) ?? new Set()).add(partitionOf(job)))
      expect(logicalQueue(job.queue)).toBe(Q)
    }
    for (const [, parts] of byKey) expect(parts.size).toBe(1)
    expect(new Set([...byKey.values()].map((s) => [...s][0])).size).toBeGreaterThan(1)

    // Keyless jobs: each call to the next partition; a call's jobs together (one write).
    const seen = new Set<number>()
    for (let i = 0; i < 8; i++) {
      const res = await b.queue.addBulk(Array.from({ length: 5 }, () => ({ task_type: 'echo', queue: Q })))
      const parts = new Set(res.map((r) => partitionOf(r.job)))
      expect(parts.size).toBe(1)
      seen.add([...parts][0]!)
    }
    expect(seen.size).toBe(4)
  })

  it('an idempotency key or a job id sent again finds its job, in whichever partition it is', async () => {
    b = await apiSetup()
    await b.queue.setPartitions(Q, 8)
    const post = (body: object) =>
      b.app.inject({ method: 'POST', url: '/jobs', headers: bearer('write'), payload: { queue: Q, ...body } })
    for (let i = 0; i < 20; i++) {
      const first = await post({ task_type: 'echo', idempotency_key: `order-${i}` })
      const again = await post({ task_type: 'echo', idempotency_key: `order-${i}` })
      expect(first.statusCode).toBe(201)
      expect(again.statusCode).toBe(200)
      expect(again.json().id).toBe(first.json().id)
      const mine = await post({ task_type: 'echo', job_id: `mine-${i}` })
      expect((await post({ task_type: 'echo', job_id: `mine-${i}` })).json().id).toBe(mine.json().id)
      // Looked up by the queue's name, found in its partition.
      const got = await b.app.inject({
        method: 'GET',
        url: `/jobs/mine-${i}?queue=${Q}`,
        headers: bearer('read'),
      })
      expect(got.statusCode).toBe(200)
      expect(got.json().queue).toBe(mine.json().queue)
    }
    const byKey = await b.app.inject({
      method: 'GET',
      url: `/jobs?idempotency_key=order-3&queue=${Q}`,
      headers: bearer('read'),
    })
    expect(byKey.json().items).toHaveLength(1)
    const all = await b.queue.listJobs({ queue: Q, limit: 1000 })
    expect(all.items).toHaveLength(40)
    expect(new Set(all.items.map((j) => partitionOf(j))).size).toBeGreaterThan(3)
  })

  it('is listed, counted and paused as one queue; its workers serve every partition, new ones included', async () => {
    b = await apiSetup()
    await b.queue.setPartitions(Q, 3)
    await b.queue.addBulk(
      Array.from({ length: 60 }, (_, i) => ({ task_type: 'echo', queue: Q, partition_key: `k${i}` })),
    )
    // Another queue beside it: listed as it is.
    await b.queue.add('echo', {}, { queue: 'plain' })

    const queues = (await b.app.inject({ method: 'GET', url: '/queues', headers: bearer('read') })).json()
      .items
    expect(queues.map((q: { queue: string }) => q.queue)).toEqual([Q, 'plain'].sort())
    const row = queues.find((q: { queue: string }) => q.queue === Q)
    expect(row.partitions).toBe(3)
    expect(row.counts.queued).toBe(60)
    expect(row.streams.normal.length).toBe(60)
    expect(queues.find((q: { queue: string }) => q.queue === 'plain').partitions).toBeUndefined()
    expect(await b.queue.queueNames()).toEqual([Q, 'plain'].sort())
    const page = await b.app.inject({
      method: 'GET',
      url: `/jobs?queue=${Q}&limit=25`,
      headers: bearer('read'),
    })
    expect(page.json().items).toHaveLength(25)
    const rest = await b.app.inject({
      method: 'GET',
      url: `/jobs?queue=${Q}&limit=100&cursor=${page.json().next_cursor}`,
      headers: bearer('read'),
    })
    expect(rest.json().items).toHaveLength(35) // the cursor names a partition, and pages on
    expect(rest.json().next_cursor).toBeNull()

    const w = b.worker({ workerQueues: [Q] })
    await w.start()
    await waitFor(
      async () => (await b.queue.stats()).queues.find((q) => q.queue === Q)?.totals.completed === 60,
      {
        what: 'every partition drained',
      },
    )

    // Paused as one: no partition is served.
    await b.queue.pauseQueue(Q)
    expect((await b.queue.stats()).queues.find((q) => q.queue === Q)?.paused).toBe(true)
    await heartbeats(2) // the worker has read the flag
    const held = await b.queue.addBulk(
      Array.from({ length: 9 }, (_, i) => ({ task_type: 'echo', queue: Q, partition_key: `p${i}` })),
    )
    await heartbeats(3)
    for (const r of held) expect((await b.queue.getJob(r.job.id, Q))?.state).toBe('queued')
    await b.queue.resumeQueue(Q)
    await waitFor(
      async () => (await b.queue.stats()).queues.find((q) => q.queue === Q)?.totals.completed === 69,
    )

    // More partitions while it runs: the worker takes them up at its next heartbeat.
    await b.queue.setPartitions(Q, 6)
    const later = await b.queue.addBulk(
      Array.from({ length: 60 }, (_, i) => ({ task_type: 'echo', queue: Q, partition_key: `n${i}` })),
    )
    expect(new Set(later.map((r) => partitionOf(r.job))).size).toBeGreaterThan(3)
    expect(later.some((r) => partitionOf(r.job) >= 3)).toBe(true)
    await waitFor(
      async () => (await b.queue.stats()).queues.find((q) => q.queue === Q)?.totals.completed === 129,
      {
        what: 'the new partitions served',
      },
    )
    const names = await b.queue.store.physicalQueues(Q)
    expect(names).toHaveLength(6)
    expect((await b.queue.workers())[0]?.queues).toEqual(names)
  })

  it('a job id, idempotency or dedup key sent before the queue grew meets its job after each growth (1 → 3 → 8)', async () => {
    b = await apiSetup()
    // Each round's keyed jobs: a single add by each kind of key, and a bulk by idempotency keys.
    const addKeyed = async (round: number) => {
      const one = await b.queue.add('echo', {}, { queue: Q, idempotency_key: `key-${round}` })
      const own = await b.queue.add('echo', {}, { queue: Q, id: `own-${round}` })
      const dd = await b.queue.add('echo', {}, { queue: Q, dedup: { mode: 'unique', key: `dd-${round}` } })
      const bulk = await b.queue.addBulk(
        Array.from({ length: 10 }, (_, i) => ({
          task_type: 'echo',
          queue: Q,
          idempotency_key: `bulk-${round}-${i}`,
        })),
      )
      return [one, own, dd, ...bulk.map((r) => ({ created: r.created, job: r.job }))]
    }
    const sent = async (round: number) => (await addKeyed(round)).map((r) => r.job.id)
    const again = async (round: number) => {
      const res = await addKeyed(round)
      expect(res.every((r) => r.created === false)).toBe(true)
      return res.map((r) => r.job.id)
    }
    const firsts = [await sent(0)]
    await b.queue.setPartitions(Q, 3)
    expect(await again(0)).toEqual(firsts[0])
    firsts.push(await sent(1))
    await b.queue.setPartitions(Q, 8)
    expect(await again(0)).toEqual(firsts[0])
    expect(await again(1)).toEqual(firsts[1])
    // Through the API too.
    const r = await b.app.inject({
      method: 'POST',
      url: '/jobs',
      headers: bearer('write'),
      payload: { queue: Q, task_type: 'echo', idempotency_key: 'key-0' },
    })
    expect([r.statusCode, r.json().id]).toEqual([200, firsts[0]![0]])
    // No second copy anywhere: 13 jobs per round.
    expect((await b.queue.listJobs({ queue: Q, limit: 1000 })).items).toHaveLength(26)
    // Control: without the counts it had, a key routes by the new count alone and makes a second job.
    await b.redis.hdel(b.queue.store.keys.partitionsBefore(), Q)
    await b.queue.store.partitionNames(true)
    const lost = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        b.queue.add('echo', {}, { queue: Q, idempotency_key: `bulk-0-${i}` }),
      ),
    )
    expect(lost.some((x) => x.created)).toBe(true)
  })

  it("QUEUE_MAX_DEPTH counts every partition: POST /jobs is refused once the partitions' sum reaches it", async () => {
    b = await apiSetup({ queueMaxDepth: 6 })
    await b.queue.setPartitions(Q, 3)
    const post = () =>
      b.app.inject({
        method: 'POST',
        url: '/jobs',
        headers: bearer('write'),
        payload: { task_type: 'echo', queue: Q },
      })
    // Keyless jobs go to the partitions in turn: each holds 2 of the 6, under the limit alone.
    for (let i = 0; i < 6; i++) expect((await post()).statusCode).toBe(201)
    const parts = await b.queue.store.physicalQueues(Q)
    const depths = await Promise.all(parts.map((q) => b.queue.store.queuedCount(q)))
    expect(depths.every((d) => d < 6)).toBe(true)
    expect(depths.reduce((x, y) => x + y, 0)).toBe(6)
    // Past the depth cache (read at most every 250 ms by design: a window, not a condition to
    // wait on), the seventh is refused, and nothing is written for it.
    await new Promise((r) => setTimeout(r, 300))
    const r = await post()
    expect([r.statusCode, r.json().code]).toEqual([429, 'QUEUE_FULL'])
    expect((await b.queue.stats()).totals.queued).toBe(6)
  })

  it('on a Redis Cluster, its partitions spread evenly over the primaries', async (ctx) => {
    b = await apiSetup()
    if (!isCluster(b.redis)) ctx.skip()
    const shards = (await b.redis.call('CLUSTER', 'SLOTS')) as Array<[number, number, [string, number]]>
    const nodeOf = async (physical: string) => {
      const slot = Number(await b.redis.call('CLUSTER', 'KEYSLOT', b.queue.store.keys.base(physical)))
      const owner = shards.find(([from, to]) => slot >= from && slot <= to)!
      return `${owner[2][0]}:${owner[2][1]}`
    }
    for (const [queue, count] of [
      ['hot', 3],
      ['hot', 6],
      ['emails', 9],
    ] as const) {
      await b.queue.setPartitions(queue, count)
      const names = await b.queue.store.physicalQueues(queue)
      expect(names).toHaveLength(count)
      const per = new Map<string, number>()
      for (const p of names) per.set(await nodeOf(p), (per.get(await nodeOf(p)) ?? 0) + 1)
      expect([...per.values()], `${queue} × ${count}: ${names.join(' ')}`).toEqual([
        count / 3,
        count / 3,
        count / 3,
      ])
    }
    // Jobs go everywhere, and come back by id through the queue's name.
    const res = await b.queue.addBulk(
      Array.from({ length: 60 }, (_, i) => ({ task_type: 'echo', queue: 'emails', partition_key: `k${i}` })),
    )
    expect(new Set(await Promise.all(res.map((r) => nodeOf(r.job.queue)))).size).toBe(3)
    for (const r of res.slice(0, 10)) expect((await b.queue.getJob(r.job.id, 'emails'))?.id).toBe(r.job.id)
  })
})
