/**
 * The producer path: batches written all or none per queue with a reply that agrees with Redis,
 * group commit that fails only the caller whose jobs are refused, an id counter that heals when
 * it goes back, and lookups without a queue at a constant cost however many queues exist.
 */
import { spawn } from 'node:child_process'
import type { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { DtqError } from '../src/errors.ts'
import { ID_BLOCK, idBlock } from '../src/queue/ids.ts'
import { F } from '../src/queue/job.ts'
import { BulkAddError, hashIdempotencyKey, Queue } from '../src/queue/queue.ts'
import { connectRedis, createRedis, type RedisClient } from '../src/redis/connection.ts'
import { canConnect, freePort } from '../src/redis/local-server.ts'
import { functions } from '../src/redis/scripts.ts'
import type { NewJobRecord } from '../src/redis/store.ts'
import { type ApiBundle, apiSetup } from './api-helpers.ts'
import { type Bundle, FakeClock, setup } from './helpers.ts'

const Q = 'default'

/**
 * Counts what a client sends: commands, and round trips -- the waves of commands sent before
 * the replies to the previous wave came back (a command sent after n replies belongs to wave n).
 * Works alike for one server and a Cluster (a wave to several nodes is one round trip).
 */
function countTraffic(redis: RedisClient) {
  const t = { commands: 0, writes: 0, names: [] as string[] }
  let replies = 0
  let waves = new Set<number>()
  const send = redis.sendCommand.bind(redis) as (...a: unknown[]) => unknown
  redis.sendCommand = ((cmd: { name: string; promise?: Promise<unknown> }, ...rest: unknown[]) => {
    t.commands++
    t.names.push(String(cmd.name).toLowerCase())
    waves.add(replies)
    t.writes = waves.size
    cmd.promise?.then(
      () => replies++,
      () => replies++,
    )
    return send(cmd, ...rest)
  }) as typeof redis.sendCommand
  return {
    t,
    reset() {
      t.commands = 0
      t.writes = 0
      t.names = []
      waves = new Set()
    },
  }
}

async function existing(redis: RedisClient, b: Bundle, queue: string, ids: string[]): Promise<boolean[]> {
  const p = redis.pipeline()
  for (const id of ids) p.exists(b.queue.store.keys.job(queue, id))
  return ((await p.exec()) ?? []).map(([, n]) => n === 1)
}

/** A job record as Queue.toRecord makes it. */
function record(over: Partial<NewJobRecord> = {}): NewJobRecord {
  return {
    id: '',
    task_type: 'echo',
    payload: '1',
    priority: 'normal',
    max_retries: 3,
    timeout_ms: 0,
    run_at: 0,
    idem_hash: '',
    idempotency_key: '',
    idem_ttl_s: 60,
    partition_key: '',
    extra: {},
    ...over,
  }
}

describe('with the shared test Redis', () => {
  let b: Bundle
  let clock: FakeClock
  beforeEach(async () => {
    clock = new FakeClock()
    b = await setup({ clock })
  })
  afterEach(() => b.cleanup())

  describe('the enqueue function checks every job before it writes any', () => {
    // One good job, then a bad one: the call is refused whole, nothing written, the reason named.
    const good = ['good-1', 'echo', '1', 'normal', 3, 0, 0, '', '', 60, '', '']
    const bad: Array<[string, Array<string | number>, RegExp]> = [
      // (An id's characters are the library's check: any id stays under the queue's hash tag.)
      [
        'an id of 129 characters',
        ['x'.repeat(129), 'echo', '1', 'normal', 3, 0, 0, '', '', 60, '', ''],
        /^id/,
      ],
      ['a bad task type', ['j2', 'a b', '1', 'normal', 3, 0, 0, '', '', 60, '', ''], /^task_type/],
      ['a bad priority', ['j2', 'echo', '1', 'urgent', 3, 0, 0, '', '', 60, '', ''], /^priority/],
      [
        'max_retries not a number',
        ['j2', 'echo', '1', 'normal', 'x', 0, 0, '', '', 60, '', ''],
        /^max_retries/,
      ],
      ['a fractional timeout', ['j2', 'echo', '1', 'normal', 3, 1.5, 0, '', '', 60, '', ''], /^timeout_ms/],
      [
        'a due time that is not a number',
        ['j2', 'echo', '1', 'normal', 3, 0, 'soon', '', '', 60, '', ''],
        /^due/,
      ],
      ['an idempotency TTL of 0', ['j2', 'echo', '1', 'normal', 3, 0, 0, 'h', 'k', 0, '', ''], /^idem_ttl_s/],
      ['extra that is not JSON', ['j2', 'echo', '1', 'normal', 3, 0, 0, '', '', 60, '', '{bad'], /^extra/],
      [
        'extra setting the state',
        ['j2', 'echo', '1', 'normal', 3, 0, 0, '', '', 60, '', '["st","x"]'],
        /^extra/,
      ],
      ['extra with a number', ['j2', 'echo', '1', 'normal', 3, 0, 0, '', '', 60, '', '["tr",5]'], /^extra/],
    ]
    it.each(bad)('refuses %s, writing nothing', async (_name, job, reason) => {
      const args = [clock.now(), 100, 3600, 3600, 2, ...good, ...job]
      const reply = (await functions().call(
        b.redis,
        'enqueue',
        b.queue.store.keys.base(Q),
        args,
      )) as unknown[]
      expect(reply[0]).toBe('refused')
      expect(reply[1]).toEqual([])
      expect((reply[2] as unknown[])[0]).toBe(2)
      expect(String((reply[2] as unknown[])[1])).toMatch(reason)
      expect(await b.keys()).toEqual([])
    })

    it('refuses a malformed call before reading anything', async () => {
      const args = [clock.now(), 100, 3600, 3600, 2, ...good]
      await expect(functions().call(b.redis, 'enqueue', b.queue.store.keys.base(Q), args)).rejects.toThrow(
        /DTQ_BAD_CALL/,
      )
    })

    it('reads an idempotency key by its first word (finishing may append to it)', async () => {
      const first = await b.queue.add('echo', 1, { idempotency_key: 'order-7' })
      const key = b.queue.store.keys.idempotency(Q, hashIdempotencyKey('order-7'))
      await b.redis.set(key, `${first.job.id} completed ${clock.now()}`, 'KEEPTTL')
      const again = await b.queue.add('echo', 2, { idempotency_key: 'order-7' })
      expect(again).toMatchObject({ created: false, job: { id: first.job.id, payload: 1 } })
      expect((await b.queue.findByIdempotencyKey('order-7'))?.id).toBe(first.job.id)
      expect((await b.queue.findByIdempotencyKey('order-7', Q))?.id).toBe(first.job.id)
    })
  })

  describe('group commit', () => {
    it('fails only the caller whose job the function refuses (a record given to the store directly)', async () => {
      const store = b.queue.store
      const traffic = countTraffic(store.redis)
      await store.enqueue(Q, [record()]) // the registry and the function library are in place
      traffic.reset()
      const calls = Array.from({ length: 6 }, (_, i) =>
        store.enqueue(Q, [
          record({ payload: String(i), priority: i === 3 ? ('urgent' as never) : 'normal' }),
        ]),
      )
      const res = await Promise.allSettled(calls)
      expect(res.map((r) => r.status)).toEqual([
        'fulfilled',
        'fulfilled',
        'fulfilled',
        'rejected',
        'fulfilled',
        'fulfilled',
      ])
      const err = (res[3] as PromiseRejectedResult).reason
      expect(err).toBeInstanceOf(DtqError)
      expect(err.code).toBe('VALIDATION')
      expect(err.message).toMatch(/jobs\[0\]: priority/)
      // One coalesced call (refused, nothing written), then one call per caller.
      expect(traffic.t.names.filter((n) => n === 'fcall')).toHaveLength(1 + 6)
      expect(await store.queuedCount(Q)).toBe(1 + 5)
      for (const r of res) {
        if (r.status === 'fulfilled')
          expect((await store.getJob(Q, r.value[0]!.id))?.payload).toBe(Number(r.value[0]!.job.payload))
      }
    })

    it('fails only the caller whose id names a foreign value, through the library', async () => {
      await b.queue.add('echo', 0)
      await b.redis.set(b.queue.store.keys.job(Q, 'foreign'), 'not a job')
      const res = await Promise.allSettled([
        b.queue.add('echo', 1),
        b.queue.add('echo', 2, { id: 'foreign' }),
        b.queue.add('echo', 3, { idempotency_key: 'k' }),
        b.queue.addBulk([
          { task_type: 'echo', payload: 4 },
          { task_type: 'echo', payload: 5, id: 'mine' },
        ]),
      ])
      expect(res.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled'])
      expect((res[1] as PromiseRejectedResult).reason.message).toMatch(/holds a foreign value/)
      // Each of the others was created exactly once.
      expect(await b.queue.store.queuedCount(Q)).toBe(1 + 4)
      expect(await b.redis.get(b.queue.store.keys.job(Q, 'foreign'))).toBe('not a job')
    })
  })

  it('costs one round trip per add on the hot path; reservations of more blocks at a time as a queue keeps adding', async () => {
    await b.queue.add('echo', 0) // registry, library, a block of ids
    const traffic = countTraffic(b.queue.store.redis)
    const cases: Array<[string, () => Promise<unknown>, string[]]> = [
      ['generated id', () => b.queue.add('echo', 1), ['fcall']],
      ['caller id', () => b.queue.add('echo', 2, { id: 'c-1' }), ['fcall']],
      ['id and key', () => b.queue.add('echo', 3, { id: 'c-2', idempotency_key: 'k' }), ['fcall']],
    ]
    for (const [name, add, commands] of cases) {
      traffic.reset()
      await add()
      expect({ name, commands: traffic.t.names, roundTrips: traffic.t.writes }).toEqual({
        name,
        commands,
        roundTrips: 1,
      })
    }
    traffic.reset()
    for (let i = 0; i < 2000; i++) await b.queue.add('echo', i)
    const count = (n: string) => traffic.t.names.filter((x) => x === n).length
    // The first block (1000 ids) ran out after 999 of these; the next reservation takes two.
    expect([count('incrby'), count('set'), count('fcall')]).toEqual([1, 2, 2000])
  })

  describe('batches', () => {
    it('all or nothing: writes all the jobs of a queue in one call (what the batch endpoint asks for)', async () => {
      await b.queue.store.registerQueue(b.config.defaultQueue) // (one more call for a new queue)
      const traffic = countTraffic(b.queue.store.redis)
      const res = await b.queue.addBulk(
        Array.from({ length: 2500 }, (_, i) => ({ task_type: 'echo', payload: i })),
        { allOrNothing: true },
      )
      expect(res.every((r) => r.created)).toBe(true)
      expect(traffic.t.names.filter((n) => n === 'fcall')).toHaveLength(1)
      expect(new Set(res.map((r) => r.job.id)).size).toBe(2500)
    })

    it('by default writes a library bulk in calls of 500 (the cheapest per job in Redis)', async () => {
      await b.queue.store.registerQueue(b.config.defaultQueue) // (one more call for a new queue)
      const traffic = countTraffic(b.queue.store.redis)
      const res = await b.queue.addBulk(
        Array.from({ length: 2500 }, (_, i) => ({ task_type: 'echo', payload: i })),
      )
      expect(res.every((r) => r.created)).toBe(true)
      expect(traffic.t.names.filter((n) => n === 'fcall')).toHaveLength(5)
    })

    it('says which jobs may exist when a call raises inside the function (unknown), and what the other calls did', async () => {
      // A foreign value in one of the queue's own keys makes the write pass raise part-way.
      await b.queue.add('echo', 0)
      await b.queue.add('echo', 0, { queue: 'later' })
      await b.queue.add('echo', 0, { queue: 'last' })
      await b.redis.set(b.queue.store.keys.delayed(Q), 'not a zset')
      const err = await b.queue
        .addBulk([
          { task_type: 'echo', payload: 1, id: 'a' },
          { task_type: 'echo', payload: 2, id: 'b', delay_ms: 1000 },
          { task_type: 'echo', payload: 3, id: 'c', queue: 'later' },
          { task_type: 'echo', payload: 4, id: 'd', queue: 'last' },
        ])
        .catch((e) => e)
      expect(err).toBeInstanceOf(BulkAddError)
      expect(err.code).toBe('INTERNAL')
      const outcomes = err.items.map((i: { outcome: string }) => i.outcome)
      expect(outcomes.slice(0, 2)).toEqual(['unknown', 'unknown'])
      // "unknown" is the truth here: the job before the raise was written, the one after was not.
      expect(await existing(b.redis, b, Q, ['a', 'b'])).toEqual([true, false])
      // The other queues' calls: two calls are in flight at once, so 'later' went out with the
      // failing one; 'last' is sent only if a call finished before the failure was seen. Each
      // is reported as what it did: created exactly when it exists.
      expect(outcomes[2]).toBe('created')
      expect(['created', 'not_created']).toContain(outcomes[3])
      expect(await existing(b.redis, b, 'later', ['c'])).toEqual([true])
      expect(await existing(b.redis, b, 'last', ['d'])).toEqual([outcomes[3] === 'created'])
    })
  })

  describe('the id counter', () => {
    async function idsOf(queue: string): Promise<string[]> {
      const keys = await b.keys()
      const prefix = `${b.queue.store.keys.base(queue)}:job:`
      return keys.filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length))
    }

    it.each([
      ['with the block hints (found when reserving)', false],
      ['without them (found by the enqueue function)', true],
    ])(
      'set back under 3000 live jobs heals %s: adds succeed, one warning, no id reused',
      async (_name, dropHints) => {
        const before = await b.queue.addBulk(
          Array.from({ length: 3000 }, (_, i) => ({ task_type: 'echo', payload: i })),
        )
        const old = new Set(before.map((r) => r.job.id))
        await b.redis.set(`${b.prefix}:ids`, 0)
        if (dropHints)
          await Promise.all(
            (await b.keys()).filter((k) => k.includes(':loc:b:')).map((k) => b.redis.unlink(k)),
          )
        const warnings: object[] = []
        const fresh = new Queue(b.redis, b.config, { clock, warn: (detail) => warnings.push(detail) })
        const one = await fresh.add('echo', 'new-1')
        const bulk = await fresh.addBulk(
          Array.from({ length: 1500 }, (_, i) => ({ task_type: 'echo', payload: i })),
        )
        const again = await b.queue.add('echo', 'old-process') // the first process's block ran out too
        const added = [one, ...bulk, again]
        expect(added.every((r) => r.created)).toBe(true)
        for (const r of added) expect(old.has(r.job.id)).toBe(false)
        expect(new Set(added.map((r) => r.job.id)).size).toBe(added.length)
        expect(warnings).toHaveLength(1)
        // The 3000 jobs are untouched and every job is there once.
        expect((await b.queue.getJob(before[0]!.job.id))?.payload).toBe(0)
        expect((await idsOf(Q)).length).toBe(3000 + added.length)
      },
    )

    it('set back, with the block hints intact, does not hand out an id live in another queue', async () => {
      const before = await b.queue.addBulk(
        Array.from({ length: 3000 }, (_, i) => ({ task_type: 'echo', payload: i })),
      )
      await b.redis.set(`${b.prefix}:ids`, 0)
      const fresh = new Queue(b.redis, b.config, { clock, warn: () => {} })
      const other = await fresh.addBulk(
        Array.from({ length: 10 }, () => ({ task_type: 'echo', queue: 'other' })),
      )
      const old = new Set(before.map((r) => r.job.id))
      for (const r of other) expect(old.has(r.job.id)).toBe(false)
      for (const r of other) expect((await b.queue.getJob(r.job.id))?.queue).toBe('other')
    })

    it.each([
      ['block hints', false],
      ['live jobs the enqueue function finds', true],
    ])('reset to 0 under a million ids (%s) heals in about ten rounds', async (_name, byJobs) => {
      const writes: Array<Promise<unknown>> = []
      for (let block = 0; block < 1000; block++) {
        if (byJobs)
          writes.push(
            b.redis.hset(b.queue.store.keys.job(Q, String(block * ID_BLOCK + 1)), F.state, 'queued'),
          )
        else writes.push(b.redis.set(b.queue.store.keys.locBlock(String(block)), Q))
      }
      await Promise.all(writes)
      const queue = new Queue(b.redis, b.config, { clock, warn: () => {} })
      const traffic = countTraffic(b.redis)
      const { job } = await queue.add('echo', 'after')
      expect(Number(job.id)).toBeGreaterThan(1000 * ID_BLOCK)
      const rounds = traffic.t.names.filter((n) => n === 'incrby').length
      expect(rounds).toBeGreaterThanOrEqual(9)
      expect(rounds).toBeLessThanOrEqual(12)
    })
  })
})

