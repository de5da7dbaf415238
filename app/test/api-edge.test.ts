/**
 * The API's edge (issue 15): what a client with a token can send that the engine must refuse or
 * answer exactly -- paging under any ids and page sizes, the queue limit, ids that name one job,
 * crafted cursors, ids the URL can carry, racing deletes, reserved task types, the error shape of
 * every answer (raw requests over a socket), content codings, repeated headers, auth schemes,
 * impossible dates and batch items.
 */
import { STATUS_CODES } from 'node:http'
import { Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import type { Job } from '../src/queue/job.ts'
import { type RedisClient, scanKeys } from '../src/redis/connection.ts'
import { freePort } from '../src/redis/local-server.ts'
import { type ApiBundle, apiSetup, bearer, TOKEN_SETTING } from './api-helpers.ts'
import { FakeClock, waitFor } from './helpers.ts'

const open: Array<{ cleanup(): Promise<void> }> = []
afterEach(async () => {
  for (const b of open.splice(0)) await b.cleanup()
})
async function api(...args: Parameters<typeof apiSetup>): Promise<ApiBundle> {
  const b = await apiSetup(...args)
  open.push(b)
  return b
}

/** A small seeded PRNG (mulberry32): the same seed gives the same case. */
function rng(seed: number) {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1))
  const pick = <T>(xs: readonly T[]): T => xs[int(0, xs.length - 1)]!
  return { next, int, pick }
}

/** A raw HTTP exchange over a socket: what the server wrote until it closed (or `waitMs`). */
function rawExchange(port: number, text: string | Buffer, waitMs = 3000): Promise<string> {
  return new Promise((resolve) => {
    const s = new Socket()
    let out = ''
    const done = () => {
      clearTimeout(t)
      s.destroy()
      resolve(out)
    }
    const t = setTimeout(done, waitMs)
    s.on('data', (d) => {
      out += d
    })
    s.on('close', done)
    s.on('error', done)
    s.connect(port, '127.0.0.1', () => s.write(text))
  })
}

function parseResponse(raw: string): { status: number; headers: Record<string, string>; body: string } {
  const [head = '', ...rest] = raw.split('\r\n\r\n')
  const [statusLine = '', ...lines] = head.split('\r\n')
  const headers: Record<string, string> = {}
  for (const l of lines) {
    const i = l.indexOf(':')
    headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim()
  }
  return { status: Number(statusLine.split(' ')[1]), headers, body: rest.join('\r\n\r\n') }
}

/** The documented error shape: `{error, code, message}` (+ `details`), JSON, code not Fastify's. */
function expectErrorShape(r: { status: number; headers: Record<string, string>; body: string }) {
  expect(r.headers['content-type'], r.body).toMatch(/^application\/json/)
  const body = JSON.parse(r.body)
  expect(Object.keys(body).sort(), r.body).toEqual(
    body.details === undefined ? ['code', 'error', 'message'] : ['code', 'details', 'error', 'message'],
  )
  expect(body.code).toMatch(/^[A-Z][A-Z_]+$/)
  expect(body.code).not.toMatch(/^FST_/)
  expect(body.error).not.toBe('Error')
  return body as { error: string; code: string; message: string; details?: unknown }
}

async function listen(b: ApiBundle): Promise<number> {
  const port = await freePort()
  await b.app.listen({ port, host: '127.0.0.1' })
  return port
}

const cursorOf = (json: string) => Buffer.from(json).toString('base64url')

type Listed = { id: string; queue: string }
async function pageAll(
  b: ApiBundle,
  path: string,
  limits: () => number,
  between: (page: number) => Promise<void> = async () => {},
): Promise<string[]> {
  const seen: string[] = []
  let cursor: string | null = null
  for (let page = 0; page < 5000; page++) {
    const sep = path.includes('?') ? '&' : '?'
    const url: string = `${path}${sep}limit=${limits()}${cursor ? `&cursor=${cursor}` : ''}`
    const r = await b.app.inject({ method: 'GET', url })
    expect(r.statusCode, `${url}: ${r.body}`).toBe(200)
    const body = r.json() as { items: Listed[]; next_cursor: string | null }
    seen.push(...body.items.map((j) => `${j.queue}/${j.id}`))
    if (!body.next_cursor) return seen
    cursor = body.next_cursor
    await between(page)
  }
  throw new Error('paging did not end')
}

function duplicates(xs: string[]): string[] {
  const seen = new Set<string>()
  return xs.filter((x) => {
    if (seen.has(x)) return true
    seen.add(x)
    return false
  })
}

/** Every live job (queue/id → state), read straight from Redis. */
async function allJobs(b: ApiBundle): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  for (const queue of await b.queue.queueNames()) {
    const prefix = `${b.queue.store.keys.base(queue)}:job:`
    await scanKeys(b.redis, `${prefix}*`, async (keys) => {
      for (const k of keys) out.set(`${queue}/${k.slice(prefix.length)}`, (await b.redis.hget(k, 'st')) ?? '')
    })
  }
  return out
}

