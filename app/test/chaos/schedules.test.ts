/**
 * Schedules under kill -9 (ADR 0018): three schedule runners -- a `dtq api` and two `dtq worker`
 * processes -- fire every-second schedules while one of them is killed -9 and restarted, over
 * and over. Checked from the jobs themselves (each names its schedule and fire time): every
 * fire time from a schedule's first to its last produced exactly one job -- no duplicate, no
 * gap. The NEGATIVE CONTROL runs the same with the compare-and-set off
 * (DTQ_UNSAFE=no-schedule-cas) and must show duplicates. CHAOS_FULL=1 runs longer.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { F } from '../../src/queue/job.ts'
import { scanKeys } from '../../src/redis/connection.ts'
import { FULL, type Proc, Q, RedisServer, report, System } from './harness.ts'

const cleanups: Array<() => unknown> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const SCHEDULES = 10

/** Jobs per fire time of each schedule, read from the job hashes (not from the history). */
async function jobsPerFire(sys: System): Promise<Map<string, Map<number, number>>> {
  const out = new Map<string, Map<number, number>>()
  await scanKeys(sys.redis, `${sys.keys.base(Q)}:job:*`, async (keys) => {
    for (const k of keys) {
      const [name, at] = await sys.redis.hmget(k, F.schedule, F.fired_at)
      if (!name || !at) continue
      const per = out.get(name) ?? new Map<number, number>()
      per.set(Number(at), (per.get(Number(at)) ?? 0) + 1)
      out.set(name, per)
    }
  })
  return out
}

describe('schedule faults', () => {
  for (const control of [false, true]) {
    const title = control
      ? 'NEGATIVE CONTROL (no compare-and-set): racing runners make duplicate jobs'
      : 'three runners (api + 2 workers), one killed -9 again and again: exactly one job per fire time, no gaps'
    // The control needs no faults (racing runners are enough), so it stays short in a FULL run.
    const seconds = control ? 8 : FULL ? 120 : 20
    it(title, { timeout: (seconds + 60) * 1000 }, async () => {
      const redis = await RedisServer.start()
      cleanups.push(() => redis.stop())
      const sys = new System(redis.url, control ? { DTQ_UNSAFE: 'no-schedule-cas' } : {})
      cleanups.push(() => sys.stop())
      await sys.connect()
      let api = await sys.api()
      for (let i = 0; i < SCHEDULES; i++) {
        const r = await fetch(`${api.url}/schedules/every-${i}`, {
          method: 'PUT',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ every_ms: 1000, job: { task_type: 'echo', queue: Q, payload: { i } } }),
        })
        expect(r.status).toBe(200)
      }
      const runners: Proc[] = [api.proc, sys.worker(), sys.worker()]
      const kills = { api: 0, worker: 0 }
      const started = Date.now()
      // At least 5 kills however slow the machine (a loaded one kills less often per second).
      for (let k = 0; Date.now() - started < seconds * 1000 || (!control && k < 5); k++) {
        await sleep(2000 + Math.random() * 1000)
        if (control) continue // the control needs no faults: racing runners are enough
        const v = k % runners.length
        runners[v]!.child.kill('SIGKILL')
        await runners[v]!.exited
        if (v === 0) {
          kills.api++
          api = await sys.api()
          runners[0] = api.proc
        } else {
          kills.worker++
          runners[v] = sys.worker()
        }
      }
      // Stop firing, then compare what was made with what should have been.
      for (const p of runners) p.child.kill('SIGKILL')
      await Promise.all(runners.map((p) => p.exited))
      const per = await jobsPerFire(sys)
      let fires = 0
      let duplicated = 0
      let gaps = 0
      for (let i = 0; i < SCHEDULES; i++) {
        const times = per.get(`every-${i}`) ?? new Map<number, number>()
        const sorted = [...times.keys()].sort((a, b) => a - b)
        fires += sorted.length
        for (const n of times.values()) if (n > 1) duplicated += n - 1
        for (let j = 1; j < sorted.length; j++) gaps += (sorted[j]! - sorted[j - 1]!) / 1000 - 1
        // The stored next_fire is the time after the last one fired.
        const next = Number(await sys.redis.hget(sys.keys.schedule(Q, `every-${i}`), 'next'))
        if (sorted.length) gaps += (next - sorted.at(-1)!) / 1000 - 1
      }
      report(`schedules${control ? ' (no CAS)' : ''}`, {
        schedules: SCHEDULES,
        seconds,
        fires,
        duplicated,
        gaps,
        ...kills,
      })
      if (control) {
        expect(duplicated, 'runners without the compare-and-set fire the same time twice').toBeGreaterThan(0)
        return
      }
      expect(fires).toBeGreaterThanOrEqual(SCHEDULES * (seconds - 6))
      expect(duplicated).toBe(0)
      expect(gaps).toBe(0)
      expect(kills.api + kills.worker).toBeGreaterThanOrEqual(5)
    })
  }
})
