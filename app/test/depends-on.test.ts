/**
 * `depends_on` on a job added alone, naming jobs that already exist (ADR 0019): against a real
 * Redis -- standalone, and with DTQ_TEST_REDIS=cluster on queues placed on three primaries. The
 * new job waits until each parent completed (whatever state the parent was in when it was
 * named: queued, running, scheduled, waiting in a flow, completed, failed, cancelled), reads
 * their results, follows each edge's failure policy, resumes when a failed parent is retried
 * from the DLQ; bad input writes nothing; a creation cut short is rolled forward; a parent that
 * joins while a worker runs it still releases its child (the late set), with its negative control.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { DtqError, PermanentJobError } from '../src/errors.ts'
import type { Job } from '../src/queue/job.ts'
import { redisTarget } from '../src/redis/connection.ts'
import { functions } from '../src/redis/scripts.ts'
import { type Bundle, setup, spreadQueues, targetEnv, waitFor } from './helpers.ts'
import { runCli } from './processes.ts'

const [Q1, Q2, Q3] = spreadQueues('dq')

let b: Bundle
/** When each job's handler started and finished, by job id (outside Redis: the order proof). */
let ledger: Map<string, { start: number; end: number }>

beforeEach(async () => {
  b = await setup()
  ledger = new Map()
})
afterEach(() => b.cleanup())

async function startWorker(extra: Record<string, (job: Job) => unknown> = {}) {
  const w = b
    .worker({ workerQueues: [Q1, Q2, Q3] }, { flowSweepMs: 200 })
    .handle('step', async (job, ctx) => {
      const start = Date.now()
      await new Promise((r) => setTimeout(r, 5))
      ledger.set(job.id, { start, end: Date.now() })
      return { id: job.id, parents: ctx.parents }
    })
  for (const [t, h] of Object.entries(extra)) w.handle(t, h)
  await w.start()
  return w
}

const add = (queue: string, opts: Record<string, unknown> = {}) =>
  b.queue.add('step', {}, { queue, max_retries: 0, ...opts })

async function stateOf(id: string, queue: string) {
  return (await b.queue.getJob(id, queue))?.state ?? null
}

async function ended(id: string, queue: string, timeoutMs = 10_000) {
  return waitFor(
    async () => {
      const j = await b.queue.getJob(id, queue)
      return j && ['completed', 'failed', 'cancelled'].includes(j.state) ? j : null
    },
    { timeoutMs, what: `job ${id} in ${queue} ended` },
  )
}