describe('paging: every job exactly once (item 3)', () => {
  const QUEUES = ['a', 'B', 'c.1']
  const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-'

  /** A caller id: mixed case and punctuation, sometimes a prefix or near-twin of another, never all digits. */
  function callerId(r: ReturnType<typeof rng>, taken: string[]): string {
    for (;;) {
      let id: string
      const shape = r.int(0, 3)
      if (shape === 0 && taken.length) id = `${r.pick(taken)}${r.pick(['', '-', '.', '_', 'a', 'A', '0'])}`
      else if (shape === 1) id = `${r.int(0, 20000)}${r.pick(['a', '-', '.', 'Z'])}`
      else {
        id = ''
        for (let k = r.int(1, 12); k > 0; k--) id += ALPHABET[r.int(0, ALPHABET.length - 1)]
      }
      id = id.slice(0, 128)
      if (/^[0-9]+$/.test(id) || id === '.' || id === '..') continue
      return id
    }
  }

  /**
   * The next generated id of a new queue is `to`: the shared counter moves to `to`'s block, which
   * the queue reserves, and the ids before `to` are taken (a gap, as after a stopped process).
   */
  async function skipIdsTo(b: ApiBundle, queue: string, to: number) {
    const start = Math.floor((to - 1) / 1000) * 1000
    await b.redis.set(b.queue.store.keys.ids(), start)
    // biome-ignore lint/complexity/useLiteralKeys: the store's private allocator, on purpose
    const [first] = await b.queue.store['allocator'](queue).take(to - start - 1 || 1)
    expect(Number(first)).toBe(start + 1)
  }
  const SKIP_TO: Record<string, number> = { a: 995, B: 9995, 'c.1': 99_995 }

  /**
   * Seeds jobs of every kind of id, many created in one millisecond, in several queues and every
   * state. Returns the bundle and its clock.
   */
  async function seed(seedNo: number, clock = new FakeClock()) {
    const b = await api({}, { clock })
    const r = rng(seedNo)
    const store = b.queue.store
    const taken: string[] = []
    for (const queue of QUEUES) {
      // Generated ids across 999 → 1000, 9999 → 10000 and 99999 → 100000 (the rest of an id block
      // is dropped when a bulk needs more: the six come first).
      await skipIdsTo(b, queue, SKIP_TO[queue]!)
      await b.queue.addBulk(Array.from({ length: 6 }, () => ({ task_type: 't2', queue })))
      const specs: Array<Record<string, unknown>> = []
      for (let k = r.int(40, 80); k > 0; k--) {
        const own = r.next() < 0.5
        const id = own ? callerId(r, taken) : undefined
        if (id) taken.push(id)
        specs.push({
          task_type: r.pick(['t1', 't2']),
          queue,
          id,
          priority: r.pick(['high', 'normal', 'low']),
          delay_ms: r.next() < 0.1 ? 60_000 : undefined,
        })
      }
      // Some ids of another queue again: ties on (score, id) broken by the queue.
      for (const id of taken.slice(0, 5))
        if (!specs.some((s) => s.id === id)) specs.push({ task_type: 't1', queue, id })
      // Many in one millisecond: a few bulks, the clock moving rarely.
      for (let i = 0; i < specs.length; ) {
        const n = r.int(1, 30)
        await b.queue.addBulk(specs.slice(i, i + n) as never)
        i += n
        if (r.next() < 0.3) clock.advance(r.int(0, 2))
      }
      // Every state, many moves in one millisecond.
      const d = await store.deliver(queue, 'w', r.int(10, 30))
      for (const j of d.jobs) {
        const what = r.int(0, 4)
        if (what === 0) await store.complete(queue, [{ id: j.id, epoch: j.epoch, result: '1' }])
        else if (what === 1 || what === 2)
          await store.fail(queue, j.id, j.epoch, 'permanent', { message: 'boom', worker: 'w', attempt: 1 }, 0)
        else if (what === 3)
          await store.fail(queue, j.id, j.epoch, 'retry', { message: 'again', worker: 'w', attempt: 1 }, 5000)
        if (r.next() < 0.2) clock.advance(1)
      }
    }
    const ids = [...(await allJobs(b)).keys()].map((k) => k.split('/')[1]!)
    // The ids cross the boundaries the issue names.
    for (const crossing of ['999', '1000', '9999', '10000', '99999', '100000'])
      expect(ids, crossing).toContain(crossing)
    return { b, clock, r }
  }

  it('GET /jobs and GET /dlq list every job exactly once, whatever the ids and page sizes (seeded)', async () => {
    for (const seedNo of [1, 2, 3, 4, 5, 6]) {
      const { b, r } = await seed(seedNo)
      const jobs = await allJobs(b)
      const failed = [...jobs].filter(([, st]) => st === 'failed').map(([k]) => k)
      expect(failed.length).toBeGreaterThan(3)
      const views: Array<[string, string[]]> = [
        ['/jobs', [...jobs.keys()]],
        ['/jobs?queue=B', [...jobs.keys()].filter((k) => k.startsWith('B/'))],
        ['/jobs?status=queued', [...jobs].filter(([, s]) => s === 'queued').map(([k]) => k)],
        ['/jobs?status=failed', failed],
        ['/dlq', failed],
        ['/dlq?queue=a', failed.filter((k) => k.startsWith('a/'))],
      ]
      for (const [path, expected] of views) {
        for (const fixed of [1, 7, 47, 100, 0]) {
          const got = await pageAll(b, path, () => fixed || r.int(1, 100))
          expect({ seedNo, path, fixed, duplicates: duplicates(got) }).toEqual({
            seedNo,
            path,
            fixed,
            duplicates: [],
          })
          expect({ seedNo, path, fixed, got: got.sort() }).toEqual({
            seedNo,
            path,
            fixed,
            got: [...expected].sort(),
          })
        }
      }
      await b.cleanup()
      open.splice(open.indexOf(b), 1)
    }
  })

  it('while jobs change between pages: never one twice, every job that did not change exactly once', async () => {
    for (const seedNo of [11, 12, 13, 14, 15, 16]) {
      // One time base, as in production (ADR 0012): the index moves of the seed share one
      // millisecond of Redis's time; the ready streams' entries carry Redis's time itself.
      const { b, clock, r } = await seed(seedNo, new FakeClock(Date.now()))
      const seeded = Date.now()
      const store = b.queue.store
      for (const path of ['/jobs', '/dlq']) {
        const before = await allJobs(b)
        const changed = new Set<string>()
        const got = await pageAll(
          b,
          path,
          () => r.int(1, 100),
          async () => {
            // Time goes on (a move puts a job ahead of every cursor); some jobs move, new ones come.
            await waitFor(() => Date.now() > seeded)
            clock.t = Math.max(clock.t, Date.now()) + r.int(0, 2)
            const queue = r.pick(QUEUES)
            const d = await store.deliver(queue, 'w', r.int(1, 3))
            for (const j of d.jobs) {
              changed.add(`${queue}/${j.id}`)
              if (r.next() < 0.5)
                await store.fail(
                  queue,
                  j.id,
                  j.epoch,
                  'permanent',
                  { message: 'x', worker: 'w', attempt: 1 },
                  0,
                )
              else await store.complete(queue, [{ id: j.id, epoch: j.epoch, result: '1' }])
            }
            const dead = [...before].filter(([k, s]) => s === 'failed' && k.startsWith(`${queue}/`))
            if (dead.length && r.next() < 0.5) {
              const k = r.pick(dead)[0]
              changed.add(k)
              await store.requeue(queue, [k.split('/')[1]!])
            }
            const added = await b.queue.addBulk(
              Array.from({ length: r.int(0, 3) }, () => ({ task_type: 't1', queue })),
            )
            for (const a of added) changed.add(`${queue}/${a.job.id}`)
          },
        )
        expect({ seedNo, path, duplicates: duplicates(got) }).toEqual({ seedNo, path, duplicates: [] })
        const listed = new Set(got)
        const missing = [...before]
          .filter(([k, s]) => !changed.has(k) && (path === '/jobs' || s === 'failed'))
          .map(([k]) => k)
          .filter((k) => !listed.has(k))
        expect({ seedNo, path, missing }).toEqual({ seedNo, path, missing: [] })
      }
      await b.cleanup()
      open.splice(open.indexOf(b), 1)
    }
  })
})

