/**
 * Every script against a real redis-server: seed → act → read back. A fake clock drives time;
 * each test has its own key prefix.
 */
import { readdirSync, readFileSync } from 'node:fs'
import type { Redis } from 'ioredis'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { DtqError } from '../src/errors.ts'
import { ID_BLOCK } from '../src/queue/ids.ts'
import { F, type Job, jobEntry, PRIORITIES } from '../src/queue/job.ts'
import { Queue } from '../src/queue/queue.ts'
import { canTransition } from '../src/queue/states.ts'
import { connectRedis } from '../src/redis/connection.ts'
import { IdAllocator } from '../src/redis/id-allocator.ts'
import { GROUP, HISTOGRAM_BUCKETS_MS, luaKeyConstants, QUEUE_KEY } from '../src/redis/keys.ts'
import { functions } from '../src/redis/scripts.ts'
import { JobStore } from '../src/redis/store.ts'
import { apiSetup } from './api-helpers.ts'
import { type Bundle, FakeClock, setup } from './helpers.ts'

let b: Bundle
let clock: FakeClock
let store: JobStore
const Q = 'default'

beforeEach(async () => {
  clock = new FakeClock()
  b = await setup({ clock })
  store = b.queue.store
})
afterEach(() => b.cleanup())

async function deliverOne(consumer = 'w1') {
  const d = await store.deliver(Q, consumer, 1)
  expect(d.jobs).toHaveLength(1)
  return d.jobs[0]!
}

async function state(id: string) {
  return (await store.getJob(Q, id))?.state
}

/** Every Lua file of the library: the scripts and the prelude's parts. */
function luaFiles(): Array<{ name: string; url: URL }> {
  const dir = new URL('../src/redis/scripts/', import.meta.url)
  return [
    ...readdirSync(dir)
      .filter((f) => f.endsWith('.lua'))
      .map((f) => ({ name: f, url: new URL(f, dir) })),
    ...readdirSync(new URL('lib/', dir)).map((f) => ({ name: `lib/${f}`, url: new URL(`lib/${f}`, dir) })),
  ]
}

describe('keys', () => {
  it('the Lua library spells keys only through the constants generated from keys.ts', () => {
    const k = store.keys
    const base = k.base(Q)
    // Keys builds every queue key from QUEUE_KEY, which the library gets as K_* constants.
    const lua = luaKeyConstants()
    for (const [name, suffix] of Object.entries(QUEUE_KEY)) {
      expect(lua).toContain(`K_${name.toUpperCase()}`)
      expect(lua).toContain(`'${suffix}'`)
    }
    expect(k.job(Q, 'X')).toBe(`${base}${QUEUE_KEY.job}X`)
    expect(k.stream(Q, 'high')).toBe(`${base}${QUEUE_KEY.stream}high`)
    expect(k.types(Q)).toBe(`${base}${QUEUE_KEY.types}`)
    expect(lua).toContain(`local GROUP = '${GROUP}'`)
    expect(lua).toContain(`local BUCKETS_MS = { ${HISTOGRAM_BUCKETS_MS.join(', ')} }`)
    // No Lua file writes a key's spelling itself.
    const spelled = new RegExp(
      `base \\.\\. '(${Object.values(QUEUE_KEY)
        .map((v) => v.replace(/:/g, ''))
        .join('|')})`,
    )
    for (const f of luaFiles()) expect(readFileSync(f.url, 'utf8'), f.name).not.toMatch(spelled)
  })

  it('the Lua scripts name job hash fields only through the F_ constants (one spelling, in job.ts)', () => {
    const long = new RegExp(`'(${Object.keys(F).join('|')})'`)
    const offending: string[] = []
    for (const { name: file, url } of luaFiles()) {
      readFileSync(url, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          const hashCall = /redis\.call\('H[A-Z]+', (jk|k_job)/.test(line)
          if (hashCall && long.test(line)) offending.push(`${file}:${i + 1}: ${line.trim()}`)
        })
    }
    expect(offending).toEqual([])
    expect(new Set(Object.values(F)).size).toBe(Object.keys(F).length) // no code used twice
  })

  it('keeps every key of a queue under its hash tag and the prefix', async () => {
    await b.queue.add('echo', { a: 1 }, { idempotency_key: 'k1' })
    await b.queue.add('echo', {}, { delay_ms: 1000 })
    const j = await deliverOne()
    await store.complete(Q, [{ id: j.id, epoch: j.epoch, result: '1' }])
    const keys = await b.keys()
    expect(keys.length).toBeGreaterThan(5)
    for (const key of keys)
      expect(
        key === `${b.prefix}:queues` ||
          key === `${b.prefix}:ids` ||
          key === `${b.prefix}:functions` ||
          key.startsWith(`${b.prefix}:loc:`) || // locator hints: single-key, no hash tag
          key.startsWith(`${b.prefix}:{${Q}}:`),
      ).toBe(true)
  })
})