describe('lookups without a queue', () => {
  let b: ApiBundle
  beforeEach(async () => {
    b = await apiSetup()
  })
  afterEach(() => b.cleanup())

  async function cost(url: string) {
    const traffic = countTraffic(b.queue.store.redis)
    const r = await b.app.inject({ method: 'GET', url })
    expect(r.statusCode).toBe(200)
    return { commands: traffic.t.commands, roundTrips: traffic.t.writes, body: r.json() }
  }

  it('by generated id, or with the queue: the same cost with 1 and 200 queues; a missing hint is found by one pipelined scan and written again', async () => {
    const generated = (await b.queue.add('echo', 'g', { queue: 'q-001' })).job
    await b.queue.add('echo', 'mine', { queue: 'q-001', id: 'mine' })
    const keyed = (await b.queue.add('echo', 'k', { queue: 'q-001', idempotency_key: 'order-1' })).job
    const urls = [
      `/jobs/${generated.id}`,
      '/jobs/mine?queue=q-001',
      '/jobs?idempotency_key=order-1&queue=q-001',
    ]
    const one = []
    for (const u of urls) one.push(await cost(u))
    expect(one[0]!.body).toMatchObject({ id: generated.id, queue: 'q-001' })
    expect(one[1]!.body).toMatchObject({ id: 'mine', queue: 'q-001' })
    expect(one[2]!.body.items.map((j: { id: string }) => j.id)).toEqual([keyed.id])

    // 199 more queues, each with a job of its own (its id blocks hinted to it).
    await Promise.all(
      Array.from({ length: 199 }, (_, i) =>
        b.queue.add('echo', i, { queue: `q-${String(i + 2).padStart(3, '0')}` }),
      ),
    )
    expect((await b.queue.queueNames()).length).toBe(200)
    const many = []
    for (const u of urls) many.push(await cost(u))
    for (let i = 0; i < urls.length; i++) {
      expect(many[i]!.body).toEqual(one[i]!.body)
      expect({ url: urls[i], ...pick(many[i]!) }).toEqual({ url: urls[i], ...pick(one[i]!) })
      expect(one[i]!.roundTrips).toBeLessThanOrEqual(3)
    }

    // Control: without its hint a lookup reads every queue (one pipelined round trip) ...
    const keys = b.queue.store.keys
    await b.redis.del(keys.locBlock(idBlock(generated.id)))
    const scan = await cost(urls[0]!)
    expect(scan.body).toEqual(one[0]!.body)
    expect(scan.commands).toBeGreaterThan(200) // O(queues) commands ...
    expect(scan.roundTrips).toBeLessThanOrEqual(one[0]!.roundTrips + 3) // ... in a constant number of round trips
    // ... and writes the hint again: the next lookup costs what it did.
    expect(await b.redis.get(keys.locBlock(idBlock(generated.id)))).toBe('q-001')
    expect(pick(await cost(urls[0]!))).toEqual(pick(one[0]!))
  })

  it('by your own id or idempotency key without the queue: every queue read in one pipelined round trip (ids are unique per queue, ADR 0016)', async () => {
    await b.queue.add('echo', 'mine', { queue: 'q-001', id: 'mine' })
    const keyed = (await b.queue.add('echo', 'k', { queue: 'q-001', idempotency_key: 'order-1' })).job
    await Promise.all(
      Array.from({ length: 199 }, (_, i) =>
        b.queue.add('echo', i, { queue: `q-${String(i + 2).padStart(3, '0')}` }),
      ),
    )
    const own = await cost('/jobs/mine')
    expect(own.body).toMatchObject({ id: 'mine', queue: 'q-001' })
    const byKey = await cost('/jobs?idempotency_key=order-1')
    expect(byKey.body.items.map((j: { id: string }) => j.id)).toEqual([keyed.id])
    for (const c of [own, byKey]) {
      expect(c.commands).toBeGreaterThan(200)
      expect(c.roundTrips).toBeLessThanOrEqual(4)
    }
  })

  it('documents the batch failure reply in OpenAPI', async () => {
    const spec = (await b.app.inject({ method: 'GET', url: '/openapi.json' })).json()
    const post = spec.paths['/jobs/batch'].post
    expect(post.description).toMatch(/not_created/)
    for (const status of ['500', '503']) {
      const details = post.responses[status].content['application/json'].schema.properties.details
      expect(details.properties.items.items.properties.outcome.enum).toEqual([
        'created',
        'existing',
        'rejected',
        'not_created',
        'unknown',
      ])
    }
  })

  it('a block hint naming the wrong queue falls back and is corrected', async () => {
    const { job } = await b.queue.add('echo', 'real', { queue: 'right' })
    await b.queue.add('echo', 0, { queue: 'wrong' })
    await b.redis.set(b.queue.store.keys.locBlock(idBlock(job.id)), 'wrong')
    expect((await b.queue.getJob(job.id))?.queue).toBe('right')
    expect(await b.redis.get(b.queue.store.keys.locBlock(idBlock(job.id)))).toBe('right')
  })
})