describe('DELETE /dlq?older_than_days (item 6)', () => {
  it('needs an explicit value: empty or absent is a 400 and deletes nothing', async () => {
    const b = await api()
    const { job } = await b.queue.add('echo', 1)
    const d = await b.queue.store.deliver('default', 'w', 1)
    await b.queue.store.fail(
      'default',
      job.id,
      d.jobs[0]!.epoch,
      'permanent',
      { message: 'x', worker: 'w', attempt: 1 },
      0,
    )
    for (const url of [
      '/dlq?older_than_days=',
      '/dlq',
      '/dlq?older_than_days=&queue=default',
      '/dlq?older_than_days=%20',
    ]) {
      const r = await b.app.inject({ method: 'DELETE', url })
      expect(r.statusCode, url).toBe(400)
      expect(r.json().code, url).toBe('VALIDATION')
    }
    // The same rule on the listing's age filter: empty is not 0.
    expect((await b.app.inject({ method: 'GET', url: '/dlq?older_than_days=' })).statusCode).toBe(400)
    expect((await b.queue.getJob(job.id))?.state).toBe('failed')
    const r = await b.app.inject({ method: 'DELETE', url: '/dlq?older_than_days=0' })
    expect(r.json()).toEqual({ deleted: 1 })
  })
})

/** Counts the Redis commands a call sends. */
function commandMeter(redis: RedisClient) {
  let count = 0
  const send = redis.sendCommand.bind(redis)
  redis.sendCommand = ((...args: unknown[]) => {
    // Not counted: the partition list, re-read at most once a second whatever the number of
    // queues (PARTITIONS_FRESH_MS): whether a measured request falls on a refresh is timing.
    const cmd = args[0] as { name?: string; args?: unknown[] } | undefined
    if (!(cmd?.name === 'hgetall' && String(cmd.args?.[0]).endsWith(':partitions'))) count++
    return (send as (...a: unknown[]) => unknown)(...args)
  }) as RedisClient['sendCommand']
  return async (fn: () => Promise<unknown>) => {
    count = 0
    await fn()
    return count
  }
}