describe('depends_on on existing jobs', () => {
  it('waits for queued parents in three queues, then runs with their results', async () => {
    const p1 = await add(Q1)
    const p2 = await add(Q2)
    const p3 = await add(Q3)
    // An id alone names a job in the child's queue; another queue's job is named with its queue.
    const child = await add(Q3, {
      depends_on: [{ job_id: p1.job.id, queue: Q1 }, { job_id: p2.job.id, queue: Q2 }, p3.job.id],
    })
    expect(child.created).toBe(true)
    expect(child.job.state).toBe('waiting')
    expect(child.job.flow_id).toBeTruthy()
    const flow = await b.queue.getFlow(child.job.flow_id!)
    expect(flow!.nodes.map((n) => [n.job_id, n.existing])).toEqual([
      [p1.job.id, true],
      [p2.job.id, true],
      [p3.job.id, true],
      [child.job.id, false],
    ])
    await startWorker()
    const done = await ended(child.job.id, Q3)
    expect(done.state).toBe('completed')
    for (const p of [p1, p2, p3])
      expect(ledger.get(child.job.id)!.start).toBeGreaterThanOrEqual(ledger.get(p.job.id)!.end)
    expect(done.parent_results).toEqual({
      [`${Q1}/${p1.job.id}`]: { id: p1.job.id, parents: {} },
      [`${Q2}/${p2.job.id}`]: { id: p2.job.id, parents: {} },
      [p3.job.id]: { id: p3.job.id, parents: {} },
    })
  })

  it('counts parents already ended: completed releases at once, failed and cancelled by policy', async () => {
    await startWorker({
      boom: () => {
        throw new PermanentJobError('boom')
      },
    })
    const ok = await add(Q1)
    const bad = await b.queue.add('boom', {}, { queue: Q1, max_retries: 0 })
    const gone = await add(Q1, { delay_ms: 60_000 })
    await b.queue.cancel(gone.job.id, Q1)
    await ended(ok.job.id, Q1)
    await ended(bad.job.id, Q1)

    const a = await add(Q1, { depends_on: [ok.job.id] })
    // Its only parent had completed: queued before the add returned (or already run).
    expect(['queued', 'active', 'completed']).toContain((await b.queue.getJob(a.job.id, Q1))!.state)
    expect((await ended(a.job.id, Q1)).parent_results).toEqual({
      [ok.job.id]: { id: ok.job.id, parents: {} },
    })

    const f = await add(Q2, { depends_on: [{ job_id: bad.job.id, queue: Q1 }] })
    expect(await ended(f.job.id, Q2)).toMatchObject({
      state: 'failed',
      error: `parent ${Q1}/${bad.job.id} failed`,
    })
    const i = await add(Q2, { depends_on: [{ job_id: bad.job.id, queue: Q1, on_failure: 'ignore' }] })
    expect((await ended(i.job.id, Q2)).state).toBe('completed')
    const x = await add(Q2, { depends_on: [{ job_id: bad.job.id, queue: Q1, on_failure: 'cancel' }] })
    expect((await ended(x.job.id, Q2)).state).toBe('cancelled')
    const c = await add(Q3, { depends_on: [{ job_id: gone.job.id, queue: Q1 }] })
    expect((await ended(c.job.id, Q3)).state).toBe('cancelled')
  })

  it('resumes when a failed parent is retried from the DLQ', async () => {
    let fail = true
    await startWorker({
      flaky: () => {
        if (fail) throw new PermanentJobError('not yet')
        return 'ok'
      },
    })
    const p = await b.queue.add('flaky', {}, { queue: Q1, max_retries: 0 })
    const c = await add(Q2, { depends_on: [{ job_id: p.job.id, queue: Q1 }] })
    expect((await ended(c.job.id, Q2)).state).toBe('failed')
    fail = false
    await b.queue.retry(p.job.id, Q1)
    const done = await waitFor(async () => {
      const j = await b.queue.getJob(c.job.id, Q2)
      return j?.state === 'completed' ? j : null
    })
    expect(done).toMatchObject({ error: null, parent_results: { [`${Q1}/${p.job.id}`]: 'ok' } })
    // Failed once before the parent was named: the DLQ retry of a parent that failed *after*
    // the child was added re-opens the child too (its end reached the outbox both times).
  })

  it('chains: a parent that is itself waiting (a member of another flow) releases each of its flows', async () => {
    const a = await add(Q1)
    const bJob = await add(Q2, { depends_on: [{ job_id: a.job.id, queue: Q1 }] })
    const c1 = await add(Q3, { depends_on: [{ job_id: bJob.job.id, queue: Q2 }] })
    const c2 = await add(Q3, {
      depends_on: [
        { job_id: bJob.job.id, queue: Q2 },
        { job_id: a.job.id, queue: Q1 },
      ],
    })
    const flowParent = await b.queue.addFlow({ nodes: [{ key: 'root', task_type: 'step', queue: Q1 }] })
    const rootId = flowParent.flow.nodes[0]!.job_id
    const c3 = await add(Q2, { depends_on: [{ job_id: rootId, queue: Q1 }] })
    expect(await stateOf(c1.job.id, Q3)).toBe('waiting')
    await startWorker()
    for (const [j, q] of [
      [c1, Q3],
      [c2, Q3],
      [c3, Q2],
    ] as const)
      expect((await ended(j.job.id, q)).state).toBe('completed')
    expect(ledger.get(c1.job.id)!.start).toBeGreaterThanOrEqual(ledger.get(bJob.job.id)!.end)
    expect(ledger.get(bJob.job.id)!.start).toBeGreaterThanOrEqual(ledger.get(a.job.id)!.end)
    expect(ledger.get(c3.job.id)!.start).toBeGreaterThanOrEqual(ledger.get(rootId)!.end)
    // The flow's own root kept its flow; the later child joined it through F_FLOW_WATCH.
    expect((await b.queue.getJob(rootId, Q1))!.flow_id).toBe(flowParent.flow.id)
  })

  it('a cancelled parent cancels its waiting child; a scheduled parent keeps the record until due', async () => {
    const later = await add(Q1, { delay_ms: 3 * 86_400_000 })
    const c = await add(Q2, { depends_on: [{ job_id: later.job.id, queue: Q1 }] })
    const ttl = await b.redis.ttl(b.queue.store.keys.flow(c.job.flow_id!))
    expect(ttl).toBeGreaterThan(604_800 + 3 * 86_400 - 100)
    await b.queue.cancel(later.job.id, Q1)
    await startWorker()
    expect((await ended(c.job.id, Q2)).state).toBe('cancelled')
  })

  it('a parent named while a worker runs it still releases its child (K_FLOW_LATE), and without it would not', async () => {
    // Repeated: the outcome must not depend on timing. The worker's completion says "not a flow
    // member" (it was not when delivered); the late set makes the script look again.
    for (const control of [false, true]) {
      for (let round = 0; round < 8; round++) {
        const p = await add(Q1)
        const { jobs } = await b.queue.store.deliver(Q1, 'c1', 1)
        expect(jobs[0]!.id).toBe(p.job.id)
        const c = await add(Q2, { depends_on: [{ job_id: p.job.id, queue: Q1 }] })
        if (control) await b.redis.del(`${b.queue.store.keys.base(Q1)}:flow_late`)
        const [res] = await b.queue.store.complete(Q1, [
          { id: p.job.id, epoch: jobs[0]!.epoch, result: '1', flow: false },
        ])
        expect(res).toBe(1)
        await b.queue.flows.drain(Q1)
        const st = await stateOf(c.job.id, Q2)
        expect(st, `round ${round} control ${control}`).toBe(control ? 'waiting' : 'queued')
        await b.queue.cancel(c.job.id, Q2)
      }
    }
    // The set holds nothing once those jobs ended.
    expect(await b.redis.scard(`${b.queue.store.keys.base(Q1)}:flow_late`)).toBe(0)
  })

  it('a parent that waits past its record expiry still releases its child (own flow fields and F_FLOW_WATCH)', async () => {
    // Parents in a backlog (no worker yet) while FLOW_RETENTION_S passes: a plain job that
    // joins the child's flow, and a flow's root that joins a second flow through F_FLOW_WATCH.
    const rounds = 8
    const pairs: Array<{ child: string; parent: string; flows: string[] }> = []
    for (let i = 0; i < rounds; i++) {
      const p = await add(Q1)
      const c = await add(Q2, { depends_on: [{ job_id: p.job.id, queue: Q1 }] })
      pairs.push({ child: c.job.id, parent: p.job.id, flows: [c.job.flow_id!] })
      const f = await b.queue.addFlow({
        nodes: [
          { key: 'root', task_type: 'step', queue: Q1 },
          { key: 'kid', task_type: 'step', queue: Q3, depends_on: ['root'] },
        ],
      })
      const rootId = f.flow.nodes[0]!.job_id
      const c2 = await add(Q2, { depends_on: [{ job_id: rootId, queue: Q1 }] })
      pairs.push({ child: c2.job.id, parent: rootId, flows: [f.flow.id, c2.job.flow_id!] })
      pairs.push({ child: `${f.flow.id}.kid`, parent: rootId, flows: [f.flow.id] })
    }
    for (const { flows } of pairs) for (const f of flows) await b.redis.pexpire(b.queue.store.keys.flow(f), 1)
    await new Promise((r) => setTimeout(r, 20))
    for (const { flows } of pairs)
      for (const f of flows) expect(await b.redis.exists(b.queue.store.keys.flow(f))).toBe(0)
    await startWorker()
    for (const { child, parent } of pairs) {
      const q = child.endsWith('.kid') ? Q3 : Q2
      expect((await ended(child, q)).state, `child ${child}`).toBe('completed')
      expect(ledger.get(child)!.start).toBeGreaterThanOrEqual(ledger.get(parent)!.end)
    }
  })

  it('answers a repeat by idempotency key or id with the job, and refuses bad input writing nothing', async () => {
    const p = await add(Q1)
    const first = await add(Q2, { idempotency_key: 'dep-1', depends_on: [{ job_id: p.job.id, queue: Q1 }] })
    const again = await add(Q2, { idempotency_key: 'dep-1', depends_on: [{ job_id: p.job.id, queue: Q1 }] })
    expect(again).toMatchObject({ created: false, job: { id: first.job.id, state: 'waiting' } })
    const own = await add(Q2, { id: 'mine', depends_on: [{ job_id: p.job.id, queue: Q1 }] })
    expect(own.job).toMatchObject({ id: 'mine', state: 'waiting' })
    expect((await add(Q2, { id: 'mine', depends_on: [{ job_id: p.job.id, queue: Q1 }] })).created).toBe(false)

    const before = await b.keys()
    const bad = async (opts: Record<string, unknown>, match: RegExp) => {
      const err = await add(Q2, opts).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(DtqError)
      expect((err as DtqError).status).toBe(400)
      expect(JSON.stringify([(err as DtqError).message, (err as DtqError).details])).toMatch(match)
    }
    await bad({ depends_on: ['nope'] }, /do not exist: nope \(queue dq/)
    await bad({ depends_on: [{ job_id: p.job.id, queue: Q1 }, 'nope'] }, /do not exist: nope/)
    await bad({ depends_on: [] }, /non-empty array/)
    await bad({ depends_on: 'x' }, /non-empty array/)
    await bad({ depends_on: [{ job_id: 'a b' }] }, /job_id must be/)
    await bad({ depends_on: [{ job_id: 'x', queue: 'a b' }] }, /queue must be/)
    await bad({ depends_on: [{ job_id: 'x', on_failure: 'maybe' }] }, /on_failure must be one of/)
    await bad({ depends_on: [{ job_id: 'x', when: 1 }] }, /when is not a known field/)
    await bad({ id: 'self', depends_on: ['self'] }, /cannot depend on itself/)
    await bad({ depends_on: ['x', 'x'] }, /named twice/)
    await bad({ delay_ms: 10, depends_on: [{ job_id: p.job.id, queue: Q1 }] }, /delay_ms and run_at/)
    await bad({ depends_on: Array.from({ length: 1000 }, (_, i) => `j${i}`) }, /at most 999/)
    const batch = await b.queue
      .addBulk([
        { task_type: 'step', queue: Q2 },
        { task_type: 'step', queue: Q2, depends_on: [p.job.id] },
      ])
      .catch((e: unknown) => e)
    expect((batch as DtqError).status).toBe(400)
    expect(JSON.stringify((batch as DtqError).details)).toMatch(
      /jobs\[1\]: depends_on is for a job added alone/,
    )
    expect(await b.keys()).toEqual(before)
  })

  it('rolls a creation cut short forward: the leader joins the parents from the record', async () => {
    const p = await add(Q1)
    const flows = b.queue.flows as unknown as { run: (...a: unknown[]) => Promise<unknown> }
    const run = flows.run.bind(flows)
    // Killed right after the child was written: flow_attach never ran.
    flows.run = (name: unknown, ...rest: unknown[]) =>
      name === 'flow_attach' ? Promise.reject(new Error('killed')) : run(name, ...rest)
    const err = await add(Q2, {
      idempotency_key: 'cut',
      depends_on: [{ job_id: p.job.id, queue: Q1 }],
    }).catch((e: Error) => e)
    expect((err as Error).message).toBe('killed')
    flows.run = run
    const child = await b.queue.findByIdempotencyKey('cut', Q2)
    expect(child!.state).toBe('waiting')
    expect((await b.queue.getJob(p.job.id, Q1))!.flow_id).toBeNull()
    expect(await b.queue.flows.rollForward(0)).toBe(1)
    expect((await b.queue.getJob(p.job.id, Q1))!.flow_id).toBe(child!.flow_id)
    await startWorker()
    expect((await ended(child!.id, Q2)).state).toBe('completed')
  })

  it('flow_attach refuses bad arguments before its first write', async () => {
    const p = await add(Q1)
    const before = await b.redis.hgetall(b.queue.store.keys.job(Q1, p.job.id))
    const call = (...args: string[]) =>
      functions().call(b.redis, 'flow_attach', b.queue.store.keys.base(Q1), [
        Date.now(),
        1000,
        3600,
        3600,
        ...args,
      ])
    await expect(call('2', p.job.id, 'fX', 'k', '[]')).rejects.toThrow(/DTQ_BAD_ARG 4 fields per parent/)
    await expect(call('2', p.job.id, 'fX', 'k', '[]', 'other', '', 'k', '[]')).rejects.toThrow(
      /DTQ_BAD_ARG id, flow and node/,
    )
    await expect(call('1', p.job.id, 'fX', 'k', '{bad')).rejects.toThrow(/DTQ_BAD_ARG children must be/)
    await expect(call('0')).rejects.toThrow(/DTQ_BAD_ARG number of parents/)
    expect(await b.redis.hgetall(b.queue.store.keys.job(Q1, p.job.id))).toEqual(before)
  })

  it('dtq enqueue --depends-on', async () => {
    const env = { ...targetEnv(redisTarget(b.config)), KEY_PREFIX: b.prefix, LOG_LEVEL: 'silent' }
    const p = await add(Q1)
    const out = JSON.parse(
      await runCli(env, [
        'enqueue',
        'step',
        '--queue',
        Q2,
        '--depends-on',
        `${Q1}/${p.job.id}`,
        '--on-parent-failure',
        'ignore',
        '--json',
      ]),
    )
    expect(out).toMatchObject({ created: true, job: { state: 'waiting', queue: Q2 } })
    const flow = await b.queue.getFlow(out.job.flow_id)
    expect(flow!.edges).toEqual([{ from: `${Q1}/${p.job.id}`, to: out.job.id, on_failure: 'ignore' }])
    const err = await runCli(env, ['enqueue', 'step', '--queue', Q2, '--depends-on', 'nope']).catch(
      (e: { stderr: string }) => e.stderr,
    )
    expect(err).toMatch(/do not exist: nope/)
  })
})