describe('enqueue', () => {
  it('writes a queued job: hash, stream entry, index, counters, event', async () => {
    const { job, created } = await b.queue.add(
      'echo',
      { hello: 'world' },
      { partition_key: 'p1', max_retries: 2, timeout_ms: 500 },
    )
    expect(created).toBe(true)
    expect(job).toMatchObject({
      queue: Q,
      task_type: 'echo',
      payload: { hello: 'world' },
      state: 'queued',
      priority: 'normal',
      attempts: 0,
      max_retries: 2,
      timeout_ms: 500,
      partition_key: 'p1',
      created_at: clock.now(),
    })
    expect(await b.redis.xlen(store.keys.stream(Q, 'normal'))).toBe(1)
    expect(await b.redis.exists(store.keys.index(Q, 'queued'))).toBe(0) // the stream is the index
    expect(await b.redis.hget(store.keys.stats(Q), 'created')).toBe('1')
    const events = await b.redis.xrange(store.keys.events(Q), '-', '+')
    expect(events.map(([, f]) => f)).toEqual([['job', job.id, 'event', 'queued', 'type', 'echo']])
  })

  it('returns the original job for a repeated idempotency key and writes nothing', async () => {
    const first = await b.queue.add('echo', { n: 1 }, { idempotency_key: 'order-42' })
    const before = await b.keys()
    const events = await b.redis.xlen(store.keys.events(Q))
    const again = await b.queue.add('echo', { n: 2 }, { idempotency_key: 'order-42' })
    expect(again.created).toBe(false)
    expect(again.job.id).toBe(first.job.id)
    expect(again.job.payload).toEqual({ n: 1 })
    expect(await b.keys()).toEqual(before)
    expect(await b.redis.xlen(store.keys.events(Q))).toBe(events)
    expect(await b.redis.xlen(store.keys.stream(Q, 'normal'))).toBe(1)
    expect((await b.queue.findByIdempotencyKey('order-42'))?.id).toBe(first.job.id)
  })

  it('stores a plain job sent in 5 values (a call of plain jobs) exactly as one sent in 12', async () => {
    // (A new queue's first call ends with 'registered': left out.)
    const call = async (args: Array<string | number>) =>
      (
        (await functions().call(b.redis, 'enqueue', store.keys.base(Q), [
          clock.now(),
          100,
          3600,
          3600,
          ...args,
        ])) as unknown[]
      ).filter((x) => x !== 'registered')
    expect(await call([1, 'full-1', 'echo', '{"n":1}', 'normal', 4, 250, 0, '', '', 60, '', ''])).toEqual([1])
    expect(await call([2, 'plain-1', 'echo', '{"n":1}', 4, 250, 'plain-2', 'echo', '{"n":2}', 3, 0])).toEqual(
      [1, 1],
    )
    const hash = async (id: string) => {
      const h = await b.redis.hgetall(store.keys.job(Q, id))
      delete h[F.entry] // a stream entry id each
      return h
    }
    expect(await hash('plain-1')).toEqual(await hash('full-1'))
    expect(await b.queue.getJob('plain-2', Q)).toMatchObject({
      state: 'queued',
      priority: 'normal',
      max_retries: 3,
    })
    // Checked as the long form is; a count of values that is neither form is a bad call.
    expect(await call([1, 'plain-3', 'echo', '1', 'x', 0])).toEqual([
      'refused',
      [],
      [1, 'max_retries must be a whole number'],
    ])
    await expect(call([2, 'plain-4', 'echo', '1', 3, 0])).rejects.toThrow(/DTQ_BAD_CALL/)
    // The library sends the short form for plain jobs only, and the long one otherwise.
    const res = await b.queue.addBulk([{ task_type: 'echo' }, { task_type: 'echo', priority: 'high' }])
    expect(res.map((r) => [r.created, r.job.priority])).toEqual([
      [true, 'normal'],
      [true, 'high'],
    ])
  })

  it('treats a caller-chosen id that exists as a duplicate', async () => {
    await b.queue.add('echo', 1, { id: 'job-1' })
    const again = await b.queue.add('echo', 2, { id: 'job-1' })
    expect(again).toMatchObject({ created: false, job: { id: 'job-1', payload: 1 } })
  })

  it('numbers jobs from one counter: unique across queues and processes, a block per process and queue', async () => {
    const other = new Queue(b.redis, b.config, { clock }) // another process, as far as ids go
    const a = await b.queue.addBulk([{ task_type: 'echo' }, { task_type: 'echo', queue: 'q2' }])
    const c = await other.addBulk([{ task_type: 'echo' }, { task_type: 'echo' }])
    const d = await b.queue.add('echo')
    const ids = [...a, ...c, d].map((r) => r.job.id)
    for (const id of ids) expect(id).toMatch(/^[1-9][0-9]*$/)
    expect(new Set(ids).size).toBe(ids.length)
    // Each process numbers each queue's jobs from a block of its own: one INCRBY of ID_BLOCK
    // per process and queue so far, and each block recorded as its queue's.
    expect(ids.map(Number)).toEqual([1, ID_BLOCK + 1, 2 * ID_BLOCK + 1, 2 * ID_BLOCK + 2, 2])
    expect(await b.redis.get(`${b.prefix}:ids`)).toBe(String(3 * ID_BLOCK))
    expect(await b.redis.get(`${b.prefix}:loc:b:1`)).toBe('q2')
    expect((await b.queue.getJob(String(ID_BLOCK + 1)))?.queue).toBe('q2') // found without its queue
  })

  it('reserves more blocks when one runs out (doubling), enough for a large bulk', async () => {
    const ids = new IdAllocator(b.redis, `${b.prefix}:ids`, 3)
    expect(await ids.take(2)).toEqual(['1', '2']) // one block: 1-3
    expect(await ids.take(2)).toEqual(['4', '5']) // '3' alone was not enough (a gap, never a reuse): two blocks, 4-9
    expect(await ids.take(5)).toEqual(['10', '11', '12', '13', '14']) // four blocks, 10-21
    const [x, y] = await Promise.all([ids.take(1), ids.take(1)]) // concurrent takers share a refill
    expect(new Set([...x, ...y]).size).toBe(2)
  })

  it('never reuses a generated id when the counter went back: the refused call writes nothing, the add heals', async () => {
    const first = await b.queue.add('echo', 'original')
    await b.redis.del(`${b.prefix}:ids`) // an operator's mistake (or a partial restore)
    // The enqueue function, given a generated id that names a live job, refuses the whole call.
    const before = await b.keys()
    const args = [2, 'mine', 'echo', '1', 'normal', 3, 0, 0, '', '', 60, '', '']
    args.push(first.job.id, 'echo', '2', 'normal', 3, 0, 0, '', '', 60, '', '')
    const reply = await functions().call(b.redis, 'enqueue', store.keys.base(Q), [
      clock.now(),
      100,
      3600,
      3600,
      ...args,
    ])
    expect(reply).toEqual(['refused', [2], []])
    expect(await b.keys()).toEqual(before)
    // The store moves the counter past the live ids and adds the jobs with fresh ones.
    const warnings: object[] = []
    const fresh = new Queue(b.redis, b.config, { clock, warn: (detail) => warnings.push(detail) })
    const res = await fresh.addBulk([{ task_type: 'echo', id: 'mine' }, { task_type: 'echo' }])
    expect(res.map((r) => r.created)).toEqual([true, true])
    expect(res[1]!.job.id).not.toBe(first.job.id)
    expect(warnings).toHaveLength(1)
    expect((await b.queue.getJob(first.job.id))?.payload).toBe('original')
  })

  it('finds every generated id of a call that names a live job, past the first 1000 too (one EXISTS per 1000 ids)', async () => {
    const live = await b.queue.addBulk([{ task_type: 'echo' }, { task_type: 'echo' }])
    const before = await b.keys()
    // 2500 generated ids, two of them live jobs': at positions 3 and 2400.
    const n = 2500
    const args: Array<string | number> = [n]
    for (let j = 1; j <= n; j++) {
      const id = j === 3 ? live[0]!.job.id : j === 2400 ? live[1]!.job.id : String(90_000_000 + j)
      args.push(id, 'echo', '1', 'normal', 3, 0, 0, '', '', 60, '', '')
    }
    const call = () =>
      functions().call(b.redis, 'enqueue', store.keys.base(Q), [clock.now(), 100, 3600, 3600, ...args])
    expect(await call()).toEqual(['refused', [3, 2400], []])
    expect(await b.keys()).toEqual(before)
    // One live, in the third thousand only.
    args[1 + 2 * 12] = String(90_000_000 + 3)
    expect(await call()).toEqual(['refused', [2400], []])
    expect(await b.keys()).toEqual(before)
    // None live: all 2500 written.
    args[1 + 2399 * 12] = String(90_000_000 + 2400)
    const reply = (await call()) as unknown[]
    expect(reply).toHaveLength(n)
    expect(await b.redis.exists(store.keys.job(Q, String(90_002_400)))).toBe(1)
  })

  it('answers an add with exactly the job it stored, for every kind of field', async () => {
    const specs = [
      { task_type: 'echo' },
      { task_type: 'echo', payload: { a: [1, 'x'] }, priority: 'high' as const, max_retries: 0 },
      { task_type: 'echo', priority: 'low' as const, timeout_ms: 1500, partition_key: 'p' },
      { task_type: 'echo', delay_ms: 5000 },
      { task_type: 'echo', run_at: clock.now() + 60_000 },
      { task_type: 'echo', run_at: clock.now() - 60_000 },
      {
        task_type: 'echo',
        idempotency_key: 'stored-1',
        trace: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      },
      { task_type: 'echo', backoff: { initial_ms: 100, multiplier: 3, max_ms: 5000 }, id: 'chosen-1' },
    ]
    const res = await b.queue.addBulk(specs)
    for (const r of res) {
      expect(r.created).toBe(true)
      expect(r.job).toEqual(await b.queue.getJob(r.job.id))
    }
    expect(res.map((r) => r.job.state)).toEqual([
      'queued',
      'queued',
      'queued',
      'scheduled',
      'scheduled',
      'queued',
      'queued',
      'queued',
    ])
  })

  it('writes adds made in the same turn of the event loop in one script call (group commit)', async () => {
    // Counted on this queue's own connection (the redis-server is shared by the test files).
    // (Every command, pipelined or not, goes through sendCommand once.)
    const redis = b.queue.store.redis as Redis
    const send = redis.sendCommand.bind(redis)
    let calls = 0
    redis.sendCommand = ((...args: Parameters<typeof send>) => {
      if (String(args[0].name).toUpperCase() === 'FCALL') calls++
      return send(...args)
    }) as typeof redis.sendCommand
    await b.queue.add('echo', 0) // the function library and the queue registry are in place
    const before = calls
    const res = await Promise.all([
      b.queue.add('echo', 1),
      b.queue.add('echo', 2, { id: 'same' }),
      b.queue.add('echo', 3, { id: 'same' }),
      b.queue.addBulk([
        { task_type: 'echo', payload: 4 },
        { task_type: 'echo', payload: 5 },
      ]),
      b.queue.add('echo', 6, { idempotency_key: 'k' }),
      b.queue.add('echo', 7, { idempotency_key: 'k' }),
    ])
    expect(calls - before).toBe(1)
    const [one, same1, same2, bulk, key1, key2] = res
    expect(one).toMatchObject({ created: true, job: { payload: 1 } })
    // Within one call, as across calls: the second add of an id or key gets the first job back.
    expect(same1).toMatchObject({ created: true, job: { id: 'same', payload: 2 } })
    expect(same2).toMatchObject({ created: false, job: { id: 'same', payload: 2 } })
    expect((bulk as Array<{ job: { payload: unknown } }>).map((r) => r.job.payload)).toEqual([4, 5])
    expect(key1).toMatchObject({ created: true, job: { payload: 6 } })
    expect(key2).toMatchObject({ created: false, job: { id: (key1 as { job: { id: string } }).job.id } })
    expect(await b.queue.store.queuedCount(Q)).toBe(6)
  })

  it('bulk-adds across queues with per-item results', async () => {
    const res = await b.queue.addBulk([
      { task_type: 'echo', payload: 1 },
      { task_type: 'echo', payload: 2, queue: 'other', priority: 'high' },
      { task_type: 'echo', payload: 3, id: 'dup' },
      { task_type: 'echo', payload: 4, id: 'dup' },
    ])
    expect(res.map((r) => [r.job.queue, r.created])).toEqual([
      [Q, true],
      ['other', true],
      [Q, true],
      [Q, false],
    ])
    expect(await b.queue.queueNames()).toEqual(['default', 'other'])
  })

  it('schedules delayed jobs (delay_ms and run_at)', async () => {
    const a = await b.queue.add('echo', {}, { delay_ms: 5000 })
    const at = new Date(clock.now() + 60_000).toISOString()
    const c = await b.queue.add('echo', {}, { run_at: at })
    expect(a.job).toMatchObject({ state: 'scheduled', run_at: clock.now() + 5000 })
    expect(c.job).toMatchObject({ state: 'scheduled', run_at: clock.now() + 60_000 })
    expect(await b.redis.zcard(store.keys.delayed(Q))).toBe(2)
    expect(await b.redis.xlen(store.keys.stream(Q, 'normal'))).toBe(0)
    // A time in the past runs now.
    const now = await b.queue.add('echo', {}, { run_at: clock.now() - 1000 })
    expect(now.job.state).toBe('queued')
  })

  it.each([
    [{ task_type: 'bad type!' }, /task_type/],
    [{ task_type: 'echo', queue: 'a{b}' }, /queue/],
    [{ task_type: 'echo', queue: 'a:b' }, /queue/],
    [{ task_type: 'echo', priority: 'urgent' }, /priority/],
    [{ task_type: 'echo', max_retries: -1 }, /max_retries/],
    [{ task_type: 'echo', max_retries: 1.5 }, /max_retries/],
    [{ task_type: 'echo', timeout_ms: 'soon' }, /timeout_ms/],
    [{ task_type: 'echo', delay_ms: -5 }, /delay_ms/],
    [{ task_type: 'echo', delay_ms: 5, run_at: 1 }, /not both/],
    [{ task_type: 'echo', run_at: 'tomorrow-ish' }, /run_at/],
    [{ task_type: 'echo', id: 'has space' }, /id/],
    [{ task_type: 'echo', id: '42' }, /id must not be all digits/], // DTQ's own ids are
    [{ task_type: 'echo', idempotency_key: 'a\u0000b' }, /idempotency_key/],
    [{ task_type: 'echo', idempotency_key: 'k'.repeat(300) }, /idempotency_key/],
    [{ task_type: 'echo', payload: 'x'.repeat(2_000_000) }, /payload is \d+ bytes/],
    [{ task_type: 'echo', backoff: { multiplier: 0 } }, /backoff.multiplier/],
    [{ task_type: 'echo', delay: 5000 }, /delay is not a known field/], // BullMQ's name
    [{ task_type: 'echo', backoff: { type: 'fixed', delay: 100 } }, /backoff.type is not a known field/],
  ])('rejects %j with a clear error and writes nothing', async (spec, msg) => {
    const err = await b.queue.addBulk([spec as never]).catch((e) => e)
    expect(err).toBeInstanceOf(DtqError)
    expect(err.code).toBe('VALIDATION')
    expect(err.message).toMatch(msg)
    expect(await b.keys()).toEqual([])
  })

  it('writes nothing from a bulk with one bad item', async () => {
    const err = await b.queue
      .addBulk([{ task_type: 'echo' }, { task_type: 'echo', priority: 'x' as never }])
      .catch((e) => e)
    expect(err.message).toMatch(/jobs\[1\]: priority/)
    expect(await b.keys()).toEqual([])
  })

  it('rejects a deeply nested payload', async () => {
    let deep: unknown = 1
    for (let i = 0; i < 100; i++) deep = { d: deep }
    await expect(b.queue.add('echo', deep)).rejects.toThrow(/nested deeper/)
    expect(await b.keys()).toEqual([])
  })
})