describe('the number of queues is bounded (item 7)', () => {
  it('refuses a new queue beyond MAX_QUEUES with 409 QUEUE_LIMIT, writing nothing; known queues go on', async () => {
    const b = await api({ maxQueues: 3 })
    for (const q of ['q1', 'q2', 'q3'])
      expect(
        (await b.app.inject({ method: 'POST', url: '/jobs', payload: { task_type: 'echo', queue: q } }))
          .statusCode,
      ).toBe(201)
    const keysBefore = await b.keys()
    const r = await b.app.inject({
      method: 'POST',
      url: '/jobs',
      payload: { task_type: 'echo', queue: 'q4' },
    })
    expect(r.statusCode).toBe(409)
    expect(r.json()).toMatchObject({ error: 'Conflict', code: 'QUEUE_LIMIT' })
    expect(r.json().message).toMatch(/MAX_QUEUES|3 queues/)
    // A batch naming a new queue: its items are not created (the others are).
    const batch = await b.app.inject({
      method: 'POST',
      url: '/jobs/batch',
      payload: { jobs: [{ task_type: 'echo', queue: 'q5' }] },
    })
    expect(batch.statusCode).toBe(409)
    expect(batch.json().details.items[0]).toMatchObject({ outcome: 'not_created', status: 409 })
    // Pausing or resuming a queue that does not exist would register it: refused too.
    for (const action of ['pause', 'resume']) {
      const p = await b.app.inject({ method: 'POST', url: `/queues/q6/${action}` })
      expect(p.statusCode, action).toBe(409)
      expect(p.json().code).toBe('QUEUE_LIMIT')
    }
    expect(await b.keys()).toEqual(keysBefore)
    expect((await b.queue.queueNames()).sort()).toEqual(['q1', 'q2', 'q3'])
    // A worker configured with a new queue does not start (it would register it).
    const w = b.worker({ workerQueues: ['q7'] })
    await expect(w.start()).rejects.toMatchObject({ code: 'QUEUE_LIMIT' })
    expect((await b.queue.queueNames()).sort()).toEqual(['q1', 'q2', 'q3'])
    // Known queues go on; a forgotten queue frees its place.
    expect(
      (await b.app.inject({ method: 'POST', url: '/jobs', payload: { task_type: 'echo', queue: 'q2' } }))
        .statusCode,
    ).toBe(201)
    expect((await b.app.inject({ method: 'POST', url: '/queues/q1/pause' })).statusCode).toBe(200)
    await b.redis.srem(b.queue.store.keys.queues(), 'q3')
    expect(
      (await b.app.inject({ method: 'POST', url: '/jobs', payload: { task_type: 'echo', queue: 'q4' } }))
        .statusCode,
    ).toBe(201)
  })

  it('lets exactly MAX_QUEUES queues in when many new ones race', async () => {
    for (let round = 0; round < 6; round++) {
      const b = await api({ maxQueues: 5 })
      const replies = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          b.app.inject({ method: 'POST', url: '/jobs', payload: { task_type: 'echo', queue: `r${i}` } }),
        ),
      )
      expect(replies.filter((r) => r.statusCode === 201).length).toBe(5)
      expect(replies.filter((r) => r.statusCode === 409).length).toBe(7)
      expect((await b.queue.queueNames()).length).toBe(5)
    }
  })

  it('a request that names a queue costs the same with 2 queues as with 300', async () => {
    const b = await api({ maxQueues: 1000 })
    await b.queue.add('echo', 1, { queue: 'target', id: 'own-1' })
    const { job } = await b.queue.add('echo', 2, { queue: 'target' })
    const d = await b.queue.store.deliver('target', 'w', 1)
    await b.queue.store.fail(
      'target',
      d.jobs[0]!.id,
      d.jobs[0]!.epoch,
      'permanent',
      { message: 'x', worker: 'w', attempt: 1 },
      0,
    )
    await b.queue.add('echo', 1, { queue: 'other' })
    const measure = commandMeter(b.redis)
    const urls: Array<[string, string, unknown?]> = [
      ['GET', '/jobs?queue=target&limit=2'],
      ['GET', '/dlq?queue=target&limit=1'],
      ['GET', `/jobs/${job.id}?queue=target`],
      ['GET', '/jobs/own-1?queue=target'],
      ['POST', '/jobs', { task_type: 'echo', queue: 'target' }],
      ['POST', '/queues/target/pause'],
      ['POST', '/queues/target/resume'],
      ['DELETE', '/dlq?older_than_days=30&queue=target'],
      ['POST', '/dlq/retry', { queue: 'target', older_than_days: 30 }],
    ]
    const cost = async () => {
      const out: Record<string, number> = {}
      for (const [method, url, payload] of urls) {
        out[`${method} ${url}`] = await measure(async () => {
          const r = await b.app.inject({ method: method as 'GET', url, payload: payload as never })
          expect(r.statusCode, `${method} ${url} ${r.body}`).toBeLessThan(300)
        })
      }
      return out
    }
    const few = await cost()
    await b.queue.addBulk(Array.from({ length: 298 }, (_, i) => ({ task_type: 'echo', queue: `many-${i}` })))
    expect((await b.queue.queueNames()).length).toBe(300)
    expect(await cost()).toEqual(few)
  })
})

