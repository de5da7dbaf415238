/**
 * NEGATIVE CONTROLS ONLY. The safety mechanisms of DTQ switched off, one by one, so the fault
 * tests can show that each one matters (the same scenario with the mechanism off must fail).
 * Only the CLI (`DTQ_UNSAFE`, documented as for tests) and the tests import this module:
 * production code never does -- the Worker takes what it is given in `WorkerOptions.unsafe`.
 */
import { nodeJobId } from './queue/flows.ts'
import { F, type Priority, pairsToRecord } from './queue/job.ts'
import type { FirePlan } from './queue/schedule.ts'
import type { AlertStore, WriteResult } from './redis/alerts.ts'
import type { FlowStore } from './redis/flows.ts'
import type { ScheduleStore } from './redis/schedules.ts'
import { setLibraryOptions } from './redis/scripts.ts'
import type { Clock, JobStore, ScheduleFireReply } from './redis/store.ts'
import type { WorkerOptions } from './worker/worker.ts'

/** no-delayed-gating: the promote step without the ZREM gate, as separate commands. */
export async function promoteUngated(
  store: JobStore,
  queue: string,
  limit: number,
): Promise<{ moved: number; nextDue: number | null }> {
  const { redis, keys } = store
  const now = store.clock.now()
  const ids = await redis.zrangebyscore(keys.delayed(queue), '-inf', now, 'LIMIT', 0, limit)
  for (const id of ids) {
    const [prio] = await redis.hmget(keys.job(queue, id), F.priority)
    const entry = await redis.xadd(keys.stream(queue, (prio as Priority) ?? 'normal'), '*', 'id', id)
    await redis.hset(keys.job(queue, id), F.state, 'queued', F.entry, entry ?? '', F.queued_at, now)
    await redis.zrem(keys.delayed(queue), id)
  }
  const next = await redis.zrange(keys.delayed(queue), 0, 0, 'WITHSCORES')
  return { moved: ids.length, nextDue: next[1] ? Number(next[1]) : null }
}

/** no-fencing: the epoch to write an outcome under -- the current one, whoever owns the job. */
export async function currentEpoch(store: JobStore, queue: string, id: string): Promise<number> {
  return Number(await store.redis.hget(store.keys.job(queue, id), F.epoch))
}

/**
 * no-schedule-cas: a fire without the compare -- the jobs made unconditionally (the function's
 * trigger mode), then next_fire moved by a separate command: what a scheduler that reads
 * "due", makes the job and writes the next time does. Racing runners each make a job.
 */
const CONTROL_GAP_MS = 250

export async function fireWithoutCas(
  schedules: ScheduleStore,
  queue: string,
  name: string,
  plan: FirePlan,
): Promise<ScheduleFireReply> {
  const r = await schedules.fire(queue, name, { mode: 'trigger', fires: plan.fires })
  // The gap a real read-make-write scheduler has between its steps (a round trip or a GC pause
  // on a loaded host): without it a race between runners polling a second apart is rare enough
  // that a short control on a busy CI machine could see none, and prove nothing.
  await new Promise((done) => setTimeout(done, CONTROL_GAP_MS))
  await schedules.redis.hset(schedules.keys.schedule(queue, name), 'next', plan.next ?? '')
  return { ...r, next: plan.next }
}

/**
 * flow-early-release: drains a flow outbox without flow_release -- a waiting child is queued
 * as soon as any one parent completes (no count of parents), in separate commands.
 */
export async function releaseEarly(flows: FlowStore, queue: string): Promise<number> {
  const { redis, keys } = flows
  const outbox = keys.flowOut(queue)
  const page = await redis.xrange(outbox, '-', '+', 'COUNT', 100)
  for (const [entry, fields] of page) {
    const e = pairsToRecord(fields)
    const list = e.o === 'completed' ? await redis.hget(keys.flow(e.f ?? ''), `c:${e.n}`) : null
    const children: unknown = JSON.parse(list ?? '[]') // (an empty list is stored as {})
    for (const [key, q] of Array.isArray(children) ? (children as string[][]) : []) {
      const id = nodeJobId(e.f ?? '', key!)
      const [state, prio] = await redis.hmget(keys.job(q!, id), F.state, F.priority)
      if (state !== 'waiting') continue
      const ready = await redis.xadd(keys.stream(q!, (prio as Priority) ?? 'normal'), '*', 'id', id)
      await redis.hset(keys.job(q!, id), F.state, 'queued', F.entry, ready ?? '')
    }
    await redis.xdel(outbox, entry)
  }
  return page.length
}

/**
 * NEGATIVE CONTROL ONLY (DTQ_UNSAFE=no-clock-sync): this machine's clock, shifted by the test
 * skew, uncorrected -- what every process used before Redis's clock became the time base.
 */
export function localClock(skewMs: number): Clock {
  return { now: () => Date.now() + skewMs }
}

/**
 * The worker options for a set of DTQ_UNSAFE switches. `no-oom-flags`, `no-archive-hold`
 * (retention does not wait for the archiver, ADR 0027) and `no-created-building-index` (jobs
 * created during the created-time index's backfill are not indexed, ADR 0035) change the function
 * library of the whole process, so call this before any store is made; `no-clock-sync` is the
 * CLI's (it chooses the clock).
 */
export function unsafeWorkerOptions(names: ReadonlySet<string>): WorkerOptions['unsafe'] {
  if (names.has('no-oom-flags') || names.has('no-archive-hold') || names.has('no-created-building-index'))
    setLibraryOptions({
      noOomFlags: names.has('no-oom-flags'),
      noArchiveHold: names.has('no-archive-hold'),
      noCreatedWhileBuilding: names.has('no-created-building-index'),
    })
  return {
    noLeaseRenewal: names.has('no-lease-renewal'),
    noHandback: names.has('no-handback'),
    noLeader: names.has('no-leader'),
    noMemoryRelief: names.has('no-memory-relief'),
    promote: names.has('no-delayed-gating') ? promoteUngated : undefined,
    epochOf: names.has('no-fencing') ? currentEpoch : undefined,
    flowDrain: names.has('flow-early-release') ? releaseEarly : undefined,
    scheduleFire: names.has('no-schedule-cas') ? fireWithoutCas : undefined,
  }
}

/**
 * no-alert-lease: alerting as if there were no lease and no compare-and-set -- every process
 * evaluates, and a transition is written with plain commands (value, then notification), after
 * a 100 ms stall (a GC pause, a slow round trip under load) between its read and its write.
 */
export function unfencedAlerts(store: AlertStore): {
  everyProcess: true
  write: (o: Parameters<AlertStore['write']>[0]) => Promise<WriteResult>
} {
  return {
    everyProcess: true,
    write: async (o) => {
      await new Promise((r) => setTimeout(r, 100))
      const key = store.key(o.hash === ':state' ? 'state' : 'meta')
      if (o.value === null) await store.redis.hdel(key, o.field)
      else await store.redis.hset(key, o.field, o.value)
      if (o.notification) await store.notify(o.notification)
      return 'written'
    },
  }
}