describe('stream id order in the prelude (id_ge)', () => {
  // flush() decides which acknowledged entries the trim left (and the newest one) by comparing
  // ids as strings; the function itself, taken from the prelude, against numeric order.
  const lib = readFileSync(new URL('../src/redis/scripts/lib/2-batch.lua', import.meta.url), 'utf8')
  const fn = /^local function id_ge\(a, b, bp\)\n[\s\S]*?\n^end$/m.exec(lib)?.[0]

  it('agrees with numeric order on ids of every shape, with and without the prefix given', async () => {
    expect(fn).toBeDefined()
    const ids = ['0-0', '0-1', '9-9', '9-10', '10-0', '10-9', '10-10', '99-100', '100-99', '100-100']
    const rand = (n: number) => String(Math.floor(Math.random() * n))
    for (let k = 0; k < 40; k++) ids.push(`${rand(10 ** (1 + (k % 13)))}-${rand(10 ** (1 + (k % 4)))}`)
    ids.push('1796110690487-9', '1796110690487-10', '1796110690488-0', '999999999999-99999')
    const pairs: string[] = []
    for (const a of ids) for (const c of ids) pairs.push(a, c)
    const num = (id: string) => id.split('-').map(BigInt) as [bigint, bigint]
    const ge = (a: string, c: string) => {
      const [am, as] = num(a)
      const [cm, cs] = num(c)
      return am > cm || (am === cm && as >= cs)
    }
    const script = `${fn}
      local out = {}
      for i = 1, #ARGV, 2 do
        local b = ARGV[i + 1]
        local bp = string.sub(b, 1, string.find(b, '-', 1, true))
        out[#out + 1] = (id_ge(ARGV[i], b) and 1 or 0) + (id_ge(ARGV[i], b, bp) and 2 or 0)
      end
      return out`
    const got = (await b.redis.eval(script, 0, ...pairs)) as number[]
    const wrong: string[] = []
    for (let i = 0; i < got.length; i++) {
      const [a, c] = [pairs[2 * i]!, pairs[2 * i + 1]!]
      const want = ge(a, c) ? 3 : 0
      if (got[i] !== want) wrong.push(`${a} >= ${c}: ${got[i]}, want ${want}`)
    }
    expect(wrong).toEqual([])
    expect(got.length).toBe(ids.length ** 2)
  })
})

describe('deliver', () => {
  it('serves high before normal before low, in batches of up to count', async () => {
    await b.queue.add('echo', 'low', { priority: 'low' })
    await b.queue.add('echo', 'n1')
    await b.queue.add('echo', 'h1', { priority: 'high' })
    await b.queue.add('echo', 'n2')
    const d = await store.deliver(Q, 'w1', 3)
    expect(d.jobs.map((j) => j.payload)).toEqual(['h1', 'n1', 'n2'])
    expect(d.tails).toEqual([])
    const rest = await store.deliver(Q, 'w1', 10)
    expect(rest.jobs.map((j) => j.payload)).toEqual(['low'])
    expect(rest.tails).toHaveLength(3)
  })

  it('hands the handler its payload byte for byte (unicode, escapes, control characters)', async () => {
    const payload = { s: 'é ✓ 😀 "q" / \\ \u0001 </script>', n: 1.5e300, a: [null, true, false, ''] }
    const { job } = await b.queue.add('echo', payload, { priority: 'high', timeout_ms: 1234 })
    const got = await deliverOne()
    expect(got).toMatchObject({
      id: job.id,
      payload,
      priority: 'high',
      timeout_ms: 1234,
      attempts: 1,
      epoch: 1,
    })
  })

  it('starts the job: active, attempt counted, fresh epoch, worker recorded', async () => {
    const { job } = await b.queue.add('echo', {})
    clock.advance(10)
    const j = await deliverOne('w1')
    expect(j).toMatchObject({
      id: job.id,
      state: 'active',
      attempts: 1,
      epoch: 1,
      worker: 'w1',
      started_at: clock.now(),
    })
    // Active jobs have no index: the stream's pending entries are it.
    expect(await b.redis.exists(store.keys.index(Q, 'active'))).toBe(0)
    const pending = (await b.redis.xpending(store.keys.stream(Q, 'normal'), GROUP)) as [number]
    expect(pending[0]).toBe(1)
    expect((await store.queueStats(Q)).counts).toMatchObject({ active: 1, queued: 0 })
  })

  it('returns nothing and the stream tails when empty', async () => {
    const d = await store.deliver(Q, 'w1', 5)
    expect(d).toEqual({ jobs: [], entries: [], tails: ['0-0', '0-0', '0-0'] })
  })

  it('drops (and counts) an entry whose job is gone', async () => {
    const { job } = await b.queue.add('echo', {})
    await b.redis.del(store.keys.job(Q, job.id))
    const d = await store.deliver(Q, 'w1', 5)
    expect(d.jobs).toEqual([])
    expect(await b.redis.xlen(store.keys.stream(Q, 'normal'))).toBe(0)
    expect(await b.redis.hget(store.keys.stats(Q), 'orphan_entries')).toBe('1')
  })
})

