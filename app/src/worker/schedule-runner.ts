/**
 * The schedule runner (ADR 0018): fires due schedules. Every worker and every API process runs
 * one -- no lease: any number of runners may fire the same time, since `schedule_fire`
 * compares the schedule's stored next_fire with the time the runner planned from and only the
 * first call finds it. A tick reads the registry and each schedule's next_fire (Redis's time,
 * the store's clock: ADR 0012), plans due ones in JS (cron, time zone, misfire policy:
 * queue/schedule.ts) and calls the function; polls every ~1 s with jitter, so runners do not
 * all call at the same instant.
 */
import { type FirePlan, planFire } from '../queue/schedule.ts'
import type { ScheduleStore } from '../redis/schedules.ts'
import type { Clock, ScheduleFireReply } from '../redis/store.ts'
import { Ticker } from './ticker.ts'

export interface ScheduleRunnerOptions {
  schedules: ScheduleStore
  clock: Clock
  /** Poll period (default 1000 ms; each wait is ±20 % of it). */
  pollMs?: number
  onError: (err: unknown, name: string) => void
  /** NEGATIVE CONTROL ONLY (DTQ_UNSAFE=no-schedule-cas): fires without the compare. */
  fire?: (schedules: ScheduleStore, queue: string, name: string, plan: FirePlan) => Promise<ScheduleFireReply>
}

/** Fire calls one schedule gets in a tick (a runner far behind catches up over a few ticks). */
const MAX_CALLS_PER_TICK = 50

export class ScheduleRunner {
  private readonly o: ScheduleRunnerOptions
  private readonly ticker: Ticker
  /** Jobs this runner has made, and fire calls it lost to another runner (tests, logs). */
  made = 0
  lost = 0

  constructor(o: ScheduleRunnerOptions) {
    this.o = o
    const poll = o.pollMs ?? 1000
    this.ticker = new Ticker({
      name: 'schedules',
      everyMs: poll,
      initialDelayMs: Math.round(Math.random() * poll),
      onError: o.onError,
      tick: async () => {
        await this.tick()
        return Math.round(poll * (0.8 + 0.4 * Math.random()))
      },
    })
  }

  start(): void {
    this.ticker.start()
  }

  stop(): Promise<void> {
    return this.ticker.stop()
  }

  /** Fires every due schedule once or more (until its next_fire is in the future); returns jobs made. */
  async tick(): Promise<number> {
    const s = this.o.schedules
    const reg = await s.registry()
    const due = (await s.dueInfo(reg)).filter(
      (d) => !d.paused && d.next !== null && d.next <= this.o.clock.now(),
    )
    let made = 0
    for (const d of due) {
      // One schedule that cannot fire (its queue refused: QUEUE_LIMIT, ...) holds up no other.
      try {
        made += await this.fireDue(d.queue, d.name, d.next!)
      } catch (err) {
        this.o.onError(err, `schedule ${d.name}`)
      }
    }
    this.made += made
    return made
  }

  private async fireDue(queue: string, name: string, due: number): Promise<number> {
    const s = this.o.schedules
    const def = await s.read(queue, name)
    if (!def) return 0
    let made = 0
    let next: number | null = due
    for (let calls = 0; next !== null && calls < MAX_CALLS_PER_TICK; calls++) {
      const plan = planFire(def, next, this.o.clock.now())
      if (!plan) break
      const r = this.o.fire
        ? await this.o.fire(s, queue, name, plan)
        : await s.fire(queue, name, { mode: 'fire', ...plan })
      made += r.jobs.length
      // Stale: another runner fired this time (or the schedule changed): it is theirs now.
      if (r.outcome === 'stale') this.lost++
      if (r.outcome !== 'fired') break
      next = r.next
    }
    return made
  }
}
