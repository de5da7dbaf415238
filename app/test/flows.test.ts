/**
 * Flows (docs/decisions/0019) against a real Redis -- standalone, and with DTQ_TEST_REDIS=cluster
 * a 3-primary Cluster where the queues below sit on different primaries: fan-out, fan-in,
 * diamond across queues, parents' results, each failure policy, the cancel cascade, a DLQ retry
 * that resumes the flow, bad input that writes nothing, idempotent creation and its roll-forward,
 * and a parent that ends after its flow's record expired (a long retry delay, a stay in the DLQ)
 * still releasing its children -- with its negative control.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { DtqError, PermanentJobError, RetryJobError } from '../src/errors.ts'
import type { FlowNodeSpec } from '../src/queue/flows.ts'
import { F } from '../src/queue/job.ts'
import { redisTarget } from '../src/redis/connection.ts'
import { functions } from '../src/redis/scripts.ts'
import { type Bundle, setup, spreadQueues, targetEnv, waitFor } from './helpers.ts'
import { runCli, tempDir } from './processes.ts'

const [Q1, Q2, Q3] = spreadQueues('fq')

let b: Bundle
/** When each node's handler started and finished (outside Redis: the order proof). */
let ledger: Map<string, { start: number; end: number }>

beforeEach(async () => {
  b = await setup()
  ledger = new Map()
})
afterEach(() => b.cleanup())

async function startWorker(extra: Record<string, (job: import('../src/queue/job.ts').Job) => unknown> = {}) {
  const w = b
    .worker({ workerQueues: [Q1, Q2, Q3] }, { flowSweepMs: 200 })
    .handle('node', async (job, ctx) => {
      const start = Date.now()
      await new Promise((r) => setTimeout(r, 5))
      ledger.set(job.flow_node!, { start, end: Date.now() })
      return { node: job.flow_node, parents: ctx.parents }
    })
  for (const [t, h] of Object.entries(extra)) w.handle(t, h)
  await w.start()
  return w
}

const node = (
  key: string,
  queue: string,
  depends_on: FlowNodeSpec['depends_on'] = [],
  task_type = 'node',
) => ({
  key,
  queue,
  task_type,
  max_retries: 0,
  depends_on,
})

async function settled(flowId: string, timeoutMs = 15_000) {
  return waitFor(
    async () => {
      const f = await b.queue.getFlow(flowId)
      const busy = f!.nodes.some((n) =>
        ['waiting', 'queued', 'active', 'retrying', 'scheduled'].includes(n.state!),
      )
      return busy ? null : f
    },
    { timeoutMs, what: `flow ${flowId} settled` },
  )
}

/** Every child started after each of its parents finished (the handler's own clock). */
function expectOrder(edges: Array<{ from: string; to: string }>) {
  for (const e of edges) {
    const p = ledger.get(e.from)
    const c = ledger.get(e.to)
    if (p && c) expect(c.start, `${e.to} after ${e.from}`).toBeGreaterThanOrEqual(p.end)
  }
}