describe('complete', () => {
  it('stores the result, acks and deletes the entry, keeps the job in the completed index', async () => {
    await b.queue.add('echo', {})
    const j = await deliverOne()
    clock.advance(25)
    expect(await store.complete(Q, [{ id: j.id, epoch: j.epoch, result: '{"ok":true}' }])).toEqual([1])
    const done = await store.getJob(Q, j.id)
    expect(done).toMatchObject({ state: 'completed', result: { ok: true }, finished_at: clock.now() })
    expect(await b.redis.xlen(store.keys.stream(Q, 'normal'))).toBe(0)
    expect(((await b.redis.xpending(store.keys.stream(Q, 'normal'), GROUP)) as [number])[0]).toBe(0)
    // No TTL: the completed index (scored by finish time) is what retention goes by.
    expect(await b.redis.ttl(store.keys.job(Q, j.id))).toBe(-1)
    expect(await b.redis.zscore(store.keys.index(Q, 'completed'), j.id)).toBe(String(clock.now()))
    const stats = await b.redis.hgetall(store.keys.stats(Q))
    expect(stats).toMatchObject({ completed: '1', 'completed|echo': '1', 'created|echo': '1' })
    expect(stats['h|run|sum_ms']).toBe('25') // started 25 ms before it completed
    expect(stats['h|run|3']).toBe('1') // the 25 ms bucket
    expect(stats['h|wait|1']).toBe('1') // delivered at once
    const tp = await store.throughput([Q], 2)
    expect(tp[1]?.completed).toBe(1)
  })

  it('rejects a stale owner (fenced) and counts it', async () => {
    await b.queue.add('echo', {})
    const j = await deliverOne('w1')
    // The lease lapses; another worker's reclaimer takes it back, and w2 gets it.
    const entry = (await b.redis.hget(store.keys.job(Q, j.id), F.entry))!
    await b.redis.xclaim(store.keys.stream(Q, 'normal'), GROUP, 'w1', 0, entry, 'IDLE', 60_000, 'JUSTID')
    const r = await store.reclaim(Q, 'w2', 'normal', 1000, 5)
    expect(r.requeued).toBe(1)
    const j2 = await deliverOne('w2')
    expect(j2.epoch).toBe(j.epoch + 2)
    expect(await store.complete(Q, [{ id: j.id, epoch: j.epoch, result: '"stale"' }])).toEqual([0])
    expect(await state(j.id)).toBe('active')
    expect(await b.redis.hget(store.keys.stats(Q), 'stale_writes')).toBe('1')
    expect(await store.complete(Q, [{ id: j2.id, epoch: j2.epoch, result: '"fresh"' }])).toEqual([1])
    expect((await store.getJob(Q, j.id))?.result).toBe('fresh')
  })

  it('a run of a job deleted while it ran never completes the job made anew under its id (4 rounds)', async () => {
    // The new job's first delivery has epoch 1 again: only the entry tells the incarnations apart.
    for (let round = 0; round < 4; round++) {
      const id = `again-${round}`
      await b.queue.add('echo', { v: 'old' }, { id })
      const [old] = (await store.deliver(Q, 'w1', 1)).jobs
      const oldEntry = (await b.redis.hget(store.keys.job(Q, id), F.entry))!
      await b.queue.deleteJob(id, Q)
      await b.queue.add('echo', { v: 'new' }, { id })
      const [fresh] = (await store.deliver(Q, 'w2', 1)).jobs
      expect(fresh!.epoch).toBe(old!.epoch) // the collision the entry resolves
      const facts = {
        entry: oldEntry,
        priority: old!.priority,
        task_type: old!.task_type,
        started_at: old!.started_at,
        attempts: old!.attempts,
      }
      expect(await store.complete(Q, [{ id, epoch: old!.epoch, result: '"old"', delivery: facts }])).toEqual([
        0,
      ])
      expect(await state(id)).toBe('active')
      const freshEntry = (await b.redis.hget(store.keys.job(Q, id), F.entry))!
      expect(
        await store.complete(Q, [
          { id, epoch: fresh!.epoch, result: '"new"', delivery: { ...facts, entry: freshEntry } },
        ]),
      ).toEqual([1])
      expect((await store.getJob(Q, id))?.result).toBe('new')
    }
    expect(await b.redis.hget(store.keys.stats(Q), 'stale_writes')).toBe('4')
  })

  it("fail, snooze and a type's pause by a run of a job deleted while it ran leave the job made anew alone (4 rounds each, + control)", async () => {
    // The same collision as complete's: the new job's first delivery has epoch 1 again.
    const err = { message: 'boom', worker: 'w1', attempt: 1 }
    const writes: Record<string, (id: string, epoch: number, entry?: string) => Promise<string>> = {
      fail: (id, epoch, entry) => store.fail(Q, id, epoch, 'retry', err, 1000, entry),
      snooze: (id, epoch, entry) => store.snooze(Q, id, epoch, 1000, 0, entry),
      pause: (id, epoch, entry) => store.pauseType(Q, id, epoch, 1000, entry),
    }
    for (const [kind, write] of Object.entries(writes)) {
      for (let round = 0; round < 4; round++) {
        const id = `again-${kind}-${round}`
        await b.queue.add(`t-${kind}-${round}`, { v: 'old' }, { id })
        const [old] = (await store.deliver(Q, 'w1', 1)).jobs
        const oldEntry = (await b.redis.hget(store.keys.job(Q, id), F.entry))!
        await b.queue.deleteJob(id, Q)
        await b.queue.add(`t-${kind}-${round}`, { v: 'new' }, { id })
        const [fresh] = (await store.deliver(Q, 'w2', 1)).jobs
        expect(fresh!.epoch).toBe(old!.epoch)
        expect(await write(id, old!.epoch, oldEntry)).toBe('stale')
        expect(await state(id)).toBe('active')
        // The new run's own write, with its entry, holds.
        const freshEntry = (await b.redis.hget(store.keys.job(Q, id), F.entry))!
        expect(await write(id, fresh!.epoch, freshEntry)).not.toBe('stale')
      }
    }
    expect(await b.redis.hget(store.keys.stats(Q), 'stale_writes')).toBe('12')
    // Control: a fail that does not say its entry is fooled.
    await b.queue.add('echo', { v: 'old' }, { id: 'again-control' })
    const [old] = (await store.deliver(Q, 'w1', 1)).jobs
    await b.queue.deleteJob('again-control', Q)
    await b.queue.add('echo', { v: 'new' }, { id: 'again-control' })
    await store.deliver(Q, 'w2', 1)
    expect(await writes.fail!('again-control', old!.epoch)).toBe('retrying')
  })

  it('control: a completion that does not say its entry is fooled by the same collision', async () => {
    await b.queue.add('echo', { v: 'old' }, { id: 'again' })
    const [old] = (await store.deliver(Q, 'w1', 1)).jobs
    await b.queue.deleteJob('again', Q)
    await b.queue.add('echo', { v: 'new' }, { id: 'again' })
    await store.deliver(Q, 'w2', 1)
    expect(await store.complete(Q, [{ id: 'again', epoch: old!.epoch, result: '"old"' }])).toEqual([1])
    expect((await store.getJob(Q, 'again'))?.result).toBe('old')
  })

  it("takes the delivery's facts from the owner once the fence holds, recording all as if read (ADR 0038)", async () => {
    // High priority and on their second attempt (reclaimed once): the entry, the priority stream,
    // the type, started_at and attempts all matter to what completing them records.
    await b.queue.addBulk([
      { task_type: 'a', priority: 'high' },
      { task_type: 'b', priority: 'high' },
      { task_type: 'c', priority: 'high' },
    ])
    const first = await store.deliver(Q, 'w1', 3)
    for (const entry of first.entries)
      await b.redis.xclaim(store.keys.stream(Q, 'high'), GROUP, 'w1', 0, entry, 'IDLE', 60_000, 'JUSTID')
    expect((await store.reclaim(Q, 'w2', 'high', 1000, 5)).requeued).toBe(3)
    const d = await store.deliver(Q, 'w2', 3)
    const [a, bb, c] = d.jobs
    expect(d.jobs.map((j) => [j.task_type, j.attempts])).toEqual([
      ['a', 2],
      ['b', 2],
      ['c', 2],
    ])
    expect(d.entries).toEqual(
      await Promise.all(d.jobs.map((j) => b.redis.hget(store.keys.job(Q, j.id), F.entry))),
    )
    const facts = (i: number) => {
      const j = d.jobs[i]!
      return {
        entry: d.entries[i]!,
        priority: j.priority,
        task_type: j.task_type,
        started_at: j.started_at,
        attempts: j.attempts,
      }
    }
    // A stale owner's facts change nothing: the fence is read from the hash either way.
    expect(
      await store.complete(Q, [
        {
          id: a!.id,
          epoch: first.jobs[0]!.epoch,
          result: '0',
          delivery: { ...facts(0), entry: first.entries[0]! },
        },
      ]),
    ).toEqual([0])
    clock.advance(25)
    // a with its delivery's facts, b without (read from the hash).
    expect(
      await store.complete(Q, [
        { id: a!.id, epoch: a!.epoch, result: '1', delivery: facts(0) },
        { id: bb!.id, epoch: bb!.epoch, result: '1' },
      ]),
    ).toEqual([1, 1])
    const stats = await b.redis.hgetall(store.keys.stats(Q))
    expect(stats).toMatchObject({
      completed: '2',
      'completed|a': '1',
      'completed|b': '1',
      'retry_ok|a': '1',
      'retry_ok|b': '1',
      'h|run|sum_ms': '50',
      stale_writes: '1',
    })
    // Acknowledged on the high stream: only c's delivery is pending.
    const pending = (await b.redis.xpending(store.keys.stream(Q, 'high'), GROUP, '-', '+', 10)) as Array<
      [string]
    >
    expect(pending.map((p) => p[0])).toEqual([d.entries[2]])
    for (const j of [a!, bb!])
      expect(await store.getJob(Q, j.id)).toMatchObject({ state: 'completed', result: 1 })
    // Control: the facts are what the function went by for a -- a started_at said 1 s earlier
    // than stored is taken as said (the fence is what makes the owner's word safe, not a check).
    expect(
      await store.complete(Q, [
        {
          id: c!.id,
          epoch: c!.epoch,
          result: '1',
          delivery: { ...facts(2), started_at: c!.started_at! - 1000 },
        },
      ]),
    ).toEqual([1])
    expect(await b.redis.hget(store.keys.stats(Q), 'h|run|sum_ms')).toBe('1075')
  })

  it('fetch records finished jobs and starts the next ones in one call', async () => {
    await b.queue.addBulk([{ task_type: 'echo' }, { task_type: 'echo' }, { task_type: 'echo' }])
    const first = await deliverOne()
    const r = await store.fetch(Q, 'w1', 5, [
      { id: first.id, epoch: first.epoch, result: '1' },
      { id: first.id, epoch: 99, result: '2' }, // stale: fenced out
    ])
    expect(r.completed).toEqual([1, 0])
    expect(r.jobs.map((j) => j.state)).toEqual(['active', 'active'])
    expect(r.jobs[0]).toMatchObject({ task_type: 'echo', attempts: 1, epoch: 1, worker: 'w1' })
    expect(r.tails).toHaveLength(3) // came up short: tails for a blocking wait
    expect((await store.getJob(Q, first.id))?.result).toBe(1)
    expect(await b.redis.xlen(store.keys.stream(Q, 'normal'))).toBe(2) // the two now pending
  })

  it('deletes acknowledged entries (bulk trim, one by one behind a long job) and never an undelivered one', async () => {
    const s = store.keys.stream(Q, 'normal')
    await b.queue.addBulk(Array.from({ length: 6 }, () => ({ task_type: 'echo' })))
    const d = await store.deliver(Q, 'w1', 5) // the sixth stays undelivered
    const [longJob, ...rest] = d.jobs
    // The oldest entry stays pending (a long job): the others go one by one.
    expect(
      await store.complete(
        Q,
        rest.map((j) => ({ id: j.id, epoch: j.epoch, result: '1' })),
      ),
    ).toEqual([1, 1, 1, 1])
    expect(await b.redis.xlen(s)).toBe(2) // the long job's entry and the undelivered one
    // The long job ends: nothing pending, the head is trimmed, the undelivered entry stays.
    expect(await store.complete(Q, [{ id: longJob!.id, epoch: longJob!.epoch, result: '1' }])).toEqual([1])
    expect(await b.redis.xlen(s)).toBe(1)
    expect((await store.queueStats(Q)).counts.queued).toBe(1)
    const last = await deliverOne()
    expect(await store.complete(Q, [{ id: last.id, epoch: last.epoch, result: '1' }])).toEqual([1])
    expect(await b.redis.xlen(s)).toBe(0)
  })

  it('removes completed jobs past retention, with their logs, as later jobs complete', async () => {
    await b.queue.addBulk([{ task_type: 'echo' }, { task_type: 'echo' }])
    const [quiet, chatty] = (await store.deliver(Q, 'w1', 2)).jobs
    await store.progress(Q, chatty!.id, chatty!.epoch, null, 'hello')
    await store.complete(
      Q,
      [quiet!, chatty!].map((j) => ({ id: j.id, epoch: j.epoch, result: '1' })),
    )
    // Just inside retention: a later completion removes nothing.
    clock.advance(b.config.completedRetentionS * 1000)
    await b.queue.add('echo', {})
    const next = await deliverOne()
    await store.complete(Q, [{ id: next.id, epoch: next.epoch, result: '1' }])
    expect(await store.getJob(Q, chatty!.id)).toMatchObject({ state: 'completed' })
    expect(await b.redis.llen(store.keys.logs(Q, chatty!.id))).toBe(1)
    // Past it: the next completion removes the two (hash, logs, index entry), not the newer one.
    clock.advance(1)
    await b.queue.add('echo', {})
    const last = await deliverOne()
    await store.complete(Q, [{ id: last.id, epoch: last.epoch, result: '1' }])
    for (const j of [quiet!, chatty!]) {
      expect(await b.redis.exists(store.keys.job(Q, j.id), store.keys.logs(Q, j.id))).toBe(0)
      expect(await b.redis.zscore(store.keys.index(Q, 'completed'), j.id)).toBeNull()
    }
    expect(await store.getJob(Q, next.id)).toMatchObject({ state: 'completed' })
    expect(await b.redis.zcard(store.keys.index(Q, 'completed'))).toBe(2)
  })

  it('prunes no more than twice what a call completes; the janitor prunes the rest', async () => {
    await b.queue.addBulk(Array.from({ length: 6 }, () => ({ task_type: 'echo' })))
    const first = (await store.deliver(Q, 'w1', 6)).jobs
    await store.complete(
      Q,
      first.map((j) => ({ id: j.id, epoch: j.epoch, result: '1' })),
    )
    clock.advance(b.config.completedRetentionS * 1000 + 1)
    await b.queue.add('echo', {})
    const one = await deliverOne()
    await store.complete(Q, [{ id: one.id, epoch: one.epoch, result: '1' }])
    // One completion prunes two of the six old jobs.
    expect(await b.redis.zcard(store.keys.index(Q, 'completed'))).toBe(5)
    expect(await store.pruneCompleted(Q, 2)).toBe(4) // batches of 2 until none is left
    expect(await b.redis.zcard(store.keys.index(Q, 'completed'))).toBe(1)
    for (const j of first) expect(await store.getJob(Q, j.id)).toBeNull()
  })

  it('prunes an index entry without deleting a job that reused its id', async () => {
    // An entry left by an older version, whose job expired and whose id was then reused.
    await b.queue.add('echo', {}, { id: 'reused' })
    await b.redis.zadd(
      store.keys.index(Q, 'completed'),
      clock.now() - b.config.completedRetentionS * 1000 - 1,
      'reused',
    )
    expect(await store.pruneCompleted(Q)).toBe(1)
    expect(await store.getJob(Q, 'reused')).toMatchObject({ state: 'queued' })
    expect(await b.redis.zscore(store.keys.index(Q, 'completed'), 'reused')).toBeNull()
  })

  it('deletes a completed job at once when retention is 0', async () => {
    const zero = await setup({ clock, config: { completedRetentionS: 0 } })
    const zs = zero.queue.store
    try {
      await zero.queue.add('echo', {})
      const j = (await zs.deliver(Q, 'w1', 1)).jobs[0]!
      expect(await zs.complete(Q, [{ id: j.id, epoch: j.epoch, result: '1' }])).toEqual([1])
      expect(await zs.getJob(Q, j.id)).toBeNull()
      expect(await zero.redis.zcard(zs.keys.index(Q, 'completed'))).toBe(0)
    } finally {
      await zero.cleanup()
    }
  })

  it('completes a batch, each item fenced on its own', async () => {
    await b.queue.addBulk([{ task_type: 'echo' }, { task_type: 'echo' }, { task_type: 'echo' }])
    const d = await store.deliver(Q, 'w1', 3)
    const items = d.jobs.map((j) => ({ id: j.id, epoch: j.epoch, result: 'null' }))
    items[1]!.epoch = 99
    expect(await store.complete(Q, items)).toEqual([1, 0, 1])
  })
})