describe('a job id names one job (item 8)', () => {
  it('the same caller id in two queues: Location names its queue; id routes without ?queue= answer 409 with the queues', async () => {
    const b = await api()
    const post = (url: string, payload?: unknown) =>
      b.app.inject({ method: 'POST', url, payload: payload as never })
    const first = await post('/jobs', { task_type: 'echo', job_id: 'order-7', queue: 'q1', payload: 1 })
    const second = await post('/jobs', { task_type: 'echo', job_id: 'order-7', queue: 'q2', payload: 2 })
    expect([first.statusCode, second.statusCode]).toEqual([201, 201])
    expect(first.headers.location).toBe('/jobs/order-7?queue=q1')
    expect(second.headers.location).toBe('/jobs/order-7?queue=q2')
    // Each Location resolves to its own job.
    expect(
      (await b.app.inject({ method: 'GET', url: second.headers.location as string })).json().payload,
    ).toBe(2)
    expect(
      (await b.app.inject({ method: 'GET', url: first.headers.location as string })).json().payload,
    ).toBe(1)
    // Without the queue, every id route refuses to guess.
    for (const [method, url] of [
      ['GET', '/jobs/order-7'],
      ['POST', '/jobs/order-7/cancel'],
      ['POST', '/jobs/order-7/retry'],
      ['POST', '/dlq/order-7/retry'],
      ['DELETE', '/dlq/order-7'],
    ] as const) {
      const r = await b.app.inject({ method, url })
      expect(r.statusCode, `${method} ${url}`).toBe(409)
      expect(r.json()).toMatchObject({ code: 'AMBIGUOUS_JOB_ID', details: { queues: ['q1', 'q2'] } })
    }
    expect((await b.queue.getJob('order-7', 'q1'))?.state).toBe('queued')
    expect((await b.queue.getJob('order-7', 'q2'))?.state).toBe('queued')
    await expect(b.queue.getJob('order-7')).rejects.toMatchObject({ code: 'AMBIGUOUS_JOB_ID' })
    // With the queue, each acts on its own job.
    const c = await post('/jobs/order-7/cancel?queue=q2')
    expect(c.statusCode).toBe(200)
    expect(c.json().job).toMatchObject({ queue: 'q2', state: 'cancelled' })
    expect((await b.queue.getJob('order-7', 'q1'))?.state).toBe('queued')
    // A caller id in one queue only, and a generated id, need no queue; their Location has it anyway.
    const single = await post('/jobs', { task_type: 'echo', job_id: 'only-here', queue: 'q2' })
    expect(single.headers.location).toBe('/jobs/only-here?queue=q2')
    expect((await b.app.inject({ method: 'GET', url: '/jobs/only-here' })).statusCode).toBe(200)
    const gen = await post('/jobs', { task_type: 'echo', queue: 'q2' })
    expect(gen.headers.location).toBe(`/jobs/${gen.json().id}?queue=q2`)
    expect((await b.app.inject({ method: 'GET', url: `/jobs/${gen.json().id}` })).statusCode).toBe(200)
  })

  it('GET /jobs?idempotency_key= without a queue lists the job of every queue that has the key', async () => {
    const b = await api()
    await b.queue.add('echo', 1, { queue: 'q1', idempotency_key: 'k-1' })
    await b.queue.add('echo', 2, { queue: 'q2', idempotency_key: 'k-1' })
    const r = await b.app.inject({ method: 'GET', url: '/jobs?idempotency_key=k-1' })
    expect(
      r
        .json()
        .items.map((j: Job) => j.queue)
        .sort(),
    ).toEqual(['q1', 'q2'])
    const one = await b.app.inject({ method: 'GET', url: '/jobs?idempotency_key=k-1&queue=q2' })
    expect(one.json().items.map((j: Job) => j.payload)).toEqual([2])
  })
})

describe('crafted cursors (item 9)', () => {
  it.each([
    ['a non-finite score', '[1e400,"a","default"]'],
    ['a negative score', '[-1,"a","default"]'],
    ['a fractional score', '[1.5,"a","default"]'],
    ['an exponent score', '[1e21,"a","default"]'],
    ['an exponent spelling', '[1e3,"a","default"]'],
    ['an unsafe integer', '[9007199254740993,"a","default"]'],
    ['an id that is not an id', '[1,"a:b","default"]'],
    ['a queue that is not a queue', '[1,"a","{x}"]'],
    ['extra fields', '[1,"a","default",4]'],
    ['not JSON', 'zzzz'],
    ['an object', '{"score":1}'],
  ])('%s → 400 on /jobs and /dlq', async (_name, text) => {
    const b = await api()
    await b.queue.add('echo', 1)
    const cursor = text === 'zzzz' ? 'zzzz' : cursorOf(text)
    for (const path of ['/jobs', '/dlq']) {
      const r = await b.app.inject({ method: 'GET', url: `${path}?cursor=${cursor}` })
      expect(r.statusCode, `${path} ${r.body}`).toBe(400)
      expect(r.json()).toMatchObject({ code: 'VALIDATION' })
      expect(r.json().message).toMatch(/cursor/)
    }
  })

  it('an empty cursor is a 400 too; a cursor the API gave pages on', async () => {
    const b = await api()
    for (let i = 0; i < 3; i++) await b.queue.add('echo', i)
    expect((await b.app.inject({ method: 'GET', url: '/jobs?cursor=' })).statusCode).toBe(400)
    const first = (await b.app.inject({ method: 'GET', url: '/jobs?limit=2' })).json()
    const next = await b.app.inject({ method: 'GET', url: `/jobs?limit=2&cursor=${first.next_cursor}` })
    expect(next.statusCode).toBe(200)
    expect(next.json().items).toHaveLength(1)
  })
})

