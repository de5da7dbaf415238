/**
 * A background loop with start/stop: runs `tick` now and then again after the delay it
 * returns (or `everyMs`), survives errors (reported, then retried after a backoff), and stops
 * promptly: stop() interrupts the wait and resolves once the running tick has finished.
 */
export interface TickerOptions {
  name: string
  everyMs: number
  tick: () => Promise<number | undefined>
  onError: (err: unknown, name: string) => void
  /** First delay; default: run at once. */
  initialDelayMs?: number
}

export class Ticker {
  private readonly opts: TickerOptions
  private stopped = true
  private timer: NodeJS.Timeout | undefined
  private wake: (() => void) | undefined
  private done: Promise<void> = Promise.resolve()
  private failures = 0

  constructor(opts: TickerOptions) {
    this.opts = opts
  }

  start(): void {
    if (!this.stopped) return
    this.stopped = false
    this.done = this.loop()
  }

  /** Runs the next tick now instead of after the delay. */
  poke(): void {
    this.wake?.()
  }

  async stop(): Promise<void> {
    this.stopped = true
    this.wake?.()
    await this.done
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wake = () => {
        clearTimeout(this.timer)
        this.wake = undefined
        resolve()
      }
      this.timer = setTimeout(() => this.wake?.(), ms)
    })
  }

  private async loop(): Promise<void> {
    if (this.opts.initialDelayMs) await this.sleep(this.opts.initialDelayMs)
    while (!this.stopped) {
      let delay = this.opts.everyMs
      try {
        const next = await this.opts.tick()
        if (typeof next === 'number') delay = next
        this.failures = 0
      } catch (err) {
        this.failures++
        this.opts.onError(err, this.opts.name)
        delay = Math.min(this.opts.everyMs * 2 ** Math.min(this.failures, 5), 5000)
      }
      if (!this.stopped) await this.sleep(Math.max(0, delay))
    }
  }
}