describe('fail', () => {
  const err = { message: 'boom', stack: 'Error: boom\n  at x', worker: 'w1', attempt: 1 }

  it('retries with the given delay while retries remain, then dead-letters', async () => {
    const { job } = await b.queue.add('echo', {}, { max_retries: 1 })
    let j = await deliverOne()
    expect(await store.fail(Q, j.id, j.epoch, 'retry', err, 1500)).toBe('retrying')
    let cur = await store.getJob(Q, job.id)
    expect(cur).toMatchObject({ state: 'retrying', failures: 1, error: 'boom', run_at: clock.now() + 1500 })
    expect(cur?.errors).toEqual([{ ...err, at: clock.now() }])
    expect(await b.redis.zscore(store.keys.delayed(Q), job.id)).toBe(String(clock.now() + 1500))

    clock.advance(1500)
    expect((await store.promote(Q)).moved).toBe(1)
    j = await deliverOne()
    expect(j.attempts).toBe(2)
    expect(await store.fail(Q, j.id, j.epoch, 'retry', { ...err, message: 'boom 2', attempt: 2 }, 1500)).toBe(
      'failed',
    )
    cur = await store.getJob(Q, job.id)
    expect(cur).toMatchObject({ state: 'failed', failures: 2, error: 'boom 2' })
    expect(cur?.errors.map((e) => e.message)).toEqual(['boom', 'boom 2'])
    const dlq = await b.redis.xrange(store.keys.dlq(Q), '-', '+')
    expect(dlq).toHaveLength(1)
    expect(dlq[0]![1]).toEqual([
      'id',
      job.id,
      'type',
      'echo',
      'error',
      'boom 2',
      'attempts',
      '2',
      'failed_at',
      String(clock.now()),
    ])
    expect(await b.redis.ttl(store.keys.job(Q, job.id))).toBeGreaterThan(b.config.failedRetentionS - 5)
    expect(await b.redis.xlen(store.keys.stream(Q, 'normal'))).toBe(0)
  })

  it('dead-letters a permanent failure at once', async () => {
    await b.queue.add('echo', {}, { max_retries: 5 })
    const j = await deliverOne()
    expect(await store.fail(Q, j.id, j.epoch, 'permanent', err, 0)).toBe('failed')
    expect(await state(j.id)).toBe('failed')
  })

  it('is fenced like complete', async () => {
    await b.queue.add('echo', {})
    const j = await deliverOne()
    expect(await store.fail(Q, j.id, j.epoch + 1, 'retry', err, 0)).toBe('stale')
    expect(await state(j.id)).toBe('active')
  })

  it('keeps a bounded error history', async () => {
    await b.queue.add('echo', {}, { max_retries: 40 })
    for (let i = 0; i < 30; i++) {
      const j = await deliverOne()
      await store.fail(Q, j.id, j.epoch, 'retry', { ...err, message: `e${i}` }, 0)
      await store.promote(Q)
    }
    const j = (await b.queue.listJobs()).items[0]!
    expect(j.errors).toHaveLength(25)
    expect(j.errors[24]?.message).toBe('e29')
  })
})

describe('promote', () => {
  it('moves only due jobs and reports the next due time', async () => {
    await b.queue.add('echo', 'soon', { delay_ms: 1000 })
    await b.queue.add('echo', 'later', { delay_ms: 5000, priority: 'high' })
    expect(await store.promote(Q)).toEqual({ moved: 0, nextDue: clock.now() + 1000 })
    clock.advance(1000)
    expect(await store.promote(Q)).toEqual({ moved: 1, nextDue: clock.now() + 4000 })
    clock.advance(4000)
    expect(await store.promote(Q)).toEqual({ moved: 1, nextDue: null })
    const d = await store.deliver(Q, 'w', 5)
    expect(d.jobs.map((j) => j.payload)).toEqual(['later', 'soon'])
  })

  it('moves each due job exactly once with three schedulers racing', async () => {
    const n = 600
    await b.queue.addBulk(
      Array.from({ length: n }, (_, i) => ({ task_type: 'echo', payload: i, delay_ms: 1 + (i % 50) })),
    )
    clock.advance(100)
    // Three schedulers, each with its own connection, racing over the same due jobs.
    const schedulers = await Promise.all(
      [0, 1, 2].map(async () => {
        const r = b.redis.duplicate()
        await connectRedis(r)
        return { r, store: new JobStore(r, { ...store.opts, clock }) }
      }),
    )
    const results = await Promise.all(
      schedulers.map((s) => Promise.all(Array.from({ length: 5 }, () => s.store.promote(Q, 37)))),
    )
    for (const s of schedulers) s.r.disconnect()
    let moved = results.flat().reduce((a, r) => a + r.moved, 0)
    while (true) {
      const r = await store.promote(Q, 500)
      moved += r.moved
      if (!r.moved) break
    }
    expect(moved).toBe(n)
    expect(await b.redis.xlen(store.keys.stream(Q, 'normal'))).toBe(n)
    expect(await b.redis.zcard(store.keys.delayed(Q))).toBe(0)
    const d = await store.deliver(Q, 'w', n + 10)
    expect(new Set(d.jobs.map((j) => j.payload)).size).toBe(n)
  })
})