describe('ids the URL can carry (item 10)', () => {
  it('an id of 128 characters is reachable on every id route; longer ones are refused at creation', async () => {
    const b = await api()
    const port = await listen(b)
    const id = `x${'a'.repeat(127)}`
    const created = await b.app.inject({
      method: 'POST',
      url: '/jobs',
      payload: { task_type: 'echo', job_id: id },
    })
    expect(created.statusCode).toBe(201)
    const call = (method: string, path: string) =>
      fetch(`http://127.0.0.1:${port}${path}`, { method }).then(async (r) => ({
        status: r.status,
        body: await r.text(),
      }))
    expect((await call('GET', `/jobs/${id}`)).status).toBe(200)
    expect((await call('POST', `/jobs/${id}/cancel`)).status).toBe(200)
    expect((await call('POST', `/jobs/${id}/retry?queue=default`)).status).toBe(200)
    const d = await b.queue.store.deliver('default', 'w', 1)
    await b.queue.store.fail(
      'default',
      id,
      d.jobs[0]!.epoch,
      'permanent',
      { message: 'x', worker: 'w', attempt: 1 },
      0,
    )
    expect((await call('POST', `/dlq/${id}/retry`)).status).toBe(200)
    const d2 = await b.queue.store.deliver('default', 'w', 1)
    await b.queue.store.fail(
      'default',
      id,
      d2.jobs[0]!.epoch,
      'permanent',
      { message: 'x', worker: 'w', attempt: 1 },
      0,
    )
    expect((await call('DELETE', `/dlq/${id}`)).status).toBe(200)
    // Too long: refused by the API, the library and the script alike.
    const long = 'y'.repeat(129)
    const r = await b.app.inject({
      method: 'POST',
      url: '/jobs',
      payload: { task_type: 'echo', job_id: long },
    })
    expect(r.statusCode).toBe(400)
    await expect(b.queue.add('echo', 1, { id: long })).rejects.toMatchObject({ code: 'VALIDATION' })
    // A too long id in a path is a 400 like any bad id, not a 414; a worker id of 200 is routable.
    const g = await call('GET', `/jobs/${long}`)
    expect(g.status).toBe(400)
    expect(JSON.parse(g.body).code).toBe('VALIDATION')
    expect((await call('POST', `/workers/${'w'.repeat(200)}/pause`)).status).toBe(404)
  })

  it('refuses ids and queue names a URL path cannot carry (dot segments)', async () => {
    const b = await api()
    for (const payload of [
      { task_type: 'echo', job_id: '.' },
      { task_type: 'echo', job_id: '..' },
      { task_type: 'echo', queue: '..' },
    ]) {
      const r = await b.app.inject({ method: 'POST', url: '/jobs', payload })
      expect(r.statusCode, JSON.stringify(payload)).toBe(400)
    }
    await expect(b.queue.add('echo', 1, { id: '..' })).rejects.toMatchObject({ code: 'VALIDATION' })
    await expect(b.queue.add('echo', 1, { queue: '.' })).rejects.toMatchObject({ code: 'VALIDATION' })
    expect(await b.keys()).toEqual([])
    // Dots elsewhere are fine.
    expect((await b.queue.add('echo', 1, { id: '...', queue: 'a.b' })).created).toBe(true)
  })
})

describe('racing deletes (item 12)', () => {
  it('ten racing DELETE /dlq/{id}: exactly one deletes, the others get 404', async () => {
    const b = await api()
    const port = await listen(b)
    for (let round = 0; round < 6; round++) {
      const { job } = await b.queue.add('echo', round)
      const d = await b.queue.store.deliver('default', 'w', 1)
      await b.queue.store.fail(
        'default',
        job.id,
        d.jobs[0]!.epoch,
        'permanent',
        { message: 'x', worker: 'w', attempt: 1 },
        0,
      )
      const replies = await Promise.all(
        Array.from({ length: 10 }, () =>
          fetch(`http://127.0.0.1:${port}/dlq/${job.id}`, { method: 'DELETE' }).then(async (r) => ({
            status: r.status,
            body: await r.json(),
          })),
        ),
      )
      expect(replies.filter((r) => r.status === 200).map((r) => r.body)).toEqual([{ deleted: 1 }])
      expect(replies.filter((r) => r.status === 404).length).toBe(9)
      expect(await b.queue.getJob(job.id)).toBeNull()
    }
  })
})

