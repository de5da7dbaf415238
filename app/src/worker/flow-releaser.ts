/**
 * The flow releaser (docs/decisions/0019): carries finished flow members' outbox entries to
 * their children. Run in two places -- inline, right after a worker records a member's end
 * (`kick`: a child starts one round trip or so after its last parent, not at the next sweep),
 * and by the maintenance leader over every queue (`sweep`), which also finishes flows whose
 * creator died part-way. Both may run at once anywhere: every release is idempotent.
 */
import type { FlowStore } from '../redis/flows.ts'
import type { Logger } from './processor.ts'

export interface FlowReleaserOptions {
  flows: FlowStore
  log: Logger
  /** How long a flow may stay `creating` before the sweep completes it (FLOW_CREATE_GRACE_MS). */
  createGraceMs: number
  /** NEGATIVE CONTROL ONLY (DTQ_UNSAFE=flow-early-release): drains an outbox instead of FlowStore.drain. */
  drain?: (flows: FlowStore, queue: string) => Promise<number>
}

export class FlowReleaser {
  private readonly o: FlowReleaserOptions
  /** One drain per queue at a time; a kick during it asks for one more round. */
  private readonly running = new Map<string, Promise<void>>()
  private readonly again = new Set<string>()

  constructor(o: FlowReleaserOptions) {
    this.o = o
  }

  /** Drains `queue`'s outbox now (coalesced: at most one drain per queue in flight, then one more). */
  kick(queue: string): void {
    if (this.running.has(queue)) {
      this.again.add(queue)
      return
    }
    const run = (async () => {
      do {
        this.again.delete(queue)
        await this.drain(queue)
      } while (this.again.has(queue))
    })()
      .catch((err: Error) =>
        this.o.log.warn({ err: err.message, queue }, 'flow release failed; the sweep retries it'),
      )
      .finally(() => this.running.delete(queue))
    this.running.set(queue, run)
  }

  /** The leader's pass: finishes stalled creations, then drains every queue's outbox. */
  async sweep(queues: readonly string[]): Promise<number> {
    await this.o.flows.rollForward(this.o.createGraceMs)
    let n = 0
    for (const q of queues) n += await this.drain(q)
    return n
  }

  private drain(queue: string): Promise<number> {
    return this.o.drain ? this.o.drain(this.o.flows, queue) : this.o.flows.drain(queue)
  }

  /** Waits for the drains in flight (shutdown, tests). */
  async idle(): Promise<void> {
    await Promise.all([...this.running.values()])
  }
}
