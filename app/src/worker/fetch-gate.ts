/**
 * The fetch loop's decisions, without I/O or timers: how many jobs the next fetch may ask for,
 * when to wait for new entries instead, and how long to back off after a failure. The
 * Processor does the calls and owns the timers; it tells the gate what happened and asks it
 * what to do next. Kept pure so its accounting -- where the "worker stops fetching for good"
 * bug lived -- is tested on its own (fetch-gate.test.ts), step by step and with random runs.
 *
 * Slots: a fetch reserves the jobs it asks for; a delivered job turns its reservation into a
 * busy slot until its handler ends. busy + reserved never exceeds the concurrency, and the runs
 * a worker holds (running, or finished with the outcome being written) stay under twice the
 * concurrency, so with what is being fetched it holds at most 3× its concurrency.
 */

/** Where each stream of a queue ended, for a blocking wait on new entries. */
export type Tails = Array<{ queue: string; tails: string[] }>

export interface FetchGateOptions {
  concurrency: number
  /** Fetch calls kept in flight at most. */
  fetchesInFlight: number
  /** An idle worker goes through its queues at least this often, even when no wait woke it. */
  idleRoundMs: number
}

/** Backoff after a failed fetch or wait: 200, 400, … ms, at most this. */
export const MAX_BACKOFF_MS = 3000

export class FetchGate {
  /** Jobs one fetch asks for at most: about concurrency / fetchesInFlight. */
  batch: number
  /** Fetch calls in flight, and the job slots they may still fill. */
  inflight = 0
  reserved = 0
  /** Handlers running now: what the concurrency limit counts. */
  busy = 0
  /** A blocking wait is in progress. */
  waiting = false
  /** The last fetch found nothing: where each stream ended, for the next wait. */
  idle: Tails | null = null
  /** Failures in a row; backing off until retryElapsed(). */
  failures = 0
  backingOff = false
  /** When a fetch round last went through the queues, and when the loop last did anything. */
  lastRoundAt = 0
  lastActivityAt = 0
  /** A full round through the queues is due at the end of the current wait (refresh()). */
  private roundDue = false
  private readonly o: FetchGateOptions

  constructor(o: FetchGateOptions) {
    this.o = { ...o }
    this.batch = Math.max(1, Math.ceil(o.concurrency / o.fetchesInFlight))
  }

  get concurrency(): number {
    return this.o.concurrency
  }

  /**
   * A new concurrency, at runtime (the worker's `concurrency` command, ADR 0020). Nothing running
   * is touched: lowered below what is busy, free() is negative and no fetch starts until enough
   * handlers have ended; raised, the next fetch may fill the new slots.
   */
  setConcurrency(n: number): void {
    this.o.concurrency = n
    this.batch = Math.max(1, Math.ceil(n / this.o.fetchesInFlight))
  }

  /** Job slots a fetch could fill now, given the runs the worker holds. */
  free(held: number): number {
    return Math.min(this.o.concurrency - this.busy - this.reserved, 2 * this.o.concurrency - held)
  }

  /**
   * How many jobs a fetch started now should ask for; 0: start none. `open` is false while the
   * worker is paused, has no lease thread, or serves no queue that is not paused.
   */
  nextFetch(open: boolean, held: number): number {
    if (!open || this.waiting || this.idle || this.backingOff) return 0
    if (this.inflight >= this.o.fetchesInFlight) return 0
    const free = this.free(held)
    return free > 0 ? Math.min(free, this.batch) : 0
  }

  fetchStarted(want: number, now: number): void {
    this.inflight++
    this.reserved += want
    this.lastRoundAt = now
    this.lastActivityAt = now
    this.roundDue = false
  }

  /** A fetched job starts: its reservation becomes a busy slot. */
  jobStarted(): void {
    this.reserved--
    this.busy++
  }

  handlerEnded(): void {
    this.busy--
  }

  /** A fetch ended: `got` jobs started; `tails` where the streams ended if it came up short. */
  fetchEnded(want: number, got: number, tails: Tails): void {
    this.inflight--
    this.reserved -= want - got
    this.failures = 0
    this.idle = got === 0 && tails.length ? tails : null
  }

  /** A fetch failed after starting `got` jobs: back off. Returns the delay (ms). */
  fetchFailed(want: number, got: number): number {
    this.inflight--
    this.reserved -= want - got
    return this.backOff()
  }

  /** The tails to wait on now, or null (a fetch is due, or something is in flight). */
  waitFor(paused: boolean): Tails | null {
    return this.idle && this.inflight === 0 && !this.waiting && !paused ? this.idle : null
  }

  waitStarted(now: number): void {
    this.waiting = true
    this.lastActivityAt = now
  }

  /**
   * A wait ended. Woken by a new entry: fetch. Not woken: wait again (every way a job becomes
   * ready adds an entry, so nothing is missed), unless a full round is due (IDLE_ROUND_MS, or
   * refresh()).
   */
  waitEnded(woke: boolean, now: number): void {
    this.waiting = false
    this.failures = 0
    if (woke || this.roundDue || now - this.lastRoundAt >= this.o.idleRoundMs) this.idle = null
  }

  /** A wait failed: back off, then fetch. Returns the delay (ms). */
  waitFailed(): number {
    this.waiting = false
    this.idle = null
    return this.backOff()
  }

  /**
   * The backoff is over. The timer that waited calls this; nothing compares clocks (a timer may
   * fire a millisecond before the wall clock gets there: comparing once stopped a worker for
   * good).
   */
  retryElapsed(): void {
    this.backingOff = false
  }

  /** Something a wait would not see changed (a queue or the worker resumed): a full round next. */
  refresh(): void {
    this.roundDue = true
  }

  private backOff(): number {
    this.failures++
    this.backingOff = true
    return Math.min(100 * 2 ** Math.min(this.failures, 5), MAX_BACKOFF_MS)
  }
}
