/**
 * Schedules against Redis (ADR 0018), on a fake clock: fires through daylight-saving days, the
 * overlap and misfire policies, pause/resume/trigger, the run limit, bad input writing
 * nothing -- and the race: several runners (each with its own store) firing the same schedule
 * at once make exactly one job per fire time, while without the compare-and-set
 * (DTQ_UNSAFE=no-schedule-cas) the same race makes duplicates.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { DtqError } from '../src/errors.ts'
import { Queue } from '../src/queue/queue.ts'
import type { ScheduleSpec } from '../src/queue/schedule.ts'
import { connectRedis, createRedis, redisTarget } from '../src/redis/connection.ts'
import { fireWithoutCas } from '../src/unsafe.ts'
import { ScheduleRunner } from '../src/worker/schedule-runner.ts'
import { type Bundle, FakeClock, setup } from './helpers.ts'

const Q = 'sched'
let b: Bundle
let clock: FakeClock

beforeEach(async () => {
  clock = new FakeClock(Date.UTC(2026, 0, 1))
  b = await setup({ clock })
})
afterEach(async () => {
  await b.cleanup()
})

function runner(queue = b.queue, unsafe = false): ScheduleRunner {
  return new ScheduleRunner({
    schedules: queue.schedules.store,
    clock,
    onError: (err) => {
      throw err
    },
    fire: unsafe ? fireWithoutCas : undefined,
  })
}
const spec = (s: Partial<ScheduleSpec>): ScheduleSpec => ({ job: { task_type: 'tick', queue: Q }, ...s })

/** The jobs of the queue made by schedule `name`, by the fire time its history gives them. */
async function jobsPerFire(name: string): Promise<Map<number, number>> {
  const s = await b.queue.getSchedule(name)
  const per = new Map<number, number>()
  for (const h of s!.history) if (h.job_id) per.set(h.at, (per.get(h.at) ?? 0) + 1)
  return per
}

/** Steps the clock from its time to `to` by `step` ms, ticking the runner each step. */
async function runUntil(r: ScheduleRunner, to: number, step: number): Promise<void> {
  while (clock.t < to) {
    clock.advance(step)
    await r.tick()
  }
}

