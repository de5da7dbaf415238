/**
 * The fleet's time base: Redis's clock. Every process passes its `now` into the scripts (DLQ
 * entry ids, index scores, due times, retention cutoffs all come from it), so processes whose
 * machine clocks disagree would write times that disagree: one worker a year ahead pins every
 * later DLQ entry and completed job a year in the future, out of reach of age-based purges and
 * retention. A RedisClock measures this process's offset to the Redis server (TIME) and reads
 * `Date.now() + offset`: every process then writes Redis's time, whatever its own clock says.
 * Scripts still take time as an argument (ADR 0012).
 */
import type { RedisClient } from './connection.ts'
import type { Clock } from './store.ts'

/** TIME calls per measurement; the one with the shortest round trip is kept. */
const SAMPLES = 5
/** A measurement that failed is retried this soon (the last good offset is kept meanwhile). */
const RETRY_MS = 1000

export interface RedisClockOptions {
  /**
   * TESTS ONLY (DTQ_TEST_CLOCK_SKEW_MS): the local clock is `Date.now() + skewMs`, as if this
   * machine's clock were off by that much. The measured offset corrects it.
   */
  skewMs?: number
  /** Re-measures this often (ms). */
  everyMs?: number
  /** An offset larger than this (ms) is logged: this machine's clock is off. */
  warnAboveMs?: number
  warn?: (fields: Record<string, unknown>, message: string) => void
}

export class RedisClock implements Clock {
  /** Redis time − local time (ms), from the last good measurement; 0 until one succeeds. */
  offsetMs = 0
  /** Round trip (ms) of the TIME call the offset was taken from; null until one succeeds. */
  rttMs: number | null = null
  /**
   * `Date.now()` + this = Redis time: the skew plus the offset, in shared memory, so the lease
   * thread reads the same time base (followClock) without measuring on its own.
   */
  readonly shift = new SharedArrayBuffer(8)
  private readonly shiftView = new BigInt64Array(this.shift)
  private readonly redis: RedisClient
  private readonly skewMs: number
  private readonly everyMs: number
  private readonly warnAboveMs: number
  private readonly warn: NonNullable<RedisClockOptions['warn']>
  private synced = false
  private failed = false
  private warnedAt: number | null = null
  private inFlight: Promise<void> | undefined
  private running = false
  private timer: NodeJS.Timeout | undefined

  constructor(redis: RedisClient, opts: RedisClockOptions = {}) {
    this.redis = redis
    this.skewMs = opts.skewMs ?? 0
    this.everyMs = opts.everyMs ?? 30_000
    this.warnAboveMs = opts.warnAboveMs ?? 1000
    this.warn =
      opts.warn ?? ((fields, message) => process.emitWarning(`${message} ${JSON.stringify(fields)}`))
    Atomics.store(this.shiftView, 0, BigInt(this.skewMs))
  }

  now(): number {
    return this.local() + this.offsetMs
  }

  private local(): number {
    return Date.now() + this.skewMs
  }

  /**
   * Measures now, then every `everyMs` on an unref'd timer (idempotent). Resolves once a
   * measurement has succeeded; rejects if the first one fails (measuring goes on regardless).
   */
  start(): Promise<void> {
    const first = this.sync()
    if (!this.running) {
      this.running = true
      void first.catch(() => {}).then(() => this.schedule())
    }
    return first
  }

  stop(): void {
    this.running = false
    clearTimeout(this.timer)
  }

  /** Resolves at once if a measurement has succeeded; otherwise measures now. */
  sync(): Promise<void> {
    return this.synced ? Promise.resolve() : this.measure()
  }

  private schedule(): void {
    if (!this.running) return
    this.timer = setTimeout(
      () =>
        void this.measure().then(
          () => this.schedule(),
          () => this.schedule(),
        ),
      this.failed ? RETRY_MS : this.everyMs,
    )
    this.timer.unref()
  }

  /**
   * One measurement: a few TIME calls in a row; offset = server time − the midpoint of the local
   * send and receive times, from the call with the shortest round trip (the least queueing
   * behind other commands). Its error is at most half that round trip.
   */
  measure(): Promise<void> {
    this.inFlight ??= this.takeSamples().finally(() => {
      this.inFlight = undefined
    })
    return this.inFlight
  }

  private async takeSamples(): Promise<void> {
    let best: { offset: number; rtt: number } | null = null
    let error: unknown
    for (let i = 0; i < SAMPLES; i++) {
      try {
        const sent = this.local()
        const t0 = performance.now()
        const [s, us] = await this.redis.time()
        const rtt = performance.now() - t0
        const offset = Number(s) * 1000 + Number(us) / 1000 - (sent + rtt / 2)
        if (!best || rtt < best.rtt) best = { offset, rtt }
      } catch (err) {
        error = err
      }
    }
    this.failed = !best
    if (!best) throw error
    // Whole milliseconds: times go into stream ids and scores as integers.
    this.offsetMs = Math.round(best.offset)
    this.rttMs = best.rtt
    this.synced = true
    Atomics.store(this.shiftView, 0, BigInt(this.skewMs + this.offsetMs))
    const off = this.offsetMs
    if (
      Math.abs(off) > this.warnAboveMs &&
      (this.warnedAt === null || Math.abs(off - this.warnedAt) > this.warnAboveMs)
    ) {
      this.warnedAt = off
      this.warn(
        { offsetMs: off, rttMs: Math.round(best.rtt * 100) / 100 },
        "this machine's clock is off from Redis's; DTQ uses Redis's time (corrected by the offset)",
      )
    }
  }
}

/** The time base of another thread's RedisClock: `Date.now()` plus its shared shift. */
export function followClock(shift: SharedArrayBuffer): Clock {
  const view = new BigInt64Array(shift)
  return { now: () => Date.now() + Number(Atomics.load(view, 0)) }
}
