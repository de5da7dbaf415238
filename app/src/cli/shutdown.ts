/**
 * The bound on a process's shutdown (invariant 35): from the first SIGTERM/SIGINT, a process
 * has its budget -- the time running jobs get (SHUTDOWN_TIMEOUT_MS) where it runs jobs, the
 * API's drain delay where it serves the API, and SHUTDOWN_CLEANUP_MS for the rest -- whatever
 * state Redis is in. A
 * graceful shutdown that has not ended by then (Redis frozen, a reconnect loop, a step that
 * waits on a reply that never comes) is cut short: the clients are disconnected, one log line
 * says what was abandoned, and the process exits 1. Jobs it still held are not lost: their
 * leases lapse and the reclaimers (XAUTOCLAIM) deliver them again -- at-least-once holds.
 */
import type { Config } from '../config.ts'

export interface ShutdownBound {
  /** Arms the bound (idempotent): called on the first signal. */
  arm(): void
  /** Resolves when a signal arrived (for start-up steps to stop waiting on Redis). */
  readonly requested: Promise<void>
  readonly budgetMs: number
}

export interface BoundOptions {
  /** Milliseconds the graceful shutdown may take. */
  budgetMs: number
  /** What is abandoned if the bound is reached (jobs held, the step under way). */
  abandoned: () => Record<string, unknown>
  /** Cuts what is left: disconnects the clients (called once, before exiting). */
  force: () => void
  /** One structured log line (pino's warn, or stderr). */
  warn: (fields: Record<string, unknown>, msg: string) => void
  /** DTQ_UNSAFE=no-shutdown-bound (negative control only): never force, start-up not cut. */
  off?: boolean
  exit?: (code: number) => void
}

/**
 * The budget of a process kind: the jobs' time (processes that run jobs), the API's drain delay
 * (processes that serve it), then the cleanup allowance. The archiver runs no job: a batch it is
 * cut from is archived again (rows are upserted).
 */
export function shutdownBudgetMs(cfg: Config, kind: 'worker' | 'api' | 'dev' | 'archiver'): number {
  const jobs = kind === 'worker' || kind === 'dev' ? cfg.shutdownTimeoutMs : 0
  const drain = kind === 'api' || kind === 'dev' ? cfg.apiDrainDelayMs : 0
  return jobs + drain + cfg.shutdownCleanupMs
}

export function shutdownBound(o: BoundOptions): ShutdownBound {
  let armed = false
  let signalled!: () => void
  const requested = new Promise<void>((r) => {
    signalled = r
  })
  return {
    budgetMs: o.budgetMs,
    requested: o.off ? new Promise<void>(() => {}) : requested,
    arm() {
      if (armed) return
      armed = true
      signalled()
      if (o.off) return
      const started = Date.now()
      setTimeout(() => {
        let what: Record<string, unknown> = {}
        try {
          what = o.abandoned()
        } catch {}
        try {
          o.force()
        } catch {}
        o.warn(
          { budget_ms: o.budgetMs, elapsed_ms: Date.now() - started, abandoned: what },
          'shutdown budget spent: forcing exit (jobs still held are reclaimed by other workers)',
        )
        ;(o.exit ?? process.exit)(1)
      }, o.budgetMs).unref()
    },
  }
}

/**
 * Waits for `step` unless a stop is requested first: start-up steps that wait on Redis (up to
 * a minute) give way to a SIGTERM. Returns false when stopped.
 */
export async function unlessStopped(step: Promise<unknown>, bound: ShutdownBound): Promise<boolean> {
  step.catch(() => {})
  const stop = bound.requested.then(() => 'stopped' as const)
  return (await Promise.race([step.then(() => 'done' as const), stop])) === 'done'
}