describe('reserved task types (item 13)', () => {
  it('POST /jobs, the batch and the generator refuse the dtq. prefix with 400, writing nothing', async () => {
    const b = await api()
    for (const task_type of ['dtq.dlq_retry', 'dtq.anything']) {
      const r = await b.app.inject({
        method: 'POST',
        url: '/jobs',
        payload: { task_type, payload: { filter: {}, rate_per_sec: 1, bounds: {} } },
      })
      expect(r.statusCode, task_type).toBe(400)
      expect(r.json().message).toMatch(/reserved/)
      const g = await b.app.inject({
        method: 'POST',
        url: '/dev/generate-jobs',
        payload: { count: 1, task_type },
      })
      expect(g.statusCode, task_type).toBe(400)
    }
    expect(await b.keys()).toEqual([])
    const batch = await b.app.inject({
      method: 'POST',
      url: '/jobs/batch',
      payload: { jobs: [{ task_type: 'dtq.dlq_retry' }, { task_type: 'echo' }] },
    })
    expect(batch.statusCode).toBe(200)
    expect(batch.json()).toMatchObject({ created: 1, rejected: 1 })
    expect(batch.json().items[0]).toMatchObject({ status: 400, outcome: 'rejected' })
    // Names that merely contain it are the client's own.
    for (const task_type of ['dtqx.a', 'my.dtq.a', 'DTQ.a'])
      expect((await b.app.inject({ method: 'POST', url: '/jobs', payload: { task_type } })).statusCode).toBe(
        201,
      )
    // The redrive route still makes its own system job.
    expect((await b.app.inject({ method: 'POST', url: '/dlq/retry', payload: {} })).statusCode).toBe(202)
  })
})