describe('schedules', () => {
  it('upserts, reads back with its next five times and makes normal jobs naming the schedule', async () => {
    const s = await b.queue.upsertSchedule('nightly', spec({ cron: '0 30 2 * * *', tz: 'Europe/Berlin' }))
    expect(s).toMatchObject({ name: 'nightly', queue: Q, paused: false, runs: 0, history: [] })
    expect(s.next_runs.map((t) => new Date(t).toISOString())).toEqual([
      '2026-01-01T01:30:00.000Z',
      '2026-01-02T01:30:00.000Z',
      '2026-01-03T01:30:00.000Z',
      '2026-01-04T01:30:00.000Z',
      '2026-01-05T01:30:00.000Z',
    ])
    clock.t = s.next_fire!
    expect(await runner().tick()).toBe(1)
    const after = (await b.queue.getSchedule('nightly'))!
    expect(after).toMatchObject({ runs: 1, last_fire: s.next_fire, last_outcome: 'queued' })
    expect(after.history[0]).toMatchObject({ at: s.next_fire, outcome: 'job', job_state: 'queued' })
    const job = await b.queue.getJob(after.history[0]!.job_id!, Q)
    expect(job).toMatchObject({ task_type: 'tick', state: 'queued', schedule: 'nightly' })
    expect((await b.queue.listSchedules()).map((x) => x.name)).toEqual(['nightly'])
  })

  it('fires once per day through both 2026 DST changes in Europe/Berlin, and hourly jobs 23 and 25 times', async () => {
    clock.t = Date.UTC(2026, 2, 28, 23) // Berlin midnight, 29 March
    await b.queue.upsertSchedule('daily', spec({ cron: '0 30 2 * * *', tz: 'Europe/Berlin' }))
    await b.queue.upsertSchedule('hourly', spec({ cron: '0 0 * * * *', tz: 'Europe/Berlin' }))
    const r = runner()
    await runUntil(r, Date.UTC(2026, 2, 29, 22), 60_000)
    expect((await jobsPerFire('daily')).size).toBe(1)
    expect((await jobsPerFire('hourly')).size).toBe(23)
    clock.t = Date.UTC(2026, 9, 24, 22) // Berlin midnight, 25 October (resume: missed time not run)
    await b.queue.pauseSchedule('daily')
    await b.queue.resumeSchedule('daily')
    await b.queue.pauseSchedule('hourly')
    await b.queue.resumeSchedule('hourly')
    await runUntil(r, Date.UTC(2026, 9, 25, 23), 60_000)
    expect((await jobsPerFire('daily')).size).toBe(2)
    expect((await jobsPerFire('hourly')).size).toBe(23 + 25)
    const daily = (await b.queue.getSchedule('daily'))!
    expect(daily.history.map((h) => new Date(h.at).toISOString())).toEqual([
      '2026-10-25T00:30:00.000Z',
      '2026-03-29T01:00:00.000Z',
    ])
  })

  it('overlap: skip while the last job waits or runs, queue_one while it waits, allow always', async () => {
    for (const overlap of ['skip', 'queue_one', 'allow'] as const)
      await b.queue.upsertSchedule(overlap, spec({ every_ms: 1000, overlap }))
    const r = runner()
    await runUntil(r, clock.t + 3000, 1000)
    const outcomes = async (n: string) =>
      (await b.queue.getSchedule(n))!.history.map((h) => h.outcome).reverse()
    expect(await outcomes('skip')).toEqual(['job', 'skipped_overlap', 'skipped_overlap'])
    expect(await outcomes('queue_one')).toEqual(['job', 'skipped_overlap', 'skipped_overlap'])
    expect(await outcomes('allow')).toEqual(['job', 'job', 'job'])
    // Their jobs start (a worker takes them): queue_one may queue one more, skip still waits.
    await b.queue.store.ensureGroups(Q)
    await b.queue.store.deliver(Q, 'c1', 100)
    await runUntil(r, clock.t + 1000, 1000)
    expect((await outcomes('skip')).at(-1)).toBe('skipped_overlap')
    expect((await outcomes('queue_one')).at(-1)).toBe('job')
  })

  it('misfire after downtime: skip records the miss, run_once makes one job, catch_up the last N', async () => {
    const base = { every_ms: 1000, misfire_grace_ms: 5000 }
    await b.queue.upsertSchedule('m-skip', spec({ ...base, misfire: 'skip' }))
    await b.queue.upsertSchedule('m-once', spec({ ...base, misfire: 'run_once' }))
    await b.queue.upsertSchedule('m-catch', spec({ ...base, misfire: 'catch_up', catch_up_max: 4 }))
    const down = clock.t
    clock.advance(60_000) // every runner was down for a minute
    await runner().tick()
    const h = async (n: string) => (await b.queue.getSchedule(n))!.history
    expect(await h('m-skip')).toMatchObject([{ at: down + 1000, job_id: null, outcome: 'missed' }])
    expect(await h('m-once')).toMatchObject([{ at: down + 60_000, outcome: 'missed_run' }])
    expect((await h('m-catch')).map((x) => x.at - down).reverse()).toEqual([57_000, 58_000, 59_000, 60_000])
    for (const n of ['m-skip', 'm-once', 'm-catch'])
      expect((await b.queue.getSchedule(n))!.next_fire).toBe(down + 61_000)
  })

  it('pause stops fires, trigger makes one job without moving next_fire, max_runs ends it, remove deletes it', async () => {
    await b.queue.upsertSchedule('lim', spec({ every_ms: 1000, max_runs: 2 }))
    const r = runner()
    await b.queue.pauseSchedule('lim')
    await runUntil(r, clock.t + 3000, 1000)
    expect((await b.queue.getSchedule('lim'))!.runs).toBe(0)
    const next = (await b.queue.getSchedule('lim'))!.next_fire
    const t = await b.queue.triggerSchedule('lim')
    expect(t.schedule).toMatchObject({ next_fire: next, runs: 0, last_job: t.job_id })
    expect(t.schedule.history[0]).toMatchObject({ job_id: t.job_id, outcome: 'triggered' })
    // A replacement keeps the paused flag unless it says otherwise.
    expect(await b.queue.upsertSchedule('lim', spec({ every_ms: 1000, max_runs: 2 }))).toMatchObject({
      paused: true,
    })
    await b.queue.resumeSchedule('lim')
    await runUntil(r, clock.t + 5000, 1000)
    const s = (await b.queue.getSchedule('lim'))!
    expect(s).toMatchObject({ runs: 2, next_fire: null, next_runs: [] })
    await b.queue.removeSchedule('lim')
    expect(await b.queue.getSchedule('lim')).toBeNull()
    expect((await b.keys()).filter((k) => k.includes(':sched'))).toEqual([])
    await expect(b.queue.removeSchedule('lim')).rejects.toMatchObject({ code: 'NOT_FOUND' })
  })

  it('bad input is refused with its reasons and writes nothing', async () => {
    const cases: Array<[string, unknown, RegExp]> = [
      ['a', spec({ cron: 'every day' }), /cron/],
      ['a', spec({ cron: '* * * * *', tz: 'Nowhere/City' }), /IANA/],
      ['a', spec({ every_ms: 5 }), /every_ms/],
      [
        'a',
        spec({ every_ms: 1000, end_at: '2026-01-01T00:00:00Z', start_at: '2026-02-01T00:00:00Z' }),
        /end_at/,
      ],
      ['a', { ...spec({ every_ms: 1000 }), extra: 1 }, /extra is not a known field/],
      ['a', { every_ms: 1000, job: { task_type: 'bad type!' } }, /job.task_type/],
      ['a', { every_ms: 1000, job: { task_type: 't', queue: 'a:b' } }, /job.queue/],
      ['bad/name', spec({ every_ms: 1000 }), /name must be/],
    ]
    for (const [name, s, why] of cases) {
      const err = await b.queue.upsertSchedule(name, s as ScheduleSpec).catch((e) => e)
      expect(err).toBeInstanceOf(DtqError)
      expect(err.code).toBe('VALIDATION')
      expect(err.message).toMatch(why)
    }
    expect(await b.keys()).toEqual([])
  })

  it('a schedule that cannot fire holds up no other', async () => {
    await b.queue.upsertSchedule('a-broken', spec({ every_ms: 1000 }))
    await b.queue.upsertSchedule('b-fine', spec({ every_ms: 1000 }))
    // A foreign value where the broken schedule's template is: its fire call fails in Redis.
    await b.redis.hset(b.queue.store.keys.schedule(Q, 'a-broken'), 'tpl', 'not json')
    const errors: string[] = []
    const r = new ScheduleRunner({
      schedules: b.queue.schedules.store,
      clock,
      onError: (_err, name) => errors.push(name),
    })
    clock.advance(1000)
    expect(await r.tick()).toBe(1)
    expect(errors).toEqual(['schedule a-broken'])
    expect((await b.queue.getSchedule('b-fine'))!.runs).toBe(1)
  })

  describe('racing runners', () => {
    /** Runners with stores of their own, each on its own connection. */
    async function runners(n: number, unsafe: boolean) {
      const out: Array<{ q: Queue; r: ScheduleRunner }> = []
      for (let i = 0; i < n; i++) {
        const redis = createRedis({ target: redisTarget(b.config), commandTimeoutMs: 5000 })
        await connectRedis(redis)
        const q = new Queue(redis, b.config, { clock, ownsRedis: true })
        out.push({ q, r: runner(q, unsafe) })
      }
      return out
    }

    async function race(unsafe: boolean, rounds: number) {
      await b.queue.upsertSchedule('race', spec({ every_ms: 1000 }))
      const rs = await runners(4, unsafe)
      try {
        for (let i = 0; i < rounds; i++) {
          clock.advance(1000)
          await Promise.all(rs.map(({ r }) => r.tick()))
        }
      } finally {
        await Promise.all(rs.map(({ q }) => q.close()))
      }
      const jobs = await b.queue.listJobs({ queue: Q, limit: 1000 })
      const lost = rs.reduce((n, { r }) => n + r.lost, 0)
      return { per: await jobsPerFire('race'), jobs: jobs.items.length, lost }
    }

    it('4 runners, 25 rounds: exactly one job per fire time', async () => {
      const { per, jobs, lost } = await race(false, 25)
      // They did race: the compare turned the other runners' calls away (up to 3 per round).
      expect(lost).toBeGreaterThan(25)
      expect(per.size).toBe(25)
      expect([...per.values()].every((n) => n === 1)).toBe(true)
      expect(jobs).toBe(25)
    })

    it('NEGATIVE CONTROL: without the compare-and-set the same race makes duplicates', async () => {
      const { per, jobs } = await race(true, 25)
      expect(jobs).toBeGreaterThan(25)
      expect([...per.values()].some((n) => n > 1)).toBe(true)
    })
  })
})