describe('the job hash of a new job (ADR 0037)', () => {
  const stream = () => store.keys.stream(Q, 'normal')
  const hash = (id: string) => b.redis.hgetall(store.keys.job(Q, id))
  const entries = async () => (await b.redis.xrange(stream(), '-', '+')).map(([e, f]) => ({ e, id: f[1]! }))

  it('stores the entry id as its sequence after created_at and no max_retries of 3; a start stores it whole', async () => {
    const added = await b.queue.addBulk([
      { task_type: 'echo' },
      { task_type: 'echo', max_retries: 5 },
      { task_type: 'echo', max_retries: 0 },
    ])
    const ids = added.map((a) => a.job.id)
    const inStream = await entries()
    expect(inStream.map((x) => x.id)).toEqual(ids)
    for (const [k, id] of ids.entries()) {
      const h = await hash(id)
      // The caller's now is the entry's time: '<created_at>-<seq>', the hash keeps '<seq>'.
      expect(h[F.created_at]).toBe(String(clock.now()))
      expect(h[F.entry]).toMatch(/^\d+$/)
      expect(jobEntry(h)).toBe(inStream[k]!.e)
      expect(inStream[k]!.e.startsWith(`${clock.now()}-`)).toBe(true)
    }
    expect((await hash(ids[0]!))[F.max_retries]).toBeUndefined()
    expect((await hash(ids[1]!))[F.max_retries]).toBe('5')
    expect((await hash(ids[2]!))[F.max_retries]).toBe('0')
    expect((await b.queue.getJob(ids[0]!, Q))?.max_retries).toBe(3)
    expect((await b.queue.getJob(ids[1]!, Q))?.max_retries).toBe(5)
    expect((await b.queue.getJob(ids[2]!, Q))?.max_retries).toBe(0)
    // An absent max_retries retries three times, then dead-letters.
    const [j] = (await store.deliver(Q, 'w1', 1)).jobs
    expect(j!.id).toBe(ids[0])
    const h = await hash(ids[0]!)
    expect(h[F.entry]).toBe(inStream[0]!.e)
    const pending = (await b.redis.xpending(stream(), GROUP, '-', '+', 10)) as Array<[string]>
    expect(pending.map((p) => p[0])).toEqual([inStream[0]!.e])
    let epoch = j!.epoch
    for (let attempt = 1; attempt <= 4; attempt++) {
      const r = await store.fail(Q, ids[0]!, epoch, 'retry', { message: 'x', worker: 'w1', attempt }, 0)
      expect(r).toBe(attempt <= 3 ? 'retrying' : 'failed')
      if (attempt <= 3) {
        await store.promote(Q, 100)
        const next = (await store.deliver(Q, 'w1', 3)).jobs.find((x) => x.id === ids[0])!
        epoch = next.epoch
      }
    }
  })

  it("a now behind the stream's top: the entry gets the next id (stored whole), ids only grow, every path finds it", async () => {
    const ahead = (await b.queue.add('echo', {})).job.id
    const top = (await entries())[0]!.e
    // Another caller's clock ahead: an entry at now + 60 s.
    await b.redis.xadd(stream(), `${clock.now() + 60_000}-0`, 'id', 'foreign')
    const behind = (await b.queue.add('echo', {})).job.id
    const h = await hash(behind)
    // '*': Redis's time or the top's next id, whichever is later -- stored whole.
    expect(h[F.entry]).toContain('-')
    expect(jobEntry(h)).toBe(h[F.entry])
    expect((await entries()).map((x) => x.id)).toEqual([ahead, 'foreign', behind])
    expect((await entries())[0]!.e).toBe(top)
    // Both forms are found by a priority change and a cancel (the old entry gone, no orphan).
    await b.queue.setPriority(ahead, 'high', Q)
    await b.queue.cancel(behind, Q)
    expect((await entries()).map((x) => x.id)).toEqual(['foreign'])
    expect(await b.redis.xlen(store.keys.stream(Q, 'high'))).toBe(1)
    expect(await b.redis.hget(store.keys.stats(Q), 'orphan_entries')).toBeNull()
  })

  it.each(['cancel', 'delete', 'set_priority', 'empty', 'deadline'] as const)(
    "%s finds a queued job's entry through its sequence (control: an en that does not decode to it leaves the entry)",
    async (op) => {
      for (const control of [false, true]) {
        await b.redis.del(stream(), store.keys.stream(Q, 'high'))
        const opts = op === 'deadline' ? { start_by: clock.now() + 10 } : {}
        const { job } = await b.queue.add('echo', { n: 1 }, opts)
        expect((await hash(job.id))[F.entry]).toMatch(/^\d+$/)
        // The control: created_at moved by 1 ms, so '<created_at>-<seq>' names no entry.
        if (control) await b.redis.hincrby(store.keys.job(Q, job.id), F.created_at, 1)
        if (op === 'cancel') await b.queue.cancel(job.id, Q)
        else if (op === 'delete') await b.queue.deleteJob(job.id, Q)
        else if (op === 'set_priority') await b.queue.setPriority(job.id, 'high', Q)
        else if (op === 'empty') await b.queue.emptyQueue(Q)
        else {
          clock.advance(20)
          await store.promote(Q) // its sweep ends the jobs whose start deadline passed
        }
        const what = `${op}${control ? ' (control)' : ''}`
        if (op === 'empty') {
          // empty walks the stream: an entry its job does not name is dropped as an orphan, the job left.
          expect(await b.redis.exists(store.keys.job(Q, job.id)), what).toBe(control ? 1 : 0)
        } else {
          expect(
            (await entries()).filter((x) => x.id === job.id),
            what,
          ).toHaveLength(control ? 1 : 0)
        }
      }
    },
  )

  it("a debounce finds a queued holder's entry through its sequence (and whole) and takes it out of the stream (control: created_at moved by 1 ms: the entry is left)", async () => {
    // A debounced job is made scheduled (it waits its window), so the queued holder a debounce
    // meets in the short form is a job added under the same key in another mode (the key's hash
    // does not depend on the mode, ADR 0021): here a throttled one.
    for (const control of [false, true]) {
      const key = `k-${control}`
      const what = control ? 'control' : 'debounce'
      const mine = async (id: string) => (await entries()).filter((x) => x.id === id).map((x) => x.e)
      const { job } = await b.queue.add(
        'echo',
        { v: 1 },
        { dedup: { mode: 'throttle', ttl_ms: 60_000, key } },
      )
      expect(job.state).toBe('queued')
      expect((await hash(job.id))[F.entry]).toMatch(/^\d+$/)
      if (control) await b.redis.hincrby(store.keys.job(Q, job.id), F.created_at, 1)
      const debounce = (v: number) =>
        b.queue.add('echo', { v }, { dedup: { mode: 'debounce', ttl_ms: 1000, key } })
      expect(await debounce(2)).toMatchObject({
        created: false,
        job: { id: job.id, state: 'scheduled', payload: { v: 2 } },
      })
      expect(await mine(job.id), what).toHaveLength(control ? 1 : 0)
      if (!control) {
        // Made ready early (run now) its entry is stored whole: the next debounce finds that too.
        await b.queue.runNow(job.id, Q)
        expect((await hash(job.id))[F.entry]).toContain('-')
        expect(await mine(job.id)).toEqual([jobEntry(await hash(job.id))])
        expect((await debounce(3)).job).toMatchObject({ id: job.id, state: 'scheduled', payload: { v: 3 } })
        expect(await mine(job.id)).toHaveLength(0)
      }
      // Due: exactly one entry (the control: the old one too), the one its hash names.
      clock.advance(1000)
      expect((await store.promote(Q)).moved).toBe(1)
      const left = await mine(job.id)
      expect(left, what).toHaveLength(control ? 2 : 1)
      expect(left.at(-1)).toBe(jobEntry(await hash(job.id)))
    }
  })

  it('the job list and GET /jobs paging find each queued job through its sequence: every one exactly once, in order, at page sizes 1-5 both ways (control: created_at moved by 1 ms: missed)', async () => {
    const api = await apiSetup({}, { clock })
    try {
      const q = api.queue
      // Queued jobs in two priority streams, several in one millisecond (ties broken by id), and
      // one delivered (active: not among the queued, still among all).
      for (let ms = 0; ms < 4; ms++) {
        clock.advance(1)
        await q.addBulk([
          { task_type: 'echo', payload: { ms, k: 0 } },
          { task_type: 'echo', payload: { ms, k: 1 }, priority: 'high' },
          { task_type: 'echo', payload: { ms, k: 2 } },
        ])
      }
      const [active] = (await q.store.deliver(Q, 'w1', 1)).jobs
      const all = (await q.listJobs({ queue: Q, limit: 100 })).items
      expect(all).toHaveLength(12)
      const queued = all.filter((j) => j.id !== active!.id)
      for (const j of queued) {
        const h = await api.redis.hgetall(q.store.keys.job(Q, j.id))
        expect(h[F.entry], j.id).toMatch(/^\d+$/) // the short form
        expect(j.state).toBe('queued')
      }
      // Newest first by the entry's time (its created_at), then by id bytewise.
      const desc = (x: Job, y: Job) => y.created_at - x.created_at || (x.id < y.id ? 1 : x.id > y.id ? -1 : 0)
      const want = queued.sort(desc).map((j) => j.id)
      const viaList = async (limit: number, order: 'asc' | 'desc', state?: 'queued') => {
        const out: string[] = []
        let cursor: string | undefined
        do {
          const page = await q.listJobs({ queue: Q, state, limit, order, cursor })
          out.push(...page.items.map((j) => j.id))
          cursor = page.next_cursor ?? undefined
        } while (cursor)
        return out
      }
      const viaHttp = async (qs: string) => {
        const out: string[] = []
        let cursor: string | null = null
        do {
          const url: string = `/jobs?${qs}${cursor ? `&cursor=${cursor}` : ''}`
          const res = await api.app.inject({ method: 'GET', url })
          expect(res.statusCode, res.body).toBe(200)
          const page = res.json() as { items: Job[]; next_cursor: string | null }
          out.push(...page.items.map((j) => j.id))
          cursor = page.next_cursor
        } while (cursor)
        return out
      }
      for (const limit of [1, 2, 3, 5]) {
        expect(await viaList(limit, 'desc', 'queued'), `list, limit ${limit}`).toEqual(want)
        expect(await viaList(limit, 'asc', 'queued'), `list asc, limit ${limit}`).toEqual([...want].reverse())
        expect(await viaHttp(`queue=${Q}&status=queued&limit=${limit}`), `GET, limit ${limit}`).toEqual(want)
        expect(
          await viaHttp(`queue=${Q}&status=queued&order=asc&limit=${limit}`),
          `GET asc, limit ${limit}`,
        ).toEqual([...want].reverse())
        const every = await viaHttp(`queue=${Q}&limit=${limit}`)
        expect(
          every.filter((id) => id !== active!.id),
          `GET all, limit ${limit}`,
        ).toEqual(want)
        expect(new Set(every).size).toBe(12)
      }
      // The control: one job's created_at moved by 1 ms, so '<created_at>-<seq>' names no entry.
      const victim = want[5]!
      await api.redis.hincrby(q.store.keys.job(Q, victim), F.created_at, 1)
      expect(await viaList(2, 'desc', 'queued')).toEqual(want.filter((id) => id !== victim))
      expect(await viaHttp(`queue=${Q}&status=queued&limit=2`)).toEqual(want.filter((id) => id !== victim))
    } finally {
      await api.cleanup()
    }
  })
})