describe('flows', () => {
  it('runs a diamond across queues in order, the child reading its parents results', async () => {
    await startWorker()
    const { flow, created } = await b.queue.addFlow({
      nodes: [node('a', Q1), node('b', Q2, ['a']), node('c', Q3, ['a']), node('d', Q1, ['b', 'c'])],
    })
    expect(created).toBe(true)
    expect(flow.nodes.find((n) => n.key === 'd')).toMatchObject({ state: 'waiting', queue: Q1 })
    const done = await settled(flow.id)
    expect(done.counts).toEqual({ completed: 4 })
    expectOrder(done.edges)
    const d = await b.queue.getJob(`${flow.id}.d`, Q1)
    expect(d).toMatchObject({ flow_id: flow.id, flow_node: 'd' })
    expect(d!.parent_results).toEqual({
      b: { node: 'b', parents: { a: { node: 'a', parents: {} } } },
      c: { node: 'c', parents: { a: { node: 'a', parents: {} } } },
    })
    expect((d!.result as { parents: object }).parents).toEqual(d!.parent_results)
  })

  it('fans out and in (1 -> 30 -> 1) across three queues', async () => {
    await startWorker()
    const mids = Array.from({ length: 30 }, (_, i) => node(`m${i}`, [Q1, Q2, Q3][i % 3]!, ['root']))
    const { flow } = await b.queue.addFlow({
      nodes: [
        node('root', Q2),
        ...mids,
        node(
          'join',
          Q3,
          mids.map((m) => m.key),
        ),
      ],
    })
    const done = await settled(flow.id)
    expect(done.counts).toEqual({ completed: 32 })
    expectOrder(done.edges)
    const join = await b.queue.getJob(`${flow.id}.join`, Q3)
    expect(Object.keys(join!.parent_results).sort()).toEqual(mids.map((m) => m.key).sort())
  })

  it('shows waiting children in listings and stats; a queue holding only them is not forgotten', async () => {
    const { flow } = await b.queue.addFlow({ nodes: [node('a', Q2), node('b', Q1, ['a'])] })
    for (let i = 0; i < 2; i++) expect(await b.queue.store.forgetQueueIfIdle(Q1, 0)).toBe(false)
    const page = await b.queue.listJobs({ state: 'waiting', queue: Q1 })
    expect(page.items.map((j) => j.id)).toEqual([`${flow.id}.b`])
    const stats = await b.queue.stats()
    expect(stats.totals.waiting).toBe(1)
    expect(stats.totals.queued).toBe(1)
  })

  it('applies each failure policy: fail, ignore, cancel', async () => {
    await startWorker({
      boom: () => {
        throw new PermanentJobError('boom')
      },
    })
    const { flow } = await b.queue.addFlow({
      nodes: [
        node('p', Q1, [], 'boom'),
        node('f', Q2, [{ node: 'p', on_failure: 'fail' }]),
        node('i', Q3, [{ node: 'p', on_failure: 'ignore' }]),
        node('x', Q2, [{ node: 'p', on_failure: 'cancel' }]),
        node('after_f', Q3, ['f']),
      ],
    })
    const done = await settled(flow.id)
    const st = Object.fromEntries(done.nodes.map((n) => [n.key, n.state]))
    expect(st).toEqual({ p: 'failed', f: 'failed', i: 'completed', x: 'cancelled', after_f: 'failed' })
    const f = await b.queue.getJob(`${flow.id}.f`, Q2)
    expect(f!.error).toBe('parent p failed')
    expect(f!.attempts).toBe(0)
  })

  it('cancels the waiting descendants of a cancelled node', async () => {
    await startWorker()
    const { flow } = await b.queue.addFlow({
      nodes: [
        { ...node('slow', Q1), task_type: 'sleep', payload: { ms: 60_000 } },
        node('b', Q2, ['slow']),
        node('c', Q3, ['b']),
        node('d', Q1, ['c']),
      ],
    })
    const out = await b.queue.cancel(`${flow.id}.b`, Q2)
    expect(out.outcome).toBe('cancelled')
    await waitFor(async () => {
      const f = await b.queue.getFlow(flow.id)
      const s = Object.fromEntries(f!.nodes.map((n) => [n.key, n.state]))
      return s.c === 'cancelled' && s.d === 'cancelled'
    })
    await b.queue.cancel(`${flow.id}.slow`, Q1)
    const done = await settled(flow.id)
    expect(done.counts).toEqual({ cancelled: 4 })
  })

  it('cancelling a running parent cancels its waiting descendants once its handler stops', async () => {
    await startWorker()
    const { flow } = await b.queue.addFlow({
      nodes: [
        { ...node('slow', Q1), task_type: 'sleep', payload: { ms: 60_000 } },
        node('b', Q2, ['slow']),
        node('c', Q3, [{ node: 'b', on_failure: 'cancel' }]),
      ],
    })
    await waitFor(async () => (await b.queue.getJob(`${flow.id}.slow`, Q1))?.state === 'active')
    expect((await b.queue.cancel(`${flow.id}.slow`, Q1)).outcome).toBe('requested')
    const done = await settled(flow.id)
    expect(done.counts).toEqual({ cancelled: 3 })
  })

  it('resumes when a failed parent is retried from the DLQ', async () => {
    let fail = true
    await startWorker({
      flaky: () => {
        if (fail) throw new PermanentJobError('not yet')
        return 'ok'
      },
    })
    const { flow } = await b.queue.addFlow({
      nodes: [node('p', Q1, [], 'flaky'), node('c', Q2, ['p']), node('g', Q3, ['c'])],
    })
    let done = await settled(flow.id)
    expect(done.counts).toEqual({ failed: 3 })
    fail = false
    await b.queue.retry(`${flow.id}.p`, Q1)
    done = await waitFor(async () => {
      const f = await b.queue.getFlow(flow.id)
      return f!.counts.completed === 3 ? f : null
    })
    expectOrder(done.edges)
    const c = await b.queue.getJob(`${flow.id}.c`, Q2)
    expect(c).toMatchObject({ state: 'completed', error: null, parent_results: { p: 'ok' } })
    expect((await b.queue.listDlq({ queue: Q2 })).items).toEqual([])
  })

  it('refuses bad graphs with a 400 and writes nothing', async () => {
    const before = await b.keys()
    const bad = async (nodes: unknown[], match: RegExp) => {
      const err = await b.queue.addFlow({ nodes: nodes as FlowNodeSpec[] }).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(DtqError)
      expect((err as DtqError).status).toBe(400)
      expect(JSON.stringify([(err as DtqError).message, (err as DtqError).details])).toMatch(match)
    }
    await bad([node('a', Q1, ['c']), node('b', Q1, ['a']), node('c', Q1, ['b'])], /cycle/)
    await bad([node('a', Q1, ['nope'])], /unknown node nope/)
    await bad([node('a', Q1), node('a', Q2)], /used twice/)
    await bad([node('a', Q1), { ...node('b', Q1, ['a']), task_type: 'no spaces' }], /node b: task_type/)
    await bad(
      Array.from({ length: 1001 }, (_, i) => node(`n${i}`, Q1)),
      /at most 1000 nodes/,
    )
    await bad([], /non-empty/)
    expect(await b.keys()).toEqual(before)
  })

  it('answers the same flow for the same idempotency key, and finishes a creation cut short', async () => {
    const spec = { idempotency_key: 'k1', nodes: [node('a', Q1), node('b', Q2, ['a'])] }
    const first = await b.queue.addFlow(spec)
    const again = await b.queue.addFlow(spec)
    expect(again.created).toBe(false)
    expect(again.flow.id).toBe(first.flow.id)
    expect(again.flow.nodes).toEqual(first.flow.nodes)

    // A creator that died after the record, before the nodes (its enqueue never answered): the
    // leader completes it from the record.
    const store = b.queue.store
    const enqueue = store.enqueue.bind(store)
    store.enqueue = () => Promise.reject(new Error('killed'))
    const crashed = await b.queue
      .addFlow({ idempotency_key: 'k2', nodes: [node('a', Q1), node('b', Q2, ['a'])] })
      .catch((e: Error) => e)
    store.enqueue = enqueue
    expect(crashed).toBeInstanceOf(Error)
    const [id] = await b.redis.zrange(store.keys.flowsCreating(), 0, 0)
    expect(await b.redis.hget(store.keys.flow(id!), 'st')).toBe('creating')
    expect(await b.redis.exists(store.keys.job(Q1, `${id}.a`))).toBe(0)
    await b.redis.zadd(store.keys.flowsCreating(), 0, id!)
    const w = await startWorker()
    expect(w).toBeTruthy()
    const done = await waitFor(async () => {
      const f = await b.queue.getFlow(id!)
      return f!.state === 'created' && f!.counts.completed === 2 ? f : null
    })
    expectOrder(done.edges)
    expect(await b.redis.zcard(b.queue.store.keys.flowsCreating())).toBe(0)
    // Once every node exists the record keeps no copy of their jobs.
    expect(JSON.parse((await b.redis.hget(store.keys.flow(id!), 'n:b'))!)).toEqual({
      i: 1,
      q: Q2,
      p: [['a', 'fail']],
    })
  })

  it('a completion whose caller does not say it is a flow member still reaches the outbox', async () => {
    const { flow } = await b.queue.addFlow({ nodes: [node('a', Q1), node('b', Q2, ['a'])] })
    const { jobs } = await b.queue.store.deliver(Q1, 'c1', 1)
    expect(jobs[0]!.flow_id).toBe(flow.id)
    await b.queue.store.complete(Q1, [{ id: jobs[0]!.id, epoch: jobs[0]!.epoch, result: '7' }])
    expect(await b.redis.xlen(b.queue.store.keys.flowOut(Q1))).toBe(1)
    await b.queue.flows.drain(Q1)
    expect(await b.queue.getJob(`${flow.id}.b`, Q2)).toMatchObject({
      state: 'queued',
      parent_results: { a: 7 },
    })
  })

  it("a flow's record is kept FLOW_RETENTION_S past its last release, or past its latest scheduled root", async () => {
    const { flow } = await b.queue.addFlow({ nodes: [node('a', Q1), node('b', Q2, ['a'])] })
    const key = b.queue.store.keys.flow(flow.id)
    const ttl = await b.redis.ttl(key)
    expect(ttl).toBeGreaterThan(604_700)
    expect(ttl).toBeLessThanOrEqual(604_800)
    await b.redis.expire(key, 100)
    await b.redis.xadd(
      b.queue.store.keys.flowOut(Q1),
      '*',
      'f',
      flow.id,
      'n',
      'a',
      'j',
      `${flow.id}.a`,
      'o',
      'completed',
      'r',
      '1',
    )
    await b.queue.flows.drain(Q1)
    expect(await b.redis.ttl(key)).toBeGreaterThan(604_700)
    const later = await b.queue.addFlow({
      nodes: [{ ...node('a', Q1), delay_ms: 86_400_000 }, node('b', Q2, ['a'])],
    })
    expect(await b.redis.ttl(b.queue.store.keys.flow(later.flow.id))).toBeGreaterThan(604_800 + 86_300)
  })

  it('flow_release refuses a bad batch before its first write', async () => {
    const { flow } = await b.queue.addFlow({ nodes: [node('a', Q1), node('b', Q1, ['a'])] })
    const child = b.queue.store.keys.job(Q1, `${flow.id}.b`)
    const before = await b.redis.hgetall(child)
    const call = (...releases: string[][]) =>
      functions().call(b.redis, 'flow_release', b.queue.store.keys.base(Q1), [
        Date.now(),
        1000,
        3600,
        3600,
        releases.length,
        ...releases.flat(),
      ])
    const good = [`${flow.id}.b`, flow.id, 'a', 'completed', '1', 'fail']
    await expect(call(good, [`${flow.id}.b`, flow.id, 'a', 'completed', '1', 'maybe'])).rejects.toThrow(
      /DTQ_BAD_ARG policy/,
    )
    await expect(call(good, [`${flow.id}.b`, flow.id, 'a', 'completed', '{bad', 'fail'])).rejects.toThrow(
      /result must be JSON/,
    )
    expect(await b.redis.hgetall(child)).toEqual(before)
    // A job that is not the flow's child is left alone, never refused (a refusal would keep the
    // outbox page that holds the release forever).
    expect(await call([`${flow.id}.b`, 'fOTHER', 'a', 'completed', '1', 'fail'])).toEqual(['foreign'])
    expect(await b.redis.hgetall(child)).toEqual(before)
    expect(await call(good, good)).toEqual(['released', 'noop'])
  })

  it('a replayed release changes nothing', async () => {
    const { flow } = await b.queue.addFlow({
      nodes: [node('a', Q1), node('b', Q1), node('c', Q2, ['a', 'b'])],
    })
    const outbox = b.queue.store.keys.flowOut(Q1)
    const entry = ['f', flow.id, 'n', 'a', 'j', `${flow.id}.a`, 'o', 'completed', 'r', '1']
    for (let i = 0; i < 3; i++) await b.redis.xadd(outbox, '*', ...entry)
    await b.queue.flows.drain(Q1)
    const c = await b.queue.getJob(`${flow.id}.c`, Q2)
    expect(c).toMatchObject({ state: 'waiting', parent_results: { a: 1 } })
    expect(await b.redis.xlen(outbox)).toBe(0)
  })

  it('dtq flows add <file> and dtq flows get <id>', async () => {
    const file = join(tempDir('flow-cli'), 'flow.json')
    writeFileSync(file, JSON.stringify({ nodes: [node('a', Q1), node('b', Q2, ['a'])] }))
    const env = { ...targetEnv(redisTarget(b.config)), KEY_PREFIX: b.prefix, LOG_LEVEL: 'silent' }
    const added = JSON.parse(await runCli(env, ['flows', 'add', file]))
    expect(added).toMatchObject({ created: true, state: 'created', counts: { queued: 1, waiting: 1 } })
    const got = JSON.parse(await runCli(env, ['flows', 'get', added.id]))
    expect(got.edges).toEqual([{ from: 'a', to: 'b', on_failure: 'fail' }])
    expect(got.nodes.map((n: { job_id: string }) => n.job_id)).toEqual([`${added.id}.a`, `${added.id}.b`])
  })

  describe('a parent that ends after its flow record expired (invariant 20)', () => {
    /** Flows per scenario: a release lost one time in four shows (P(all pass) < 0.001). */
    const ROUNDS = 8
    const record = (id: string) => b.queue.store.keys.flow(id)
    /** What the member jobs from before the fix held: no children of their own (the record only). */
    const asBeforeTheFix = (queue: string, id: string) =>
      b.redis.hdel(b.queue.store.keys.job(queue, id), F.flow_children)
    /** FLOW_RETENTION_S passing while the parents wait (no member ended: nothing pushed the TTL). */
    async function retentionPasses(flows: string[]) {
      for (const f of flows) {
        const ttl = await b.redis.ttl(record(f))
        // Without the fix this TTL is all a waiting parent had: it runs out before the parent ends.
        expect(ttl).toBeGreaterThan(0)
        expect(ttl).toBeLessThanOrEqual(b.config.flowRetentionS)
        await b.redis.pexpire(record(f), 1)
      }
      await waitFor(async () => {
        for (const f of flows) if (await b.redis.exists(record(f))) return false
        return true
      })
    }

    /** The control's parent has completed and its outbox entry was drained (against no record). */
    const controlDrained = async (control: string) => {
      await waitFor(async () => (await b.queue.getJob(`${control}.p`, Q1))?.state === 'completed', {
        what: 'the control parent completed',
      })
      await waitFor(async () => (await b.redis.xlen(b.queue.store.keys.flowOut(Q1))) === 0, {
        what: "the control parent's outbox entry drained",
      })
    }

    it('a parent retried after a delay longer than the retention releases its children', async () => {
      const runs = new Map<string, { start: number; end: number }>()
      const tried = new Set<string>()
      await startWorker({
        later: (job) => {
          const start = Date.now()
          if (!tried.has(job.id)) {
            tried.add(job.id)
            throw new RetryJobError('upstream not ready', 3_000)
          }
          runs.set(job.id, { start, end: Date.now() })
          return 'late'
        },
        step: (job) => {
          runs.set(job.id, { start: Date.now(), end: Date.now() })
          return job.flow_node
        },
      })
      const flows: string[] = []
      for (let i = 0; i <= ROUNDS; i++) {
        const { flow } = await b.queue.addFlow({
          nodes: [
            { ...node('p', Q1, [], 'later'), max_retries: 1 },
            node('c', Q2, ['p'], 'step'),
            node('g', Q3, ['c'], 'step'),
          ],
        })
        flows.push(flow.id)
      }
      const control = flows[ROUNDS]!
      // Every parent waits out its retry delay; its flow's retention runs out meanwhile.
      await waitFor(async () => {
        for (const f of flows) if ((await b.queue.getJob(`${f}.p`, Q1))?.state !== 'retrying') return false
        return true
      })
      await asBeforeTheFix(Q1, `${control}.p`)
      await retentionPasses(flows)
      for (const f of flows.slice(0, ROUNDS)) {
        const g = await waitFor(
          async () => {
            const j = await b.queue.getJob(`${f}.g`, Q3)
            return j?.state === 'completed' ? j : null
          },
          { what: `flow ${f} released after its record expired` },
        )
        expect(g.parent_results).toEqual({ c: 'c' })
        expect(await b.queue.getJob(`${f}.c`, Q2)).toMatchObject({ parent_results: { p: 'late' } })
        expect(runs.get(`${f}.c`)!.start).toBeGreaterThanOrEqual(runs.get(`${f}.p`)!.end)
        expect(runs.get(`${f}.g`)!.start).toBeGreaterThanOrEqual(runs.get(`${f}.c`)!.end)
        // Released without the record: it is still gone (and nothing wrote it again).
        expect(await b.redis.exists(record(f))).toBe(0)
      }
      // The control: its parent completed, its outbox entry was drained -- against a record that
      // is gone -- and its child is stranded, as every flow's was before the fix.
      await controlDrained(control)
      expect((await b.queue.getJob(`${control}.c`, Q2))!.state).toBe('waiting')
    })

    it('a parent retried from the DLQ after the retention re-opens its flow', async () => {
      let fail = true
      await startWorker({
        flaky: () => {
          if (fail) throw new PermanentJobError('not yet')
          return 'ok'
        },
      })
      const flows: string[] = []
      for (let i = 0; i <= ROUNDS; i++) {
        const { flow } = await b.queue.addFlow({
          nodes: [node('p', Q1, [], 'flaky'), node('c', Q2, ['p']), node('g', Q3, ['c'])],
        })
        flows.push(flow.id)
      }
      const control = flows[ROUNDS]!
      for (const f of flows) expect((await settled(f)).counts).toEqual({ failed: 3 })
      // The failed flow stays in the DLQ past FLOW_RETENTION_S (the DLQ keeps it FAILED_RETENTION_S).
      await asBeforeTheFix(Q1, `${control}.p`)
      await retentionPasses(flows)
      fail = false
      for (const f of flows) await b.queue.retry(`${f}.p`, Q1)
      for (const f of flows.slice(0, ROUNDS)) {
        const g = await waitFor(
          async () => {
            const j = await b.queue.getJob(`${f}.g`, Q3)
            return j?.state === 'completed' ? j : null
          },
          { what: `flow ${f} re-opened after its record expired` },
        )
        expect(g.error).toBeNull()
        expect(await b.queue.getJob(`${f}.c`, Q2)).toMatchObject({
          state: 'completed',
          parent_results: { p: 'ok' },
        })
        expect(await b.redis.exists(record(f))).toBe(0)
      }
      await controlDrained(control)
      expect(await b.queue.getJob(`${control}.c`, Q2)).toMatchObject({
        state: 'failed',
        error: 'parent p failed',
      })
    })

    it('the children travel in the outbox entry: a parent deleted as it completes still releases', async () => {
      // COMPLETED_RETENTION_S=0: the parent's hash is gone in the script that completes it, so
      // the releaser could not read the children there afterwards either.
      const b0 = await setup({ config: { completedRetentionS: 0 } })
      try {
        const { flow } = await b0.queue.addFlow({ nodes: [node('a', Q1), node('b', Q2, ['a'])] })
        await b0.redis.pexpire(b0.queue.store.keys.flow(flow.id), 1)
        await new Promise((r) => setTimeout(r, 20))
        expect(await b0.redis.exists(b0.queue.store.keys.flow(flow.id))).toBe(0)
        const { jobs } = await b0.queue.store.deliver(Q1, 'c1', 1)
        await b0.queue.store.complete(Q1, [{ id: jobs[0]!.id, epoch: jobs[0]!.epoch, result: '7' }])
        expect(await b0.redis.exists(b0.queue.store.keys.job(Q1, `${flow.id}.a`))).toBe(0)
        await b0.queue.flows.drain(Q1)
        expect(await b0.queue.getJob(`${flow.id}.b`, Q2)).toMatchObject({
          state: 'queued',
          parent_results: { a: 7 },
        })
      } finally {
        await b0.cleanup()
      }
    })

    it('the record still expires once the flow is over', async () => {
      await startWorker()
      const { flow } = await b.queue.addFlow({
        nodes: [node('a', Q1), node('b', Q2, ['a']), node('c', Q3, ['a', 'b'])],
      })
      expect((await settled(flow.id)).counts).toEqual({ completed: 3 })
      await b.queue.flows.drain(Q3) // the last member's entry (no children: nothing to release)
      // Kept FLOW_RETENTION_S past its last release, never made persistent.
      const ttl = await b.redis.ttl(record(flow.id))
      expect(ttl).toBeGreaterThan(b.config.flowRetentionS - 60)
      expect(ttl).toBeLessThanOrEqual(b.config.flowRetentionS)
      // The children lists live on the members, which go with their own retention.
      expect(
        JSON.parse((await b.redis.hget(b.queue.store.keys.job(Q1, `${flow.id}.a`), F.flow_children))!),
      ).toEqual([
        ['b', Q2, 'fail'],
        ['c', Q3, 'fail'],
      ])
      expect(await b.redis.hget(b.queue.store.keys.job(Q3, `${flow.id}.c`), F.flow_children)).toBeNull()
      for (const q of [Q1, Q2, Q3]) expect(await b.redis.xlen(b.queue.store.keys.flowOut(q))).toBe(0)
    })
  })
})