function pick(c: { commands: number; roundTrips: number }) {
  return { commands: c.commands, roundTrips: c.roundTrips }
}

/** A redis-server of this file's own (no persistence, noeviction) for memory limits and pauses. */
async function privateRedis(): Promise<{ url: string; stop(): Promise<void> }> {
  const port = await freePort()
  const child = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--maxmemory-policy',
      'noeviction',
    ],
    { stdio: 'ignore' },
  )
  const deadline = Date.now() + 10_000
  while (!(await canConnect('127.0.0.1', port, 200))) {
    if (child.exitCode !== null || Date.now() > deadline)
      throw new Error('private redis-server did not start')
    await new Promise((r) => setTimeout(r, 50))
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((done) => {
        if (child.exitCode !== null) return done()
        child.once('exit', () => done())
        child.kill('SIGTERM')
      }),
  }
}

describe('when Redis refuses or does not answer (a private redis-server)', () => {
  let server: { url: string; stop(): Promise<void> }
  let admin: Redis
  let b: ApiBundle
  beforeAll(async () => {
    server = await privateRedis()
    admin = createRedis({ target: server.url, commandTimeoutMs: 5000 })
    await connectRedis(admin)
  })
  afterAll(async () => {
    admin.disconnect()
    await server.stop()
  })
  beforeEach(async () => {
    await admin.config('SET', 'maxmemory', '0')
    await admin.flushall()
    b = await apiSetup({ redisCommandTimeoutMs: 400 }, { url: server.url })
  })
  afterEach(async () => {
    await admin.call('CLIENT', 'UNPAUSE')
    await admin.config('SET', 'maxmemory', '0')
    await b.cleanup()
  })

  const usedMemory = async () => Number(/used_memory:(\d+)/.exec(await admin.info('memory'))![1])
  const big = 'x'.repeat(2000)
  const items = (prefix: string, n: number, queue?: string) =>
    Array.from({ length: n }, (_, i) => ({
      task_type: 'echo',
      payload: big,
      job_id: `${prefix}-${i}`,
      queue,
    }))
  const post = (jobs: unknown[]) => b.app.inject({ method: 'POST', url: '/jobs/batch', payload: { jobs } })

  it('near maxmemory a batch is refused whole (503, nothing written, every item not_created); written as two calls of 500 it would have been half-written', async () => {
    await b.queue.add('echo', 0) // the queue registered, the function library loaded
    // Room for about one half of the batch (calibrated: 2 KB payloads, ~2.7 KB per job stored).
    await admin.config('SET', 'maxmemory', String((await usedMemory()) + 1_800_000))
    const created = await admin.hget(b.queue.store.keys.stats(Q), 'created')
    const batch = items('a', 1000)
    const r = await post(batch)
    expect(r.statusCode).toBe(503)
    expect(r.headers['retry-after']).toBe('1')
    const body = r.json()
    expect(body).toMatchObject({
      code: 'REDIS_OUT_OF_MEMORY',
      details: { created: 0, not_created: 1000, unknown: 0 },
    })
    expect(
      body.details.items.every(
        (i: { outcome: string; status: number }) => i.outcome === 'not_created' && i.status === 503,
      ),
    ).toBe(true)
    expect(
      (
        await existing(
          admin,
          b,
          Q,
          batch.map((j) => j.job_id),
        )
      ).some(Boolean),
    ).toBe(false)
    expect(await admin.hget(b.queue.store.keys.stats(Q), 'created')).toBe(created)

    // NEGATIVE CONTROL: the same jobs in two calls of 500 (what the batch route used to make).
    const halves = [batch.slice(0, 500), batch.slice(500)].map((h) =>
      h.map(({ job_id, ...j }) => ({ ...j, id: job_id })),
    )
    const first = await b.queue.addBulk(halves[0]!).then(
      () => 'written',
      () => 'refused',
    )
    const second = await b.queue.addBulk(halves[1]!).then(
      () => 'written',
      () => 'refused',
    )
    expect([first, second]).toEqual(['written', 'refused'])
  })

  it('a multi-queue batch failing on its second queue says exactly which items exist, and Redis agrees', async () => {
    await b.queue.add('echo', 0, { queue: 'second' }) // registered, with a block of ids
    const store = b.queue.store
    const enqueue = store.enqueue.bind(store)
    // Redis runs out of memory between the first queue's call and the second's.
    store.enqueue = async (queue, jobs) => {
      if (queue === 'second') await admin.config('SET', 'maxmemory', '1')
      return enqueue(queue, jobs)
    }
    const jobs = [
      { task_type: 'echo', payload: 'f0', queue: 'first' },
      { task_type: 'echo', payload: 's0', queue: 'second' },
      { task_type: 'echo', payload: 'f1', queue: 'first', job_id: 'f-1' },
      { task_type: 'echo', queue: 'first', delay_ms: 1, run_at: 1 },
      { task_type: 'echo', payload: 's1', queue: 'second', job_id: 's-1' },
      { task_type: 'echo', payload: 't0', queue: 'third', job_id: 't-0' },
      { task_type: 'echo', payload: 'f2', queue: 'first', idempotency_key: 'f-key' },
    ]
    const r = await post(jobs)
    expect(r.statusCode).toBe(503)
    const d = r.json().details
    expect(d).toMatchObject({ created: 3, existing: 0, rejected: 1, not_created: 3, unknown: 0 })
    expect(d.items.map((i: { outcome: string }) => i.outcome)).toEqual([
      'created',
      'not_created',
      'created',
      'rejected',
      'not_created',
      'not_created',
      'created',
    ])
    expect(d.items.map((i: { status: number }) => i.status)).toEqual([201, 503, 201, 400, 503, 503, 201])
    await admin.config('SET', 'maxmemory', '0')
    // Every created item is in Redis as the reply says; nothing else was added.
    for (const i of d.items.filter((x: { outcome: string }) => x.outcome === 'created')) {
      const job = await b.queue.getJob(i.job.id, 'first')
      expect(job).toMatchObject({ id: i.job.id, payload: jobs[i.index]!.payload, state: 'queued' })
    }
    expect(await existing(admin, b, 'second', ['s-1'])).toEqual([false])
    expect(await existing(admin, b, 'third', ['t-0'])).toEqual([false])
    expect(await b.queue.store.queuedCount('first')).toBe(3)
    expect(await b.queue.store.queuedCount('second')).toBe(1) // the job added before the batch
    expect(await b.queue.store.queuedCount('third')).toBe(0)
  })

  it('a multi-queue batch whose second call times out reports those items unknown (the call may have run)', async () => {
    await b.queue.add('echo', 0, { queue: 'second' })
    const store = b.queue.store
    const enqueue = store.enqueue.bind(store)
    const relinked = new Promise((ready) => b.redis.once('ready', ready)) // a timeout drops the link
    // Writes stop being served between the first queue's call and the second's.
    store.enqueue = async (queue, jobs) => {
      if (queue === 'second') await admin.call('CLIENT', 'PAUSE', '3000', 'WRITE')
      return enqueue(queue, jobs)
    }
    const r = await post([
      { task_type: 'echo', queue: 'first', job_id: 'f-0' },
      { task_type: 'echo', queue: 'second', job_id: 's-0' },
      { task_type: 'echo', queue: 'third', job_id: 't-0' },
    ])
    expect(r.statusCode).toBe(503)
    expect(r.json().details.items.map((i: { outcome: string }) => i.outcome)).toEqual([
      'created',
      'unknown',
      'not_created',
    ])
    await admin.call('CLIENT', 'UNPAUSE')
    expect(await existing(admin, b, 'first', ['f-0'])).toEqual([true])
    expect(await existing(admin, b, 'third', ['t-0'])).toEqual([false])
    await relinked
  })

  it('a timeout before the enqueue call (reserving ids) reports the items not_created', async () => {
    const relinked = new Promise((ready) => b.redis.once('ready', ready)) // a timeout drops the link
    await admin.call('CLIENT', 'PAUSE', '3000', 'WRITE')
    const r = await post([{ task_type: 'echo', queue: 'fresh' }])
    expect(r.statusCode).toBe(503)
    expect(r.json().details.items.map((i: { outcome: string }) => i.outcome)).toEqual(['not_created'])
    await admin.call('CLIENT', 'UNPAUSE')
    await relinked
  })

  it('group commit: Redis refusing a coalesced call fails every caller in it with that error, writing nothing', async () => {
    await b.queue.add('echo', 0, { id: 'warm' })
    await admin.config('SET', 'maxmemory', '1')
    const res = await Promise.allSettled([
      b.queue.add('echo', 1, { id: 'g-1' }),
      b.queue.add('echo', 2, { id: 'g-2' }),
      b.queue.add('echo', 3, { id: 'g-3' }),
    ])
    expect(res.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected'])
    for (const r of res) expect((r as PromiseRejectedResult).reason.message).toMatch(/^OOM/)
    expect(await existing(admin, b, Q, ['g-1', 'g-2', 'g-3'])).toEqual([false, false, false])
  })
})