describe('reclaim', () => {
  async function expire(id: string) {
    // Make the entry look idle for long (as if its worker died).
    const h = await b.redis.hmget(store.keys.job(Q, id), F.entry, F.priority, F.worker)
    await b.redis.xclaim(
      store.keys.stream(Q, (h[1] ?? 'normal') as never),
      GROUP,
      h[2]!,
      0,
      h[0]!,
      'IDLE',
      60_000,
      'JUSTID',
    )
  }

  it('leaves leased jobs alone and requeues lapsed ones with a new epoch', async () => {
    await b.queue.addBulk([
      { task_type: 'echo', payload: 'a' },
      { task_type: 'echo', payload: 'b' },
    ])
    const d = await store.deliver(Q, 'w1', 2)
    expect((await store.reclaim(Q, 'w2', 'normal', 1000, 5)).requeued).toBe(0)
    await expire(d.jobs[0]!.id)
    const r = await store.reclaim(Q, 'w2', 'normal', 1000, 5)
    expect(r).toMatchObject({ cursor: '0-0', requeued: 1, poisoned: 0, lost: 0 })
    const j = await store.getJob(Q, d.jobs[0]!.id)
    expect(j).toMatchObject({ state: 'queued', stalls: 1, epoch: 2 })
    expect(await state(d.jobs[1]!.id)).toBe('active')
    const again = await deliverOne('w2')
    expect(again.id).toBe(d.jobs[0]!.id)
  })

  it('iterates its cursor over many entries', async () => {
    await b.queue.addBulk(Array.from({ length: 25 }, () => ({ task_type: 'echo' })))
    const d = await store.deliver(Q, 'w1', 25)
    for (const j of d.jobs) await expire(j.id)
    let cursor = '0-0'
    let requeued = 0
    let pages = 0
    do {
      const r = await store.reclaim(Q, 'w2', 'normal', 1000, 5, cursor, 10)
      cursor = r.cursor
      requeued += r.requeued
      pages++
    } while (cursor !== '0-0')
    expect(requeued).toBe(25)
    expect(pages).toBeGreaterThanOrEqual(3)
  })

  it('dead-letters a poison job after MAX_DELIVERIES crashes', async () => {
    const { job } = await b.queue.add('echo', {})
    for (let i = 1; i <= 3; i++) {
      const j = await deliverOne(`w${i}`)
      await expire(j.id)
      const r = await store.reclaim(Q, 'reaper', 'normal', 1000, 2)
      if (i <= 2) expect(r.requeued).toBe(1)
      else expect(r.poisoned).toBe(1)
    }
    const j = await store.getJob(Q, job.id)
    expect(j).toMatchObject({ state: 'failed', stalls: 3 })
    expect(j?.error).toMatch(/poison/)
    expect(await b.redis.xlen(store.keys.dlq(Q))).toBe(1)
  })

  it('cancels a lapsed job whose cancel was requested', async () => {
    await b.queue.add('echo', {})
    const j = await deliverOne()
    expect((await b.queue.cancel(j.id)).outcome).toBe('requested')
    await expire(j.id)
    expect((await store.reclaim(Q, 'w2', 'normal', 1000, 5)).cancelled).toBe(1)
    expect(await state(j.id)).toBe('cancelled')
  })

  it('counts entries deleted from the stream while pending (lost) and clears them', async () => {
    await b.queue.add('echo', {})
    const j = await deliverOne()
    const h = await b.redis.hmget(store.keys.job(Q, j.id), F.entry)
    await expire(j.id)
    await b.redis.xdel(store.keys.stream(Q, 'normal'), h[0]!)
    const r = await store.reclaim(Q, 'w2', 'normal', 1000, 5)
    expect(r.lost).toBe(1)
    expect(await b.redis.hget(store.keys.stats(Q), 'lost_entries')).toBe('1')
    expect(((await b.redis.xpending(store.keys.stream(Q, 'normal'), GROUP)) as [number])[0]).toBe(0)
  })
})

describe('heartbeat', () => {
  it('renews the lease of owned jobs (idle time reset) and reports lost ones', async () => {
    await b.queue.addBulk([{ task_type: 'echo' }, { task_type: 'echo' }])
    const d = await store.deliver(Q, 'w1', 2)
    const [a, c] = d.jobs
    const stream = store.keys.stream(Q, 'normal')
    const entryA = (await b.redis.hget(store.keys.job(Q, a!.id), F.entry))!
    await b.redis.xclaim(stream, GROUP, 'w1', 0, entryA, 'IDLE', 60_000, 'JUSTID')
    const res = await store.heartbeat(Q, 'w1', [
      { id: a!.id, epoch: a!.epoch },
      { id: c!.id, epoch: c!.epoch + 1 },
    ])
    expect(res).toEqual([1, 0])
    const pending = (await b.redis.xpending(stream, GROUP, 'IDLE', 0, '-', '+', 10)) as Array<
      [string, string, number, number]
    >
    const pa = pending.find((p) => p[0] === entryA)!
    expect(pa[2]).toBeLessThan(1000)
    expect(pa[3]).toBe(1) // delivery count not raised
    expect(await store.heartbeat(Q, 'someone-else', [{ id: a!.id, epoch: a!.epoch }])).toEqual([0])
  })

  it('tells the owner about a cancel request', async () => {
    await b.queue.add('echo', {})
    const j = await deliverOne()
    await b.queue.cancel(j.id)
    expect(await store.heartbeat(Q, 'w1', [{ id: j.id, epoch: j.epoch }])).toEqual([2])
  })
})

describe('hand back', () => {
  it('requeues owned jobs at once and fences the old owner out', async () => {
    await b.queue.add('echo', {})
    const j = await deliverOne()
    expect(
      await store.handBack(Q, [
        { id: j.id, epoch: j.epoch },
        { id: 'nope', epoch: 1 },
      ]),
    ).toEqual([1, 0])
    expect(await store.getJob(Q, j.id)).toMatchObject({ state: 'queued', epoch: j.epoch + 1 })
    expect(await store.complete(Q, [{ id: j.id, epoch: j.epoch, result: '1' }])).toEqual([0])
    const again = await deliverOne('w2')
    expect(again.id).toBe(j.id)
  })
})

describe('cancel', () => {
  it.each(['queued', 'scheduled', 'retrying'] as const)('cancels a %s job at once', async (st) => {
    const { job } = await b.queue.add('echo', {}, st === 'scheduled' ? { delay_ms: 1000 } : {})
    if (st === 'retrying') {
      const j = await deliverOne()
      await store.fail(Q, j.id, j.epoch, 'retry', { message: 'x', worker: 'w', attempt: 1 }, 1000)
    }
    expect(await state(job.id)).toBe(st)
    const r = await b.queue.cancel(job.id)
    expect(r.outcome).toBe('cancelled')
    expect(r.job.state).toBe('cancelled')
    expect(canTransition(st, 'cancel', 'cancelled')).toBe(true)
    expect(await b.redis.xlen(store.keys.stream(Q, 'normal'))).toBe(0)
    expect(await b.redis.zcard(store.keys.delayed(Q))).toBe(0)
    expect(await store.deliver(Q, 'w', 5)).toMatchObject({ jobs: [] })
  })

  it('asks the worker of an active job and publishes the request', async () => {
    await b.queue.add('echo', {})
    const j = await deliverOne()
    const sub = b.redis.duplicate()
    await connectRedis(sub)
    await sub.subscribe(store.keys.cancelChannel())
    const got = new Promise((r) => sub.on('message', (_c, m) => r(m)))
    expect((await b.queue.cancel(j.id)).outcome).toBe('requested')
    expect(await got).toBe(`${Q} ${j.id}`)
    sub.disconnect()
    expect(
      await store.fail(Q, j.id, j.epoch, 'cancel', { message: 'cancelled', worker: 'w1', attempt: 1 }, 0),
    ).toBe('cancelled')
    expect(await state(j.id)).toBe('cancelled')
  })

  it('answers 409-style errors for finished jobs and 404 for unknown ones', async () => {
    await b.queue.add('echo', {})
    const j = await deliverOne()
    await store.complete(Q, [{ id: j.id, epoch: j.epoch, result: '1' }])
    await expect(b.queue.cancel(j.id)).rejects.toMatchObject({ code: 'INVALID_STATE' })
    await expect(b.queue.cancel('missing')).rejects.toMatchObject({ code: 'NOT_FOUND' })
    await expect(b.queue.cancel('bad id!')).rejects.toMatchObject({ code: 'VALIDATION' })
  })
})

