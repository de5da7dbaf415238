/**
 * Replication-safe acknowledgements (ENQUEUE_WAIT_REPLICAS, ADR 0017) against a real primary and
 * replica: an enqueue is answered only once WAIT confirms the replicas have it, and a replica that
 * does not confirm in time makes the answer a 503 REPLICATION_TIMEOUT, never a silent success.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { Keys } from '../src/redis/keys.ts'
import { freePort } from '../src/redis/local-server.ts'
import { type ApiBundle, apiSetup, bearer } from './api-helpers.ts'
import { call, HOST, RedisProcess, waitUntil } from './topology.ts'

const ARGS = (port: number, dir: string) => [
  '--port',
  String(port),
  '--bind',
  HOST,
  '--dir',
  dir,
  '--logfile',
  'redis.log',
  '--appendonly',
  'yes',
  '--maxmemory-policy',
  'noeviction',
  '--save',
  '',
  '--repl-diskless-sync-delay',
  '0',
]

let root: string
let primary: RedisProcess
let replica: RedisProcess

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'dtq-repl-'))
  const p = await freePort()
  primary = new RedisProcess('primary', p, join(root, 'p'), ARGS(p, join(root, 'p')))
  await primary.start()
  const r = await freePort()
  replica = new RedisProcess('replica', r, join(root, 'r'), [
    ...ARGS(r, join(root, 'r')),
    '--replicaof',
    `${HOST} ${p}`,
  ])
  await replica.start()
  await waitUntil('the replica to be in sync', 15_000, async () => {
    const info = String(await call(p, ['INFO', 'replication']))
    return /connected_slaves:1/.test(info) && /state=online/.test(info) ? true : info
  })
})

afterAll(async () => {
  await replica?.stop()
  await primary?.stop()
  if (root) rmSync(root, { recursive: true, force: true })
})

let api: ApiBundle | undefined
afterEach(async () => {
  if (replica.pid) process.kill(replica.pid, 'SIGCONT')
  await api?.cleanup()
  api = undefined
})

const post = (b: ApiBundle, body: object) =>
  b.app.inject({ method: 'POST', url: '/jobs', headers: bearer('write'), payload: body })
const postBatch = (b: ApiBundle, jobs: object[]) =>
  b.app.inject({ method: 'POST', url: '/jobs/batch', headers: bearer('write'), payload: { jobs } })

/** Whether the replica holds the job's hash (read from it directly, no waiting). */
async function onReplica(b: ApiBundle, id: string): Promise<boolean> {
  return Number(await call(replica.port, ['EXISTS', new Keys(b.prefix).job('default', id)])) === 1
}

describe('ENQUEUE_WAIT_REPLICAS', () => {
  it('on: a 201 means the replica holds the job already (single and batch)', async () => {
    api = await apiSetup({ enqueueWaitReplicas: 1, enqueueWaitTimeoutMs: 1000 }, { url: primary.url })
    for (let i = 0; i < 20; i++) {
      const res = await post(api, { task_type: 'echo', payload: { i } })
      expect(res.statusCode).toBe(201)
      // No waiting: WAIT already confirmed it, so the replica answers with it at once.
      expect(await onReplica(api, res.json().id)).toBe(true)
    }
    const batch = await postBatch(
      api,
      Array.from({ length: 50 }, (_, i) => ({ task_type: 'echo', payload: { i } })),
    )
    expect(batch.statusCode).toBe(200)
    expect(batch.json().created).toBe(50)
    for (const item of batch.json().items) expect(await onReplica(api, item.job.id)).toBe(true)
  })

  it('a replica that does not confirm in time: 503 REPLICATION_TIMEOUT, and the same key sent again makes one job', async () => {
    api = await apiSetup({ enqueueWaitReplicas: 1, enqueueWaitTimeoutMs: 300 }, { url: primary.url })
    process.kill(replica.pid!, 'SIGSTOP') // alive to the primary, but it acknowledges nothing
    const started = Date.now()
    const res = await post(api, { task_type: 'echo', idempotency_key: 'k-1' })
    expect(Date.now() - started).toBeLessThan(3000)
    expect(res.statusCode).toBe(503)
    expect(res.headers['retry-after']).toBeDefined()
    expect(res.json().code).toBe('REPLICATION_TIMEOUT')
    expect(res.json().message).toMatch(/0 of 1 replicas confirmed .* within 300 ms/)

    // A batch: every item it carried is `unknown` (written on the primary, not confirmed).
    const batch = await postBatch(api, [
      { task_type: 'echo', idempotency_key: 'b-1' },
      { task_type: 'echo', idempotency_key: 'b-2' },
    ])
    expect(batch.statusCode).toBe(503)
    expect(batch.json().code).toBe('REPLICATION_TIMEOUT')
    expect(batch.json().details.unknown).toBe(2)
    expect(batch.json().details.items.map((i: { outcome: string }) => i.outcome)).toEqual([
      'unknown',
      'unknown',
    ])

    // The replica catches up; the client sends the same request again: the job it already has.
    process.kill(replica.pid!, 'SIGCONT')
    const again = await post(api, { task_type: 'echo', idempotency_key: 'k-1' })
    expect(again.statusCode).toBe(200)
    const list = await api.app.inject({
      method: 'GET',
      url: '/jobs?idempotency_key=k-1',
      headers: bearer('read'),
    })
    expect(list.json().items).toHaveLength(1)
    expect(list.json().items[0].id).toBe(again.json().id)
  })

  it('asks for more replicas than there are: 503, never a silent success', async () => {
    api = await apiSetup({ enqueueWaitReplicas: 2, enqueueWaitTimeoutMs: 200 }, { url: primary.url })
    const res = await post(api, { task_type: 'echo' })
    expect(res.statusCode).toBe(503)
    expect(res.json().message).toMatch(/1 of 2 replicas confirmed/)
  })

  it('NEGATIVE CONTROL (off): the same stopped replica, and the enqueue is answered 201 without it', async () => {
    api = await apiSetup({ enqueueWaitReplicas: 0 }, { url: primary.url })
    process.kill(replica.pid!, 'SIGSTOP')
    const res = await post(api, { task_type: 'echo' })
    expect(res.statusCode).toBe(201) // acknowledged while no replica can have it
  })
})