describe('every error has the documented shape, on the wire (item 15)', () => {
  it('request timeout, huge headers, a malformed request line, a bad URL, a too long path, OPTIONS without Origin', async () => {
    const b = await api({}, { requestTimeoutMs: 500 })
    const port = await listen(b)
    const cases: Array<[string, string, number]> = [
      [
        'request timeout',
        'POST /jobs HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"ta',
        408,
      ],
      ['huge headers', `GET /jobs HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431],
      ['malformed request line', 'GARBAGE\r\n\r\n', 400],
      ['bad header', 'GET /jobs HTTP/1.1\r\nHost: localhost\r\nBad Header: 1\r\n\r\n', 400],
      ['bad URL encoding', 'GET /jobs/%zz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n', 400],
      [
        'a path parameter too long to route',
        `GET /jobs/${'a'.repeat(300)} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`,
        414,
      ],
    ]
    for (const [name, text, status] of cases) {
      const r = parseResponse(await rawExchange(port, text))
      expect(r.status, name).toBe(status)
      const body = expectErrorShape(r)
      expect(body.error, name).toBe(STATUS_CODES[status])
      expect(r.headers['x-content-type-options'], name).toBe('nosniff')
    }
    // OPTIONS without an Origin is no CORS preflight: an empty 204, no plain text.
    const o = parseResponse(
      await rawExchange(port, 'OPTIONS /jobs HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'),
    )
    expect(o.status).toBe(204)
    expect(o.body).toBe('')
    expect(o.headers['access-control-allow-origin']).toBeUndefined()
  })
})

describe('request framing, auth scheme, dates and batch items (item 16)', () => {
  it('an unknown Content-Encoding is a 415, writing nothing; identity is fine', async () => {
    const b = await api()
    const port = await listen(b)
    const body = '{"task_type":"echo"}'
    for (const coding of ['br', 'gzip', 'deflate, br', 'x-custom']) {
      const r = parseResponse(
        await rawExchange(
          port,
          `POST /jobs HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Encoding: ${coding}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
        ),
      )
      expect(r.status, coding).toBe(415)
      expect(expectErrorShape(r).code).toBe('UNSUPPORTED_MEDIA_TYPE')
    }
    expect(await b.keys()).toEqual([])
    const ok = parseResponse(
      await rawExchange(
        port,
        `POST /jobs HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Encoding: identity\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
      ),
    )
    expect(ok.status).toBe(201)
  })

  it('two Host (or Authorization, Content-Type) headers are a 400', async () => {
    const b = await api({ apiTokens: TOKEN_SETTING })
    const port = await listen(b)
    const auth = bearer('admin').authorization
    for (const [name, headers] of [
      ['two hosts', `Host: a\r\nHost: b\r\nAuthorization: ${auth}`],
      ['two authorizations', `Host: a\r\nAuthorization: ${auth}\r\nAuthorization: Bearer other`],
      [
        'two content types',
        `Host: a\r\nAuthorization: ${auth}\r\nContent-Type: application/json\r\nContent-Type: text/plain`,
      ],
    ]) {
      const r = parseResponse(
        await rawExchange(port, `GET /queues HTTP/1.1\r\n${headers}\r\nConnection: close\r\n\r\n`),
      )
      expect(r.status, name).toBe(400)
      expect(expectErrorShape(r).code).toBe('BAD_REQUEST')
    }
    const one = parseResponse(
      await rawExchange(
        port,
        `GET /queues HTTP/1.1\r\nHost: a\r\nAuthorization: ${auth}\r\nConnection: close\r\n\r\n`,
      ),
    )
    expect(one.status).toBe(200)
  })

  it('the auth scheme is case-insensitive (RFC 7235); another scheme is a 401', async () => {
    const b = await api({ apiTokens: TOKEN_SETTING })
    const token = bearer('read').authorization.slice('Bearer '.length)
    for (const scheme of ['Bearer', 'bearer', 'BEARER', 'bEaReR']) {
      const r = await b.app.inject({
        method: 'GET',
        url: '/queues',
        headers: { authorization: `${scheme} ${token}` },
      })
      expect(r.statusCode, scheme).toBe(200)
      const who = await b.app.inject({
        method: 'GET',
        url: '/auth/whoami',
        headers: { authorization: `${scheme} ${token}` },
      })
      expect(who.json().role, scheme).toBe('read')
    }
    for (const header of [`Basic ${token}`, `Bearer`, `Bearertoken ${token}`, token]) {
      const r = await b.app.inject({ method: 'GET', url: '/queues', headers: { authorization: header } })
      expect(r.statusCode, header).toBe(401)
    }
  })

  it('run_at must be a real time: impossible dates, loose formats and times without a zone are a 400', async () => {
    const b = await api()
    for (const run_at of [
      '2024-02-30',
      '2025-02-29',
      '2025-04-31',
      '2025-13-01',
      '2025-00-10',
      '2025-01-01T24:00:00Z',
      '2025-01-01T10:60:00Z',
      '2025-01-01T10:00:60Z',
      '2025-01-01T10:00:00',
      '2025-01-01T10:00:00+25:00',
      'Tue, 01 Jan 2025 10:00:00 GMT',
      '2025-1-1',
      '1735725600000',
      '',
    ]) {
      const r = await b.app.inject({ method: 'POST', url: '/jobs', payload: { task_type: 'echo', run_at } })
      expect(r.statusCode, run_at).toBe(400)
      expect(r.json().message, run_at).toMatch(/run_at/)
    }
    expect(await b.keys()).toEqual([])
    const { parseIsoTime } = await import('../src/queue/validate.ts')
    const at = new Date(Date.now() + 3_600_000)
    for (const [text, ms] of [
      ['2024-02-29', Date.UTC(2024, 1, 29)],
      ['2024-02-29T23:59:59Z', Date.UTC(2024, 1, 29, 23, 59, 59)],
      ['2024-02-29T23:59:59.5+01:00', Date.UTC(2024, 1, 29, 22, 59, 59, 500)],
      ['2024-03-01T00:30-00:30', Date.UTC(2024, 2, 1, 1, 0)],
      [at.toISOString(), at.getTime()],
    ] as const) {
      expect(parseIsoTime(text), text).toBe(ms)
    }
    const r = await b.app.inject({
      method: 'POST',
      url: '/jobs',
      payload: { task_type: 'echo', run_at: at.toISOString() },
    })
    expect(r.statusCode).toBe(201)
    expect(r.json()).toMatchObject({ state: 'scheduled', run_at: at.getTime() })
  })

  it('the batch validates each item on its own, malformed ones too; only a malformed envelope fails it whole', async () => {
    const b = await api()
    const r = await b.app.inject({
      method: 'POST',
      url: '/jobs/batch',
      payload: {
        jobs: [
          { task_type: 'echo' },
          { task_type: 'echo', priority: 5 },
          { task_type: 'echo', unknown_field: 1 },
          42,
          null,
          { payload: 1 },
          { task_type: 'echo', run_at: '2024-02-30' },
          { task_type: 'echo', queue: 'q2' },
        ],
      },
    })
    expect(r.statusCode).toBe(200)
    const body = r.json()
    expect(body).toMatchObject({ created: 2, rejected: 6 })
    expect(body.items.map((i: { status: number }) => i.status)).toEqual([
      201, 400, 400, 400, 400, 400, 400, 201,
    ])
    for (const i of [1, 2, 3, 4, 5, 6]) {
      expect(body.items[i].error).toMatchObject({ error: 'Bad Request', code: 'VALIDATION' })
      expect(body.items[i].index).toBe(i)
    }
    expect(body.items[1].error.message).toMatch(/priority/)
    expect(body.items[2].error.message).toMatch(/unknown_field/)
    // The envelope: not an object with a non-empty `jobs` array and nothing else -- the whole request.
    for (const payload of [
      { jobs: {} },
      { jobs: [] },
      { jobs: [{ task_type: 'echo' }], extra: 1 },
      [{ task_type: 'echo' }],
    ]) {
      const e = await b.app.inject({ method: 'POST', url: '/jobs/batch', payload })
      expect(e.statusCode, JSON.stringify(payload)).toBe(400)
      expect(e.json().code).toBe('VALIDATION')
    }
    // The OpenAPI says so.
    const spec = (await b.app.inject({ method: 'GET', url: '/openapi.json' })).json()
    expect(spec.paths['/jobs/batch'].post.description).toMatch(/malformed item/i)
  })
})
