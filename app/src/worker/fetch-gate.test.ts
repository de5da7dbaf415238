/**
 * The fetch loop's accounting on its own: slots, waits and backoff, step by step and in random
 * runs that check the invariants after every step -- including that the loop never stalls (a
 * worker with free slots and nothing in its way always has a next fetch to start).
 */
import { describe, expect, it } from 'vitest'
import { FetchGate, MAX_BACKOFF_MS, type Tails } from './fetch-gate.ts'

const tails: Tails = [{ queue: 'q', tails: ['0-0', '5-0', '0-0'] }]
const gate = (concurrency = 10) => new FetchGate({ concurrency, fetchesInFlight: 2, idleRoundMs: 30_000 })

describe('FetchGate', () => {
  it('keeps two fetches in flight, each for about half the slots', () => {
    const g = gate(10)
    expect(g.batch).toBe(5)
    expect(g.nextFetch(true, 0)).toBe(5)
    g.fetchStarted(5, 0)
    expect(g.nextFetch(true, 0)).toBe(5)
    g.fetchStarted(5, 0)
    expect(g.nextFetch(true, 0)).toBe(0) // two in flight, and every slot reserved
    for (let i = 0; i < 5; i++) g.jobStarted()
    g.fetchEnded(5, 5, [])
    expect(g.nextFetch(true, 5)).toBe(0) // five running, five still reserved
    g.handlerEnded()
    expect(g.nextFetch(true, 5)).toBe(1)
  })

  it('never holds more than twice the concurrency in runs (outcomes being written count)', () => {
    const g = gate(4)
    expect(g.nextFetch(true, 8)).toBe(0)
    expect(g.nextFetch(true, 7)).toBe(1)
  })

  it('a concurrency changed at runtime: lowered below what is busy, nothing is fetched until enough end; raised, the new slots fill', () => {
    const g = gate(4)
    g.fetchStarted(2, 0)
    g.fetchStarted(2, 0)
    for (let i = 0; i < 4; i++) g.jobStarted()
    g.fetchEnded(2, 2, [])
    g.fetchEnded(2, 2, [])
    g.setConcurrency(2)
    expect(g.batch).toBe(1)
    expect(g.nextFetch(true, 4)).toBe(0)
    g.handlerEnded()
    g.handlerEnded()
    expect(g.nextFetch(true, 2)).toBe(0) // two still busy: at the new limit
    g.handlerEnded()
    expect(g.nextFetch(true, 1)).toBe(1)
    g.setConcurrency(10)
    expect(g.concurrency).toBe(10)
    expect(g.nextFetch(true, 1)).toBe(5)
  })

  it('fetches nothing while closed (paused, no lease thread, no queue)', () => {
    expect(gate().nextFetch(false, 0)).toBe(0)
  })

  it('backs off after a failure until the timer says so, whatever the clocks say', () => {
    const g = gate()
    g.fetchStarted(5, 0)
    const delays = [g.fetchFailed(5, 0)]
    expect(g.nextFetch(true, 0)).toBe(0)
    g.retryElapsed() // the timer fired: a fetch is due, even if Date.now() lags behind the timer
    expect(g.nextFetch(true, 0)).toBe(5)
    for (let i = 0; i < 8; i++) {
      g.fetchStarted(5, 0)
      delays.push(g.fetchFailed(5, 0))
      g.retryElapsed()
    }
    expect(delays.slice(0, 5)).toEqual([200, 400, 800, 1600, 3000])
    expect(Math.max(...delays)).toBe(MAX_BACKOFF_MS)
    g.fetchStarted(5, 0)
    g.fetchEnded(5, 0, [])
    expect(g.failures).toBe(0)
  })

  it('waits when a fetch found nothing; re-waits until woken or a full round is due', () => {
    const g = gate()
    g.fetchStarted(5, 1000)
    g.fetchEnded(5, 0, tails)
    expect(g.nextFetch(true, 0)).toBe(0)
    expect(g.waitFor(false)).toBe(tails)
    expect(g.waitFor(true)).toBeNull() // paused: no wait either
    g.waitStarted(1000)
    expect(g.waitFor(false)).toBeNull() // one wait at a time
    g.waitEnded(false, 2000) // nothing new: wait again, no round through the queues
    expect(g.waitFor(false)).toBe(tails)
    g.waitStarted(2000)
    g.waitEnded(false, 1000 + 30_000) // a full round is due
    expect(g.waitFor(false)).toBeNull()
    expect(g.nextFetch(true, 0)).toBe(5)
  })

  it('fetches after a wait that a new entry woke, or after refresh()', () => {
    const g = gate()
    g.fetchStarted(5, 0)
    g.fetchEnded(5, 0, tails)
    g.waitStarted(0)
    g.waitEnded(true, 10)
    expect(g.nextFetch(true, 0)).toBe(5)
    g.fetchStarted(5, 10)
    g.fetchEnded(5, 0, tails)
    g.refresh() // a queue was resumed: its old entries would not wake a wait
    g.waitStarted(10)
    g.waitEnded(false, 20)
    expect(g.nextFetch(true, 0)).toBe(5)
  })

  it('a failed wait backs off, then fetches', () => {
    const g = gate()
    g.fetchStarted(5, 0)
    g.fetchEnded(5, 0, tails)
    g.waitStarted(0)
    expect(g.waitFailed()).toBe(200)
    expect(g.nextFetch(true, 0)).toBe(0)
    expect(g.waitFor(false)).toBeNull()
    g.retryElapsed()
    expect(g.nextFetch(true, 0)).toBe(5)
  })

  it('random runs: slots never overbooked, counts never negative, and it never stalls', () => {
    // A small deterministic PRNG: the same runs every time.
    let seed = 42
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      return seed / 2 ** 31
    }
    for (let run = 0; run < 300; run++) {
      const concurrency = 1 + Math.floor(rnd() * 20)
      const g = gate(concurrency)
      const fetches: number[] = [] // wants of fetches in flight
      let running = 0 // handlers running
      let writing = 0 // runs whose outcome is being written
      let now = 0
      for (let step = 0; step < 400; step++) {
        now += Math.floor(rnd() * 50)
        const held = running + writing
        const r = rnd()
        if (r < 0.3) {
          const want = g.nextFetch(true, held)
          if (want > 0) {
            g.fetchStarted(want, now)
            fetches.push(want)
          }
        } else if (r < 0.55 && fetches.length) {
          const want = fetches.shift()!
          const got = Math.floor(rnd() * (want + 1))
          for (let i = 0; i < got; i++) g.jobStarted()
          running += got
          if (rnd() < 0.1) {
            g.fetchFailed(want, got)
            g.retryElapsed()
          } else g.fetchEnded(want, got, got === 0 ? tails : [])
        } else if (r < 0.8 && running) {
          running--
          writing++
          g.handlerEnded()
        } else if (r < 0.9 && writing) {
          writing--
        } else if (g.waitFor(false)) {
          g.waitStarted(now)
          if (rnd() < 0.1) {
            g.waitFailed()
            g.retryElapsed()
          } else g.waitEnded(rnd() < 0.5, now)
        }
        expect(g.busy).toBe(running)
        expect(g.inflight).toBe(fetches.length)
        // Exactly what the fetches in flight asked for is reserved: nothing leaks, so slots
        // cannot run out while nothing runs.
        expect(g.reserved).toBe(fetches.reduce((a, w) => a + w, 0))
        expect(g.busy + g.reserved).toBeLessThanOrEqual(concurrency)
        expect(g.inflight).toBeLessThanOrEqual(2)
        // Never stalled: free slots and nothing in the way means a fetch can start.
        const free = g.free(running + writing)
        if (free > 0 && g.inflight < 2 && !g.waiting && !g.idle && !g.backingOff)
          expect(g.nextFetch(true, running + writing)).toBeGreaterThan(0)
        if (!running && !writing && !fetches.length && !g.waiting && !g.idle && !g.backingOff)
          expect(g.nextFetch(true, 0)).toBeGreaterThan(0)
        // And an idle gate with nothing in flight always has a wait to start.
        if (g.idle && g.inflight === 0 && !g.waiting) expect(g.waitFor(false)).not.toBeNull()
      }
    }
  })
})
