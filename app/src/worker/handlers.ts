/**
 * Handler types and the built-in demo task types that make DTQ usable out of the box (and
 * drive the tests): echo, sleep, fail, cpu, synthetic.
 */

import { PermanentJobError } from '../errors.ts'
import type { Job } from '../queue/job.ts'

export interface JobContext {
  /** Aborts when the job is cancelled, times out, loses its lease, or the worker stops. */
  signal: AbortSignal
  /** Which start of the job this is (1 for the first). */
  attempt: number
  /** The worker running it. */
  workerId: string
  /** A flow node's completed parents' results by node key (`job.parent_results`; {} outside flows). */
  parents: Record<string, unknown>
  /** Records progress (a number, typically 0-100). Fenced: ignored once the job is no longer ours. */
  progress(n: number): Promise<void>
  /** Appends a line to the job's log (the last 100 are kept). */
  log(line: string): Promise<void>
  /**
   * Puts the job off for `ms` without using an attempt (throws SnoozeJob: nothing after it
   * runs): it is `scheduled` again, fenced like every outcome (ADR 0021).
   */
  snooze(ms: number): never
}

export type Handler = (job: Job, ctx: JobContext) => unknown | Promise<unknown>

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason)
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    const onAbort = () => {
      clearTimeout(t)
      reject(signal.reason)
    }
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

const obj = (p: unknown): Record<string, unknown> =>
  p && typeof p === 'object' ? (p as Record<string, unknown>) : {}
const numOr = (v: unknown, d: number) => (typeof v === 'number' && Number.isFinite(v) ? v : d)

/** Busy-waits the CPU for `ms` (blocks the event loop on purpose: it is the `cpu` demo type). */
function burn(ms: number): number {
  const end = performance.now() + ms
  let x = 0
  while (performance.now() < end) x = (x + Math.sqrt(x + 1)) % 1e9
  return x
}

export const builtinHandlers: Record<string, Handler> = {
  /** Returns its payload. */
  echo: (job) => job.payload,

  /** Sleeps `ms` (default 1000), reporting progress; honours cancel. */
  sleep: async (job, ctx) => {
    const ms = Math.min(numOr(obj(job.payload).ms, 1000), 24 * 3600 * 1000)
    const steps = Math.max(1, Math.min(10, Math.floor(ms / 100)))
    for (let i = 1; i <= steps; i++) {
      await sleep(ms / steps, ctx.signal)
      if (steps > 1) await ctx.progress(Math.round((i / steps) * 100))
    }
    return { slept_ms: ms }
  },

  /**
   * Fails on purpose: `times` N fails the first N attempts then succeeds; `probability` p fails
   * each attempt with chance p; `permanent: true` skips retries. With neither, always fails.
   */
  fail: (job, ctx) => {
    const p = obj(job.payload)
    const message = typeof p.message === 'string' ? p.message : 'intentional failure'
    let fails = true
    if (typeof p.times === 'number') fails = ctx.attempt <= p.times
    else if (typeof p.probability === 'number') fails = Math.random() < p.probability
    if (!fails) return { attempt: ctx.attempt, ok: true }
    if (p.permanent === true) throw new PermanentJobError(message)
    throw new Error(message)
  },

  /** Burns CPU for `ms` (default 100) in one synchronous stretch. */
  cpu: (job) => {
    const ms = Math.min(numOr(obj(job.payload).ms, 100), 600_000)
    burn(ms)
    return { burned_ms: ms }
  },

  /**
   * Seed 003's load type: takes `duration_ms` (default 50) and fails with `failure_rate`
   * (default 0), the shape `POST /dev/generate-jobs` produces.
   */
  synthetic: async (job, ctx) => {
    const p = obj(job.payload)
    await sleep(Math.min(numOr(p.duration_ms, 50), 600_000), ctx.signal)
    if (Math.random() < numOr(p.failure_rate, 0)) throw new Error('synthetic failure')
    return { ok: true, partition_key: job.partition_key }
  },
}
