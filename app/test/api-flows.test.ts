/**
 * POST /flows and GET /flows/{id} through app.inject() against a real Redis: created (201),
 * repeated with its idempotency key (200, the same flow), bad graphs (400, nothing written),
 * live states, and the member job pointing at its flow.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type ApiBundle, apiSetup } from './api-helpers.ts'
import { waitFor } from './helpers.ts'

let b: ApiBundle
beforeEach(async () => {
  b = await apiSetup({ flowMaxNodes: 10 })
})
afterEach(() => b.cleanup())

const post = (url: string, payload: unknown) =>
  b.app.inject({ method: 'POST', url, payload: payload as never })
const get = (url: string) => b.app.inject({ method: 'GET', url })
const diamond = {
  idempotency_key: 'diamond-1',
  nodes: [
    { key: 'a', task_type: 'echo', payload: 1, queue: 'fx' },
    { key: 'b', task_type: 'echo', payload: 2, queue: 'fy', depends_on: ['a'] },
    {
      key: 'c',
      task_type: 'echo',
      payload: 3,
      queue: 'fz',
      depends_on: [{ node: 'a', on_failure: 'ignore' }],
    },
    { key: 'd', task_type: 'echo', payload: 4, queue: 'fx', depends_on: ['b', 'c'] },
  ],
}

describe('flows API', () => {
  it('creates a flow, answers it again for its key, and shows live states', async () => {
    const r = await post('/flows', diamond)
    expect(r.statusCode).toBe(201)
    const flow = r.json()
    expect(r.headers.location).toBe(`/flows/${flow.id}`)
    expect(flow.state).toBe('created')
    expect(flow.counts).toEqual({ queued: 1, waiting: 3 })
    expect(flow.edges).toContainEqual({ from: 'a', to: 'c', on_failure: 'ignore' })
    const again = await post('/flows', diamond)
    expect(again.statusCode).toBe(200)
    expect(again.json().id).toBe(flow.id)

    const job = (await get(`/jobs/${flow.id}.d?queue=fx`)).json()
    expect(job).toMatchObject({ state: 'waiting', flow_id: flow.id, flow_node: 'd', parent_results: {} })
    expect((await get('/jobs?status=waiting')).json().items).toHaveLength(3)
    expect((await get('/stats')).json().totals.waiting).toBe(3)

    const w = b.worker({ workerQueues: ['fx', 'fy', 'fz'] })
    await w.start()
    const done = await waitFor(async () => {
      const f = (await get(`/flows/${flow.id}`)).json()
      return f.counts.completed === 4 ? f : null
    })
    expect(done.nodes.map((n: { state: string }) => n.state)).toEqual([
      'completed',
      'completed',
      'completed',
      'completed',
    ])
    const d = (await get(`/jobs/${flow.id}.d?queue=fx`)).json()
    expect(d.parent_results).toEqual({ b: 2, c: 3 })
  })

  it('refuses a cycle, an unknown node, a graph over FLOW_MAX_NODES, a reserved type: 400, nothing written', async () => {
    const before = await b.keys()
    const cases: Array<[unknown[], RegExp]> = [
      [
        [
          { key: 'a', task_type: 'echo', depends_on: ['b'] },
          { key: 'b', task_type: 'echo', depends_on: ['a'] },
        ],
        /cycle/,
      ],
      [[{ key: 'a', task_type: 'echo', depends_on: ['zz'] }], /unknown node zz/],
      [Array.from({ length: 11 }, (_, i) => ({ key: `k${i}`, task_type: 'echo' })), /at most 10 nodes/],
      [[{ key: 'a', task_type: 'dtq.dlq_retry' }], /reserved/],
      [[{ key: 'a', task_type: 'echo', job_id: 'x' }], /job_id is not allowed/],
    ]
    for (const [nodes, why] of cases) {
      const r = await post('/flows', { nodes })
      expect(r.statusCode, JSON.stringify(nodes)).toBe(400)
      expect(JSON.stringify(r.json())).toMatch(why)
    }
    expect((await post('/flows', { nodes: [] })).statusCode).toBe(400)
    expect(await b.keys()).toEqual(before)
  })

  it('POST /jobs with depends_on: waits for existing jobs, reads their results; unknown jobs 400 writing nothing', async () => {
    const p1 = (await post('/jobs', { task_type: 'echo', payload: 'one', queue: 'fx' })).json()
    const p2 = (await post('/jobs', { task_type: 'echo', payload: 'two', queue: 'fy' })).json()
    const r = await post('/jobs', {
      task_type: 'echo',
      queue: 'fx',
      depends_on: [p1.id, { job_id: p2.id, queue: 'fy', on_failure: 'ignore' }],
    })
    expect(r.statusCode).toBe(201)
    const child = r.json()
    expect(child).toMatchObject({ state: 'waiting', parent_results: {} })
    expect(r.headers.location).toBe(`/jobs/${child.id}?queue=fx`)
    const flow = (await get(`/flows/${child.flow_id}`)).json()
    expect(flow.nodes.map((n: { key: string; existing: boolean }) => [n.key, n.existing])).toEqual([
      [p1.id, true],
      [`fy/${p2.id}`, true],
      [child.id, false],
    ])
    expect(flow.edges).toContainEqual({ from: `fy/${p2.id}`, to: child.id, on_failure: 'ignore' })

    const before = await b.keys()
    const bad: Array<[unknown, RegExp]> = [
      [{ task_type: 'echo', queue: 'fx', depends_on: ['nope'] }, /do not exist: nope \(queue fx\)/],
      [{ task_type: 'echo', depends_on: [] }, /depends_on/],
      [{ task_type: 'echo', depends_on: [{ job_id: 'x', on_failure: 'maybe' }] }, /on_failure/],
      [{ task_type: 'echo', depends_on: [p1.id], delay_ms: 5 }, /delay_ms and run_at/],
    ]
    for (const [body, why] of bad) {
      const res = await post('/jobs', body)
      expect(res.statusCode, JSON.stringify(body)).toBe(400)
      expect(JSON.stringify(res.json())).toMatch(why)
    }
    const batch = await post('/jobs/batch', { jobs: [{ task_type: 'echo', depends_on: [p1.id] }] })
    expect(batch.statusCode).toBe(200)
    expect(batch.json()).toMatchObject({
      created: 0,
      rejected: 1,
      items: [{ status: 400, outcome: 'rejected' }],
    })
    expect(JSON.stringify(batch.json())).toMatch(/depends_on is for a job added alone/)
    expect(await b.keys()).toEqual(before)

    const w = b.worker({ workerQueues: ['fx', 'fy'] })
    await w.start()
    const done = await waitFor(async () => {
      const j = (await get(`/jobs/${child.id}?queue=fx`)).json()
      return j.state === 'completed' ? j : null
    })
    expect(done.parent_results).toEqual({ [p1.id]: 'one', [`fy/${p2.id}`]: 'two' })
  })

  it('GET /flows/{id}: 404 for an unknown flow, 400 for a malformed id', async () => {
    expect((await get('/flows/fAAAAAAAAAAAAAAAAAAAA')).statusCode).toBe(404)
    expect((await get('/flows/nope')).statusCode).toBe(400)
  })
})
