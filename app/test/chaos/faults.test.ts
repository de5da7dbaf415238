/**
 * Fault injection over real processes (docs/reliability.md). Each test prints its counts as
 * `[chaos] <name>: {...}`. CHAOS_FULL=1 (pnpm test:chaos) runs longer and adds the slow faults.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { decodeJob, F } from '../../src/queue/job.ts'
import { connectRedis, createRedis } from '../../src/redis/connection.ts'
import { GROUP } from '../../src/redis/keys.ts'
import { waitFor } from '../helpers.ts'
import { FULL, LinkProxy, LoadGenerator, Q, RedisServer, report, System, verdict } from './harness.ts'

const cleanups: Array<() => unknown> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

async function setupSystem(
  env: Record<string, string> = {},
  redisOpts: Parameters<typeof RedisServer.start>[0] = {},
) {
  const redis = await RedisServer.start(redisOpts)
  cleanups.push(() => redis.stop())
  const sys = new System(redis.url, env)
  cleanups.push(() => sys.stop())
  await sys.connect()
  return { redis, sys }
}

/** A system whose processes reach Redis through a LinkProxy the test controls (its checker does not). */
async function setupProxiedSystem() {
  const redis = await RedisServer.start()
  cleanups.push(() => redis.stop())
  const proxy = new LinkProxy(redis.port)
  await proxy.listen()
  cleanups.push(() => proxy.close())
  const sys = new System(proxy.url)
  cleanups.push(() => sys.stop())
  await sys.connect(redis.url)
  return { redis, proxy, sys }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const ledgerJob = (ms: number) => () => ({ task_type: 'ledger', payload: { ms } })

describe('worker faults', () => {
  it('kill -9 workers repeatedly under HTTP load: lost 0, duplicates bounded', async () => {
    const { sys } = await setupSystem()
    const { url } = await sys.api()
    sys.worker()
    let victim = sys.worker()
    const load = new LoadGenerator(url, ledgerJob(10), 150)
    const running = load.run()
    const kills = FULL ? 10 : 3
    for (let k = 0; k < kills; k++) {
      await sleep(1500)
      victim.child.kill('SIGKILL')
      await victim.exited
      victim = sys.worker()
    }
    load.stop()
    await running
    await load.resolveIndeterminate()
    await sys.drained()
    const v = verdict(load.outcomes, await sys.completedIds(), sys.executions())
    const inv = await sys.invariants()
    report('kill -9 workers', { ...v, kills, ...inv })
    expect(v.accepted).toBeGreaterThan(300)
    expect(v).toMatchObject({ lost: 0, unexpected: 0 })
    expect(v.duplicated).toBeLessThanOrEqual(kills * 8) // at most what the killed worker held
    expect(inv).toMatchObject({ pending: 0, delayed: 0, lost_entries: 0 })
  })

  it('rolling SIGTERM of workers under load: lost 0, duplicated 0, each exits 0', async () => {
    const { sys } = await setupSystem()
    const { url } = await sys.api()
    const workers = [sys.worker(), sys.worker()]
    const live = () => sys.redis.zcard(sys.keys.workers())
    await waitFor(async () => (await live()) === 2, { what: 'two workers' })
    const load = new LoadGenerator(url, ledgerJob(20), 150)
    const running = load.run()
    for (let round = 0; round < (FULL ? 6 : 2); round++) {
      for (let i = 0; i < workers.length; i++) {
        await sleep(1000)
        const w = workers[i]!
        w.child.kill('SIGTERM')
        expect(await w.exited).toBe(0)
        workers[i] = sys.worker()
        await waitFor(async () => (await live()) === 2, { what: 'the replacement worker' })
      }
    }
    load.stop()
    await running
    await load.resolveIndeterminate()
    await sys.drained()
    const v = verdict(load.outcomes, await sys.completedIds(), sys.executions())
    const inv = await sys.invariants()
    report('SIGTERM workers', { ...v, ...inv })
    expect(v).toMatchObject({ lost: 0, duplicated: 0, unexpected: 0 })
    expect(inv).toMatchObject({ pending: 0, stalled: 0, lost_entries: 0 })
  })

  for (const control of [false, true]) {
    it(`${control ? 'NEGATIVE CONTROL (no hand-back): caught' : 'SIGTERM past the deadline hands jobs back: redelivered at once, nothing stalls'}`, async () => {
      const { sys } = await setupSystem({
        SHUTDOWN_TIMEOUT_MS: '200',
        ...(control ? { DTQ_UNSAFE: 'no-handback' } : {}),
      })
      const { url } = await sys.api()
      const first = sys.worker()
      await waitFor(async () => (await sys.redis.zcard(sys.keys.workers())) >= 1, { what: 'worker up' })
      const load = new LoadGenerator(url, ledgerJob(2500), 50)
      const running = load.run()
      await sleep(1000)
      load.stop()
      await running
      // Active jobs are the ready stream's pending entries.
      const active = async () =>
        ((await sys.redis.xpending(sys.keys.stream(Q, 'normal'), GROUP)) as [number])[0]
      await waitFor(async () => (await active()) >= 4, {
        what: 'jobs running',
      })
      first.child.kill('SIGTERM')
      await first.exited
      sys.worker()
      await sys.drained()
      const inv = await sys.invariants()
      const v = verdict(load.outcomes, await sys.completedIds(), sys.executions())
      report(control ? 'no hand-back (control)' : 'hand-back', { ...v, ...inv })
      expect(v.lost).toBe(0)
      if (control)
        expect(
          inv.stalled,
          'without hand-back the jobs wait for CLAIM_IDLE_MS and count as stalled',
        ).toBeGreaterThan(0)
      else expect(inv.stalled).toBe(0)
    })
  }

  for (const control of [false, true]) {
    it(`${control ? 'NEGATIVE CONTROL (no fencing): caught' : 'an owner frozen past its lease cannot complete the job once it wakes (fenced)'}`, async () => {
      const { sys } = await setupSystem({
        WORKER_CONCURRENCY: '1',
        ...(control ? { DTQ_UNSAFE: 'no-fencing' } : {}),
      })
      const stale = sys.worker()
      await waitFor(async () => (await sys.redis.zcard(sys.keys.workers())) >= 1)
      const api = await sys.api()
      const r = await fetch(`${api.url}/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ task_type: 'ledger', payload: { ms: 4000 }, job_id: 'stuck-1' }),
      })
      expect(r.status).toBe(201)
      await waitFor(async () => (await sys.redis.hget(sys.keys.job(Q, 'stuck-1'), F.state)) === 'active')
      // Freeze the owner (all its threads: no lease renewal); another worker takes the job over.
      stale.child.kill('SIGSTOP')
      sys.worker()
      await waitFor(async () => Number(await sys.redis.hget(sys.keys.job(Q, 'stuck-1'), F.stalls)) >= 1, {
        timeoutMs: 20_000,
      })
      await waitFor(async () => (await sys.redis.hget(sys.keys.job(Q, 'stuck-1'), F.state)) === 'active')
      await sleep(300)
      // The stale owner wakes up while the new owner is still running the job.
      stale.child.kill('SIGCONT')
      await sys.drained(30_000).catch(() => {})
      await sleep(4500)
      const job = decodeJob(Q, await sys.redis.hgetall(sys.keys.job(Q, 'stuck-1')))
      const resultPid = (job.result as { pid?: number } | null)?.pid
      // The recorded result must come from the worker that held the job when it completed.
      const consistent = job.state === 'completed' && job.worker?.includes(`-${resultPid}-`)
      const inv = await sys.invariants()
      const runs = sys.executions().get('stuck-1') ?? 0
      report(control ? 'no fencing (control)' : 'fencing', {
        state: job.state,
        worker: job.worker,
        resultPid,
        runs,
        ...inv,
      })
      if (control) expect(consistent, 'without fencing the stale owner overwrites the live one').toBe(false)
      else {
        expect(consistent).toBe(true)
        expect(runs).toBeLessThanOrEqual(2) // duplicates ≤ 1 per stalled job
      }
    })
  }
})

describe('scheduler faults', () => {
  // By default one worker (the maintenance leader, ADR 0013) moves due jobs for the fleet; with
  // DTQ_UNSAFE=no-leader every worker does, as before: the ZREM gate must hold either way.
  const cases = [
    {
      env: '',
      title:
        'the maintenance leader killed -9 while moving due jobs: another takes over, each job moved once',
    },
    {
      env: 'no-leader',
      title: 'three schedulers racing (no leader), one killed: each due job is moved exactly once',
    },
    {
      env: 'no-leader,no-delayed-gating',
      title: 'NEGATIVE CONTROL (no ZREM gate, racing schedulers): caught',
    },
  ]
  for (const { env, title } of cases) {
    const control = env.includes('no-delayed-gating')
    it(title, async () => {
      const { sys } = await setupSystem(env ? { DTQ_UNSAFE: env } : {})
      const { url } = await sys.api()
      const n = FULL ? 3000 : 600
      const jobs = Array.from({ length: n }, (_, i) => ({
        task_type: 'ledger',
        payload: { ms: 1 },
        delay_ms: 1500 + (i % 300),
        job_id: `d-${i}`,
      }))
      for (let i = 0; i < n; i += 500) {
        const post = () =>
          fetch(`${url}/jobs/batch`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ jobs: jobs.slice(i, i + 500) }),
          })
        // A loaded machine can shed a batch (503/429, retryable: the job ids make a repeat create
        // only what is missing); anything else fails here, with the answer in the message.
        let r = await post()
        for (let t = 0; t < 50 && (r.status === 503 || r.status === 429); t++) {
          await sleep(200)
          r = await post()
        }
        const body = await r.text()
        expect(r.ok, `POST /jobs/batch: ${r.status} ${body}`).toBe(true)
        expect((JSON.parse(body) as { created: number }).created).toBeLessThanOrEqual(Math.min(500, n - i))
      }
      const ws = [sys.worker(), sys.worker(), sys.worker()]
      await sleep(1600)
      // Kill the one that moves jobs (with no leader: any of them).
      const leader = await sys.redis.get(sys.keys.leader())
      const victim = (leader && ws.find((w) => leader.includes(`-${w.child.pid}-`))) || ws[0]!
      victim.child.kill('SIGKILL')
      // (Ungated moves leave jobs in limbo: the control only needs a few seconds to show it.)
      if (control) await sleep(6000)
      else await sys.drained()
      const executions = sys.executions()
      const inv = await sys.invariants()
      const dup = [...executions.values()].filter((c) => c > 1).length
      report(`delayed move race (${env || 'leader'})`, {
        jobs: n,
        executed: executions.size,
        dup,
        killedLeader: !!leader && leader.includes(`-${victim.child.pid}-`),
        ...inv,
      })
      if (control) expect(inv.orphan_entries + dup, 'ungated schedulers move jobs twice').toBeGreaterThan(0)
      else {
        expect(executions.size).toBe(n)
        expect(inv.orphan_entries).toBe(0)
        expect(dup).toBeLessThanOrEqual(8) // only what the killed worker held may run twice
        expect(inv.delayed).toBe(0)
      }
    })
  }
})

describe('Redis faults', () => {
  it('kill -9 Redis (AOF everysec) under load and restart: no acknowledged job lost; 503s are fast', async () => {
    const { redis, sys } = await setupSystem()
    const { url } = await sys.api()
    sys.worker()
    sys.worker()
    const load = new LoadGenerator(url, ledgerJob(10), 150)
    const running = load.run()
    await sleep(2000)
    await redis.kill9()
    const t0 = Date.now()
    const during = await fetch(`${url}/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ task_type: 'ledger' }),
    })
    const answeredMs = Date.now() - t0
    await sleep(1500)
    await redis.restart()
    await sleep(FULL ? 5000 : 2000)
    load.stop()
    await running
    await sys.connect()
    await load.resolveIndeterminate()
    await sys.drained()
    const v = verdict(load.outcomes, await sys.completedIds(), sys.executions())
    const inv = await sys.invariants()
    report('kill -9 Redis', { ...v, statusDuringOutage: during.status, answeredMs, ...inv })
    expect(during.status).toBe(503)
    expect(answeredMs).toBeLessThan(1500)
    expect(v).toMatchObject({ lost: 0, unexpected: 0 })
    expect(v.duplicated).toBeLessThanOrEqual(16)
    expect(inv).toMatchObject({ pending: 0, lost_entries: 0 })
    for (const p of sys.procs) {
      if (p.child.exitCode !== null) console.log('PROC OUT', p.output().slice(-4000))
      expect(p.child.exitCode).toBeNull()
    }
  })

  for (const pauseMs of FULL ? [5000, 40_000] : [5000]) {
    it(`SIGSTOP Redis for ${pauseMs / 1000} s under load: nobody exits, 503 only during the pause, lost 0`, async () => {
      const { redis, sys } = await setupSystem()
      const { url } = await sys.api()
      sys.worker()
      sys.worker()
      const load = new LoadGenerator(url, ledgerJob(10), 100)
      const running = load.run()
      await sleep(1500)
      redis.proc.kill('SIGSTOP')
      await sleep(300)
      const t0 = Date.now()
      const during = await fetch(`${url}/queues`)
      const answeredMs = Date.now() - t0
      await sleep(pauseMs)
      redis.proc.kill('SIGCONT')
      await waitFor(async () => (await fetch(`${url}/health/ready`)).status === 200, { timeoutMs: 15_000 })
      await sleep(1500)
      load.stop()
      await running
      await load.resolveIndeterminate()
      await sys.drained()
      const v = verdict(load.outcomes, await sys.completedIds(), sys.executions())
      const inv = await sys.invariants()
      report(`SIGSTOP Redis ${pauseMs} ms`, { ...v, statusDuringPause: during.status, answeredMs, ...inv })
      expect(during.status).toBe(503)
      expect(answeredMs).toBeLessThan(2500)
      expect(v).toMatchObject({ lost: 0, unexpected: 0 })
      expect(v.duplicated).toBeLessThanOrEqual(16)
      for (const p of sys.procs) {
        if (p.child.exitCode !== null) console.log('PROC OUT', p.output().slice(-4000))
        expect(p.child.exitCode).toBeNull()
      }
    })
  }

  it('a black-holed Redis link: 503 within the timeout, then recovery on the healed link, lost 0', async () => {
    const { proxy, sys } = await setupProxiedSystem()
    const { url } = await sys.api()
    sys.worker()
    const load = new LoadGenerator(url, ledgerJob(10), 100)
    const running = load.run()
    await sleep(1500)
    proxy.mode = 'blackhole'
    await sleep(200)
    const t0 = Date.now()
    const during = await fetch(`${url}/jobs?limit=1`)
    const answeredMs = Date.now() - t0
    await sleep(3000)
    proxy.mode = 'pass'
    await waitFor(async () => (await fetch(`${url}/health/ready`)).status === 200, { timeoutMs: 15_000 })
    // The healed link answers each request with its own reply (no shifted replies).
    const probe = await fetch(`${url}/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ task_type: 'echo', job_id: 'probe-1' }),
    })
    expect(((await probe.json()) as { id: string }).id).toBe('probe-1')
    const got = (await (await fetch(`${url}/jobs/probe-1`)).json()) as { id: string }
    expect(got.id).toBe('probe-1')
    await sleep(1000)
    load.stop()
    await running
    await load.resolveIndeterminate()
    await sys.drained()
    const v = verdict(load.outcomes, await sys.completedIds(), sys.executions())
    report('black-holed link', { ...v, statusDuringOutage: during.status, answeredMs })
    expect(during.status).toBe(503)
    expect(answeredMs).toBeLessThan(2000)
    expect(v).toMatchObject({ lost: 0, unexpected: 0 })
  })

  for (const control of [false, true]) {
    it(`${control ? 'NEGATIVE CONTROL (retry without the idempotency key): caught' : 'an ambiguous write (reply lost) retried with its idempotency key creates one job'}`, async () => {
      const { proxy, sys } = await setupProxiedSystem()
      const { url } = await sys.api()
      await fetch(`${url}/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"task_type":"echo"}',
      })
      let key = ''
      const body = (withKey: boolean) =>
        JSON.stringify({
          task_type: 'ledger',
          payload: { order: 42 },
          ...(withKey ? { idempotency_key: key } : {}),
        })
      // The scenario needs the first write to reach Redis with its reply lost. A read the API
      // waited for before the write would keep the write from ever being sent (a partition
      // list read did, until it was made a background refresh); should the link drop before
      // the write leaves anyway (another command timing out first), a try that wrote nothing
      // proves nothing, so it is made again under a new key.
      let first: Response
      const tries: string[] = []
      for (let attempt = 1; ; attempt++) {
        key = `order-42-${attempt}`
        // A write through the same link first: it is up and every cache the API keeps is warm.
        const warm = await fetch(`${url}/jobs`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '{"task_type":"echo"}',
        })
        proxy.mode = 'drop-replies' // the write reaches Redis; its reply never comes back
        first = await fetch(`${url}/jobs`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: body(true),
        })
        proxy.mode = 'pass'
        proxy.reset()
        await waitFor(async () => (await fetch(`${url}/health/ready`)).status === 200, { timeoutMs: 15_000 })
        const found = (await (await fetch(`${url}/jobs?idempotency_key=${key}`)).json()) as {
          items: unknown[]
        }
        if (found.items.length === 1) break
        tries.push(`warm-up ${warm.status}, write ${first.status} ${(await first.text()).slice(0, 200)}`)
        if (attempt >= 8)
          throw new Error(`the first write never reached Redis in 8 tries:\n${tries.join('\n')}`)
      }
      const again = await fetch(`${url}/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: body(!control),
      })
      sys.worker()
      await sys.drained()
      const listed = await fetch(`${url}/jobs?status=completed&task_type=ledger&limit=100`)
      const orders = ((await listed.json()) as { items: unknown[] }).items.length
      report(control ? 'ambiguous write without key (control)' : 'ambiguous write', {
        first: first.status,
        retry: again.status,
        jobsCreated: orders,
      })
      expect(first.status).toBe(503) // indeterminate: the client cannot know
      if (control) expect(orders, 'without the key the retry creates a second job').toBe(2)
      else {
        expect(again.status).toBe(200) // the original job, found by its key
        expect(orders).toBe(1)
      }
    })
  }

  /**
   * Redis fills up (maxmemory, noeviction) while a worker has jobs in flight and more waiting.
   * New enqueues get a clear 503 (REDIS_OUT_OF_MEMORY) and write nothing; the functions that
   * deliver, finish, renew, reclaim and prune are allow-oom, so the work goes on normally (no
   * lease lapses, nothing runs twice); the leader's memory check removes completed jobs ahead
   * of their (default, 1 h) retention; the system takes new work again without an operator.
   * Controls: without the early pruning the work goes on but Redis stays full; without it and
   * without the flags, the work in flight cannot finish.
   * (The limit is set just under the memory in use while the worker runs, so Redis is full at
   * a known moment instead of wobbling around the limit as enqueues come and go.)
   */
  const memoryCases = [
    {
      control: '',
      title:
        'Redis at maxmemory with work in flight: 503 REDIS_OUT_OF_MEMORY, the work goes on once, it recovers by itself, lost 0',
    },
    {
      control: 'no-memory-relief',
      title: 'NEGATIVE CONTROL (no early pruning): the work goes on, but Redis stays full',
    },
    {
      control: 'no-oom-flags,no-memory-relief',
      title: 'NEGATIVE CONTROL (functions without allow-oom): the work in flight is stuck',
    },
  ]
  for (const { control, title } of memoryCases) {
    it(title, async () => {
      const { sys } = await setupSystem({ WORKER_CONCURRENCY: '4' })
      const { url } = await sys.api()
      const worker = sys.worker(control ? { DTQ_UNSAFE: control } : {})
      const statuses = new Map<number, number>()
      const codes = new Map<string, number>()
      const accepted: string[] = []
      let n = 0
      const post = async () => {
        const id = `m-${n++}`
        const r = await fetch(`${url}/jobs`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            task_type: 'ledger',
            payload: { ms: 100, pad: 'x'.repeat(20_000) },
            job_id: id,
          }),
        })
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1)
        if (r.status === 201) accepted.push(id)
        else {
          const code = ((await r.json()) as { code: string }).code
          codes.set(code, (codes.get(code) ?? 0) + 1)
        }
        return r.status
      }
      for (let i = 0; i < 300; i++) await post()
      await waitFor(() => sys.executions().size >= 40, { what: 'the worker is busy' })
      const used = Number(/^used_memory:(\d+)/m.exec(await sys.redis.info('memory'))![1])
      await sys.redis.config('SET', 'maxmemory', String(used - 1_000_000))
      const inFlightAtFull = ((await sys.redis.xpending(sys.keys.stream(Q, 'normal'), GROUP)) as [number])[0]
      const fullAt = accepted.length
      expect(await post()).toBe(503)
      // Keep offering jobs: recovered once it has taken 20 more.
      const deadline = Date.now() + (control ? 8000 : 60_000)
      while (accepted.length < fullAt + 20 && Date.now() < deadline)
        if ((await post()) !== 201) await sleep(100)
      const recovered = accepted.length >= fullAt + 20
      // Finished: recorded completed in Redis (the ledger only says the handler ran).
      const completedCount = async () => Number((await sys.redis.hget(sys.keys.stats(Q), 'completed')) ?? 0)
      const finished = await waitFor(async () => (await completedCount()) === accepted.length, {
        timeoutMs: control ? 8000 : 60_000,
        what: 'accepted jobs done',
      }).then(
        () => true,
        () => false,
      )
      const executions = sys.executions()
      const stats = await sys.redis.hgetall(sys.keys.stats(Q))
      const result = {
        accepted: accepted.length,
        acceptedBeforeFull: fullAt,
        inFlightAtFull,
        statuses: Object.fromEntries(statuses),
        codes: Object.fromEntries(codes),
        recovered,
        finished,
        unfinished: accepted.filter((id) => !executions.has(id)).length,
        dup: [...executions.values()].filter((c) => c > 1).length,
        stalled: Number(stats.stalled ?? 0),
        stale_writes: Number(stats.stale_writes ?? 0),
      }
      report(`maxmemory with work in flight${control ? ` (control: ${control})` : ''}`, result)
      expect(worker.child.exitCode, worker.output().slice(-2000)).toBeNull()
      expect([...statuses.keys()].every((st) => st === 201 || st === 503)).toBe(true)
      expect([...codes.keys()]).toEqual(['REDIS_OUT_OF_MEMORY'])
      expect(result.inFlightAtFull).toBeGreaterThan(0)
      if (control === 'no-memory-relief') {
        expect(result).toMatchObject({ finished: true, unfinished: 0, dup: 0, stalled: 0 })
        expect(result.recovered, 'nothing frees memory before retention').toBe(false)
      } else if (control) {
        expect(result.finished, 'in-flight work is stuck while Redis is full').toBe(false)
      } else {
        expect(result).toMatchObject({
          recovered: true,
          finished: true,
          unfinished: 0,
          dup: 0,
          stalled: 0,
          stale_writes: 0,
        })
        for (const id of accepted) expect(executions.get(id)).toBe(1)
      }
    })
  }

  it('Redis losing its scripts between two batches (SCRIPT FLUSH, FUNCTION FLUSH) is invisible to clients', async () => {
    const { sys } = await setupSystem()
    const { url } = await sys.api()
    sys.worker()
    const post = () =>
      fetch(`${url}/jobs/batch`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          jobs: Array.from({ length: 50 }, () => ({ task_type: 'ledger', payload: { ms: 1 } })),
        }),
      })
    expect((await post()).status).toBe(200)
    await sys.drained()
    const admin = createRedis({ target: sys.env.REDIS_URL!, commandTimeoutMs: 2000 })
    await connectRedis(admin)
    await admin.script('FLUSH')
    await admin.call('FUNCTION', 'FLUSH')
    admin.disconnect()
    expect((await post()).status).toBe(200)
    await sys.drained()
    expect((await sys.completedIds()).size).toBe(100)
  })
})
