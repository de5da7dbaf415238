/**
 * Schedule time arithmetic (pure): cron with and without seconds in a zone, every_ms, the
 * start/end window, daylight-saving days in Europe/Berlin, and the misfire plans.
 */
import { describe, expect, it } from 'vitest'
import { buildDef, latestFires, nextFireAfter, nextFires, planFire, type ScheduleSpec } from './schedule.ts'

const T0 = Date.UTC(2026, 0, 1)
function def(spec: Partial<ScheduleSpec>, now = T0) {
  const problems: string[] = []
  const d = buildDef(problems, 's', 'default', { job: { task_type: 't' }, ...spec }, now)
  if (!d) throw new Error(problems.join('; '))
  return d
}
const iso = (ts: number[]) => ts.map((t) => new Date(t).toISOString())
/** Fire times within [from, to). */
function firesBetween(d: ReturnType<typeof def>, from: number, to: number): number[] {
  return nextFires(d, from - 1, 1000).filter((t) => t < to)
}

describe('schedule times', () => {
  it('reads 6 fields with seconds and 5 without, in the zone', () => {
    const d6 = def({ cron: '15 30 9 * * *', tz: 'America/New_York' })
    expect(iso(nextFires(d6, T0, 2))).toEqual(['2026-01-01T14:30:15.000Z', '2026-01-02T14:30:15.000Z'])
    const d5 = def({ cron: '30 9 * * 1', tz: 'Asia/Tokyo' })
    expect(iso(nextFires(d5, T0, 1))).toEqual(['2026-01-05T00:30:00.000Z'])
  })

  it('Europe/Berlin spring forward (2026-03-29 02:00 → 03:00): a daily 02:30 fires once, an hourly job 23 times', () => {
    const day = [Date.UTC(2026, 2, 28, 23), Date.UTC(2026, 2, 29, 22)] as const // local midnight to midnight
    const daily = def({ cron: '0 30 2 * * *', tz: 'Europe/Berlin' })
    expect(iso(firesBetween(daily, ...day))).toEqual(['2026-03-29T01:00:00.000Z']) // 03:00 CEST
    const hourly = def({ cron: '0 * * * *', tz: 'Europe/Berlin' })
    expect(firesBetween(hourly, ...day)).toHaveLength(23)
  })

  it('Europe/Berlin fall back (2026-10-25 03:00 → 02:00): a daily 02:30 fires once, an hourly job 25 times', () => {
    const day = [Date.UTC(2026, 9, 24, 22), Date.UTC(2026, 9, 25, 23)] as const
    const daily = def({ cron: '0 30 2 * * *', tz: 'Europe/Berlin' })
    expect(iso(firesBetween(daily, ...day))).toEqual(['2026-10-25T00:30:00.000Z']) // 02:30 CEST, once
    const hourly = def({ cron: '0 0 * * * *', tz: 'Europe/Berlin' })
    expect(firesBetween(hourly, ...day)).toHaveLength(25)
  })

  it('every_ms counts from start_at (or creation), within the window', () => {
    const d = def({ every_ms: 60_000, start_at: T0 + 30_000, end_at: T0 + 200_000 })
    expect(nextFires(d, T0, 10).map((t) => t - T0)).toEqual([30_000, 90_000, 150_000])
    expect(nextFireAfter(d, T0 + 150_000)).toBeNull()
    const c = def({ cron: '0 0 * * * *', start_at: '2026-01-02T00:00:00Z' })
    expect(iso(nextFires(c, T0, 1))).toEqual(['2026-01-02T00:00:00.000Z'])
  })

  it('latestFires gives the most recent missed times, oldest first', () => {
    const d = def({ cron: '*/10 * * * * *' })
    expect(latestFires(d, T0, T0 + 60_000, 3).map((t) => t - T0)).toEqual([40_000, 50_000, 60_000])
    const e = def({ every_ms: 10_000 })
    expect(latestFires(e, T0, T0 + 60_000, 3).map((t) => t - T0)).toEqual([40_000, 50_000, 60_000])
  })

  it('plans: on time one fire; after downtime skip, run_once or catch_up', () => {
    const spec = { every_ms: 1000, misfire_grace_ms: 5000 }
    expect(planFire(def(spec), T0 + 1000, T0 + 500)).toBeNull()
    expect(planFire(def(spec), T0 + 1000, T0 + 3000)).toEqual({
      expected: T0 + 1000,
      fires: [T0 + 1000],
      next: T0 + 2000,
      missed: false,
    })
    const late = T0 + 60_500
    expect(planFire(def({ ...spec, misfire: 'skip' }), T0 + 1000, late)).toMatchObject({
      fires: [],
      next: T0 + 61_000,
    })
    expect(planFire(def({ ...spec, misfire: 'run_once' }), T0 + 1000, late)?.fires).toEqual([T0 + 60_000])
    expect(planFire(def({ ...spec, misfire: 'catch_up', catch_up_max: 3 }), T0 + 1000, late)?.fires).toEqual([
      T0 + 58_000,
      T0 + 59_000,
      T0 + 60_000,
    ])
  })

  it('refuses bad input with a clear reason', () => {
    const bad = (spec: Record<string, unknown>) => {
      const problems: string[] = []
      buildDef(problems, 's', 'q', { job: { task_type: 't' }, ...spec } as ScheduleSpec, T0)
      return problems.join('; ')
    }
    expect(bad({ cron: 'nope' })).toMatch(/cron/)
    expect(bad({ cron: '* * * *' })).toMatch(/5 fields, or 6/)
    expect(bad({ cron: '61 * * * * *' })).toMatch(/cron/)
    expect(bad({ cron: '* * * * *', tz: 'Mars/Base' })).toMatch(/tz must be an IANA time zone/)
    expect(bad({ every_ms: 10 })).toMatch(/every_ms must be an integer from 1000/)
    expect(bad({})).toMatch(/give cron or every_ms/)
    expect(bad({ cron: '* * * * *', every_ms: 1000 })).toMatch(/give cron or every_ms/)
    expect(bad({ every_ms: 1000, start_at: T0 + 10, end_at: T0 })).toMatch(/end_at must be after start_at/)
    expect(bad({ every_ms: 1000, colour: 'red' })).toMatch(/colour is not a known field/)
    expect(bad({ every_ms: 1000, job: { task_type: 't', id: 'x' } })).toMatch(
      /job.id is not a template field/,
    )
    expect(bad({ every_ms: 1000, overlap: 'sometimes' })).toMatch(/overlap must be one of/)
  })
})