describe('dead-letter queue', () => {
  async function deadLetter(type: string, message: string) {
    await b.queue.add(type, {}, { max_retries: 0 })
    const j = await deliverOne()
    await store.fail(Q, j.id, j.epoch, 'retry', { message, worker: 'w', attempt: 1 }, 0)
    return j.id
  }

  it('lists with filters on type, error text and age', async () => {
    const a = await deadLetter('email', 'SMTP timeout')
    clock.advance(3 * 86_400_000)
    const c = await deadLetter('resize', 'out of memory')
    const ids = async (q: Parameters<typeof b.queue.listDlq>[0]) =>
      (await b.queue.listDlq(q)).items.map((j) => j.id)
    expect(await ids({})).toEqual([c, a])
    expect(await ids({ task_type: 'email' })).toEqual([a])
    expect(await ids({ error_contains: 'MEMORY' })).toEqual([c])
    expect(await ids({ older_than_ms: 2 * 86_400_000 })).toEqual([a])
    expect((await b.queue.listDlq({})).items[0]).toMatchObject({ state: 'failed', failed_at: clock.now() })
  })

  it('retries one: out of the DLQ, fresh retries, no expiry', async () => {
    const id = await deadLetter('email', 'down')
    const j = await b.queue.retry(id)
    expect(j).toMatchObject({ state: 'queued', failures: 0 })
    expect(await b.redis.ttl(store.keys.job(Q, id))).toBe(-1)
    expect(await b.redis.xlen(store.keys.dlq(Q))).toBe(0)
    expect((await deliverOne()).id).toBe(id)
    await expect(b.queue.retry(id)).rejects.toMatchObject({ code: 'INVALID_STATE' })
  })

  it('retries many at a rate', async () => {
    for (let i = 0; i < 6; i++) await deadLetter('email', `e${i}`)
    const t0 = Date.now()
    expect(await b.queue.retryDlqMany({ task_type: 'email' }, { ratePerSec: 20 })).toBe(6)
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250) // 6 jobs at 20/s take at least 0.3 s (minus the first)
    expect(await b.redis.xlen(store.keys.dlq(Q))).toBe(0)
  })

  it('deletes one and purges by age', async () => {
    const a = await deadLetter('x', 'e')
    clock.advance(10 * 86_400_000)
    const c = await deadLetter('x', 'e')
    const d = await deadLetter('x', 'e')
    await b.queue.deleteDlq(d)
    expect(await b.redis.exists(store.keys.job(Q, d))).toBe(0)
    expect(await b.queue.purgeDlq(7)).toBe(1)
    expect(await b.redis.exists(store.keys.job(Q, a))).toBe(0)
    expect((await b.queue.listDlq({})).items.map((j) => j.id)).toEqual([c])
    expect(await b.queue.purgeDlq(0)).toBe(1)
    expect(await b.redis.xlen(store.keys.dlq(Q))).toBe(0)
    await expect(b.queue.purgeDlq(-1)).rejects.toMatchObject({ code: 'VALIDATION' })
  })
})

describe('listing, stats and housekeeping', () => {
  it('pages newest first with a cursor, filtered by state and type', async () => {
    for (let i = 0; i < 7; i++) {
      clock.advance(1)
      await b.queue.add(i % 2 ? 'odd' : 'even', i)
    }
    const seen: unknown[] = []
    let cursor: string | undefined
    do {
      const page = await b.queue.listJobs({ limit: 3, cursor })
      seen.push(...page.items.map((j) => j.payload))
      cursor = page.next_cursor ?? undefined
    } while (cursor)
    expect(seen).toEqual([6, 5, 4, 3, 2, 1, 0])
    expect((await b.queue.listJobs({ task_type: 'odd' })).items.map((j) => j.payload)).toEqual([5, 3, 1])
    await deliverOne()
    expect((await b.queue.listJobs({ state: 'active' })).items.map((j) => j.payload)).toEqual([0])
    // Queued jobs are listed from the stream: the delivered one is not among them.
    expect((await b.queue.listJobs({ state: 'queued' })).items.map((j) => j.payload)).toEqual([
      6, 5, 4, 3, 2, 1,
    ])
    expect((await b.queue.listJobs({ state: 'queued', limit: 4 })).items).toHaveLength(4)
    expect(await store.queuedCount(Q)).toBe(6)
    // Active jobs come from the delivered part of the stream, whatever waits behind them.
    await b.queue.addBulk(Array.from({ length: 1500 }, (_, i) => ({ task_type: 'even', payload: 100 + i })))
    await deliverOne()
    const active = await b.queue.listJobs({ state: 'active', limit: 1 })
    expect(active.items.map((j) => j.payload)).toEqual([1])
    const next = await b.queue.listJobs({
      state: 'active',
      limit: 1,
      cursor: active.next_cursor ?? undefined,
    })
    expect(next.items.map((j) => j.payload)).toEqual([0])
    expect(next.next_cursor).toBeNull()
    expect((await store.queueStats(Q)).counts).toMatchObject({ active: 2, queued: 1505 })
    await expect(b.queue.listJobs({ state: 'weird' as never })).rejects.toMatchObject({ code: 'VALIDATION' })
    await expect(b.queue.listJobs({ limit: 0 })).rejects.toMatchObject({ code: 'VALIDATION' })
  })

  it('reports counts per state, depth, pending, lag and the oldest waiting job', async () => {
    await b.queue.addBulk([
      { task_type: 'echo', priority: 'high' },
      { task_type: 'echo' },
      { task_type: 'echo' },
      { task_type: 'echo', delay_ms: 100 },
    ])
    await store.deliver(Q, 'w', 2)
    clock.advance(5000)
    const s = await store.queueStats(Q)
    expect(s.counts).toMatchObject({ queued: 1, active: 2, scheduled: 1, completed: 0 })
    expect(s.streams.high).toMatchObject({ length: 1, pending: 1, lag: 0 })
    expect(s.streams.normal).toMatchObject({ length: 2, pending: 1, lag: 1 })
    expect(s.delayed).toBe(1)
    expect(s.totals.created).toBe(4)
    expect(s.oldest_waiting_ms).toBeGreaterThanOrEqual(0)
    await b.queue.pauseQueue(Q)
    expect((await store.queueStats(Q)).paused).toBe(true)
    await b.queue.resumeQueue(Q)
    expect((await store.queueStats(Q)).paused).toBe(false)
  })

  it('keeps the events stream trimmed to about EVENTS_MAX_LEN events, one entry per call and kind', async () => {
    const small = await setup({ clock, config: { eventsMaxLen: 100 } })
    const events = async () => {
      const rows = await small.redis.xrange(small.queue.store.keys.events(Q), '-', '+')
      return rows.map(([, f]) => f[1]!.split(' ').length)
    }
    try {
      // One call adding 50 jobs writes one entry holding their 50 ids.
      const added = await small.queue.addBulk(Array.from({ length: 50 }, () => ({ task_type: 'echo' })))
      const [entry] = await small.redis.xrange(small.queue.store.keys.events(Q), '-', '+')
      expect(entry![1]).toEqual([
        'job',
        added.map((a) => a.job.id).join(' '),
        'event',
        'queued',
        'type',
        'echo',
      ])
      // Many small calls, then big ones, then small ones again: never far above 100 events.
      for (let i = 0; i < 300; i++) await small.queue.add('echo')
      expect((await events()).reduce((a, b) => a + b)).toBeLessThanOrEqual(300)
      for (let i = 0; i < 5; i++)
        await small.queue.addBulk(Array.from({ length: 40 }, () => ({ task_type: 'echo' })))
      expect((await events()).reduce((a, b) => a + b)).toBeLessThanOrEqual(300)
      for (let i = 0; i < 300; i++) await small.queue.add('echo')
      expect((await events()).reduce((a, b) => a + b)).toBeLessThanOrEqual(300)
    } finally {
      await small.cleanup()
    }
  })

  it('sweeps completed jobs past retention, old DLQ entries and idle dead consumers', async () => {
    await b.queue.add('echo', {})
    const j = await deliverOne('dead-worker')
    await store.complete(Q, [{ id: j.id, epoch: j.epoch, result: '1' }])
    clock.advance(b.config.completedRetentionS * 1000 + 1)
    const r = await store.sweep(Q, new Set(), 0)
    expect(r.completedJobs).toBe(1)
    expect(await store.getJob(Q, j.id)).toBeNull()
    expect(r.consumers).toBeGreaterThanOrEqual(1)
    expect(await b.redis.zcard(store.keys.index(Q, 'completed'))).toBe(0)
    const consumers = (await b.redis.xinfo('CONSUMERS', store.keys.stream(Q, 'normal'), GROUP)) as unknown[]
    expect(consumers).toHaveLength(0)
  })

  it('never removes a consumer that still holds pending entries', async () => {
    await b.queue.add('echo', {})
    await deliverOne('busy-worker')
    // Removed from the high stream it polled empty, kept where it holds a pending entry.
    expect(await store.removeConsumer(Q, 'busy-worker')).toBe(1)
    expect(
      (await b.redis.xinfo('CONSUMERS', store.keys.stream(Q, 'normal'), GROUP)) as unknown[],
    ).toHaveLength(1)
    expect((await b.redis.xinfo('CONSUMERS', store.keys.stream(Q, 'high'), GROUP)) as unknown[]).toHaveLength(
      0,
    )
  })

  it('has a stream per priority, each with the group', async () => {
    await store.ensureGroups(Q)
    for (const p of PRIORITIES) {
      const groups = (await b.redis.xinfo('GROUPS', store.keys.stream(Q, p))) as unknown[]
      expect(groups).toHaveLength(1)
    }
  })
})
