/**
 * The history archiver under faults (ADR 0027): real `dtq api`, `dtq worker` and `dtq archiver`
 * processes over a private redis-server, and a private PostgreSQL server. Under HTTP load the
 * archivers are killed -9 and restarted, and PostgreSQL is stopped (immediate: connections cut)
 * and started again, with a completed retention of 1 s -- far shorter than the outage -- so
 * retention runs while jobs wait for the archiver. The checker compares the load's ledger (what
 * the API accepted) with PostgreSQL: every accepted job has exactly one row in `jobs`, in the
 * state it ended in, and no row is unknown.
 *
 * NEGATIVE CONTROL: the same run with the retention hold off in the workers
 * (DTQ_UNSAFE=no-archive-hold) must lose jobs: retention removes them before they are archived.
 */

import pg from 'pg'
import { afterEach, describe, expect, it } from 'vitest'
import { Keys } from '../../src/redis/keys.ts'
import { waitFor } from '../helpers.ts'
import { hasPrivatePostgres, PrivatePostgres } from '../postgres.ts'
import { launch } from '../processes.ts'
import { FULL, LoadGenerator, type Proc, Q, RedisServer, report, System } from './harness.ts'

const cleanups: Array<() => unknown> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
/** Every tenth job fails for good (a dead letter: archived as failed); the rest complete. */
const job = (id: string) =>
  Number(id.slice(id.lastIndexOf('-') + 1)) % 10 === 0
    ? { task_type: 'fail', payload: { permanent: true, message: 'chaos failure' }, max_retries: 0 }
    : { task_type: 'ledger', payload: { ms: 5 } }

interface Run {
  accepted: string[]
  rows: Map<string, { n: number; state: string }>
  /** Attempts written more than once. */
  doubledAttempts: number
  expectedFailed: number
  kills: number
  outages: number
  backlogAtEnd: number
}

async function scenario(unsafe: boolean): Promise<Run> {
  const redis = await RedisServer.start()
  cleanups.push(() => redis.stop())
  const db = await PrivatePostgres.create()
  cleanups.push(() => db.destroy())
  const sys = new System(redis.url, {
    DATABASE_URL: db.url,
    HISTORY_SCHEMA: 'dtq',
    ARCHIVER_BATCH: '100',
    ARCHIVER_CLAIM_IDLE_MS: '1500',
    COMPLETED_RETENTION_S: '1',
  })
  cleanups.push(() => sys.stop())
  await sys.connect()
  const archiver = (): Proc => {
    const p = launch(['archiver'], sys.env)
    sys.procs.push(p)
    return p
  }
  const { url } = await sys.api()
  const workerEnv: Record<string, string> = unsafe ? { DTQ_UNSAFE: 'no-archive-hold' } : {}
  sys.worker(workerEnv)
  sys.worker(workerEnv)
  const archivers = [archiver(), archiver()]
  // The queue exists and an archiver has switched archiving on in it before the load starts (a
  // queue an archiver has not seen yet is archived from its next registry scan: ADR 0027).
  const keys = new Keys(sys.prefix)
  await fetch(`${url}/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ task_type: 'echo', payload: {}, job_id: 'first' }),
  })
  // (The processes' start: up to a minute on a loaded machine.)
  await waitFor(async () => (await sys.redis.exists(keys.archiveOn(Q))) === 1, {
    what: 'archiving on',
    timeoutMs: 60_000,
  })
  const load = new LoadGenerator(url, job, 100)
  const running = load.run()
  const rounds = FULL ? 6 : 1
  let kills = 0
  let outages = 0
  for (let r = 0; r < rounds; r++) {
    // kill -9 an archiver mid-batch, start another in its place.
    await sleep(1500)
    const i = r % archivers.length
    archivers[i]!.child.kill('SIGKILL')
    await archivers[i]!.exited
    kills++
    archivers[i] = archiver()
    // PostgreSQL gone for 3 s (three retention periods).
    await sleep(1000)
    await db.stop()
    outages++
    await sleep(3000)
    await db.start()
  }
  await sleep(1000)
  load.stop()
  await running
  await load.resolveIndeterminate()
  await sys.drained()
  // Everything archived: the archive stream is empty (or stuck: then the check below says so).
  let backlogAtEnd = -1
  await waitFor(
    async () => {
      backlogAtEnd = await sys.redis.xlen(keys.archive(Q))
      return backlogAtEnd === 0
    },
    { timeoutMs: 60_000, what: 'archive drained' },
  ).catch(() => {})
  const client = new pg.Client({ connectionString: db.url })
  await client.connect()
  const { rows } = await client.query<{ job_id: string; n: number; state: string }>(
    'SELECT job_id, count(*)::int AS n, max(state) AS state FROM dtq.jobs GROUP BY job_id',
  )
  // An attempt's row is keyed by its end time too (the partitioning): a second write of one
  // attempt with another time would not collide, so the doubles are counted here.
  const attempts = await client.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM (SELECT 1 FROM dtq.attempts GROUP BY queue, job_id, attempt HAVING count(*) > 1) d',
  )
  await client.end()
  const accepted = load.accepted
  if (process.env.CHAOS_DEBUG) {
    const lostIds = accepted.filter((id) => !rows.some((r) => r.job_id === id))
    console.log(
      'lost sample',
      lostIds.slice(0, 5),
      lostIds.slice(-5),
      'of',
      accepted.slice(0, 2),
      accepted.slice(-2),
    )
    console.log(await sys.redis.hgetall(keys.archivers()))
    for (const p of archivers) console.log(p.output().slice(-2000))
  }
  return {
    accepted,
    rows: new Map(rows.map((r) => [r.job_id, { n: r.n, state: r.state }])),
    doubledAttempts: attempts.rows[0]!.n,
    expectedFailed: accepted.filter((id) => job(id).task_type === 'fail').length,
    kills,
    outages,
    backlogAtEnd,
  }
}

function check(run: Run) {
  let lost = 0
  let doubled = 0
  let wrongState = 0
  for (const id of run.accepted) {
    const row = run.rows.get(id)
    if (!row) lost++
    else {
      if (row.n !== 1) doubled++
      if (row.state !== (job(id).task_type === 'fail' ? 'failed' : 'completed')) wrongState++
    }
  }
  const known = new Set([...run.accepted, 'first'])
  const unexpected = [...run.rows.keys()].filter((id) => !known.has(id)).length
  return {
    accepted: run.accepted.length,
    lost,
    doubled,
    doubledAttempts: run.doubledAttempts,
    wrongState,
    unexpected,
  }
}

describe.runIf(hasPrivatePostgres())('archiver faults', () => {
  it('kill -9 archivers and stop PostgreSQL under load: every finished job in PostgreSQL once', async () => {
    const run = await scenario(false)
    const v = check(run)
    report('archiver kill -9 + PostgreSQL outage', { ...v, kills: run.kills, outages: run.outages })
    expect(v.accepted).toBeGreaterThan(300)
    expect(run.backlogAtEnd).toBe(0)
    expect(v).toMatchObject({ lost: 0, doubled: 0, doubledAttempts: 0, wrongState: 0, unexpected: 0 })
  }, 240_000)

  it('negative control: without the retention hold, jobs are lost', async () => {
    const run = await scenario(true)
    const v = check(run)
    report('archiver, no-archive-hold (negative control)', v)
    expect(v.lost).toBeGreaterThan(0)
  }, 240_000)
})
