/**
 * Flow control in Redis (docs/decisions/0022): writing a queue's limits, an operator's hand on
 * a breaker, a handler's upstream 429, and what the limits are doing now. The enforcing is in
 * the scripts (scripts/lib/2c-limits.lua): where jobs start and where they stop.
 */
import { type LimitsSpec, limitsSpec } from '../queue/limits.ts'
import { QUEUE_KEY } from './keys.ts'
import type { JobStore } from './store.ts'
import { StoreBase } from './store-base.ts'

export type BreakerAction = 'open' | 'close' | 'reset'

export interface BreakerView {
  state: 'closed' | 'open' | 'half_open'
  /** Consecutive failed attempts counted. */
  failures: number
  /** While open: when one probe may run. */
  open_until: number | null
  /** While half-open: the job probing. */
  probe: string | null
}

export interface LimitsView {
  queue: string
  limits: LimitsSpec
  /** Jobs holding a concurrency slot now (running, or granted one and about to). */
  running: { queue: number | null; types: Record<string, number> }
  /** Jobs held waiting for a slot, per list: concurrency of the queue or a type, or a key. */
  held: Array<{ reason: 'concurrency' | 'key'; scope: string; count: number }>
  breakers: Record<string, BreakerView>
  /** Task types paused until then (an upstream's 429, or a breaker opened without one configured). */
  paused: Record<string, number>
}

export class LimitStore extends StoreBase {
  constructor(jobs: JobStore) {
    super(jobs.redis, { ...jobs.opts, clock: jobs.clock })
  }

  private fc(queue: string, suffix: string): string {
    return this.keys.base(queue) + QUEUE_KEY.fc + suffix
  }

  /** Replaces the queue's limits (checked fields); returns how many held jobs it let go. */
  set(queue: string, fields: Record<string, string>): Promise<number> {
    return this.run<number>('set_limits', queue, [JSON.stringify(fields)])
  }

  breaker(queue: string, taskType: string, action: BreakerAction, openMs = 0): Promise<'open' | 'closed'> {
    return this.run('breaker', queue, [taskType, action, openMs])
  }

  /**
   * The limits and live state of every queue that has limits (for /metrics): one HGETALL per
   * queue, all at once; then a view (one pipeline) of each queue that has any. A queue without
   * limits costs its one HGETALL.
   */
  async views(queues: string[]): Promise<LimitsView[]> {
    const fields = await Promise.all(
      queues.map((q) => this.redis.hgetall(this.keys.base(q) + QUEUE_KEY.limits)),
    )
    return Promise.all(
      queues.filter((_, i) => Object.keys(fields[i] ?? {}).length > 0).map((q) => this.view(q)),
    )
  }

  /** The limits and their live state (all keys in the queue's slot: one pipeline). */
  async view(queue: string): Promise<LimitsView> {
    const fields = await this.redis.hgetall(this.keys.base(queue) + QUEUE_KEY.limits)
    const spec = limitsSpec(fields)
    const types = Object.keys(spec.types ?? {})
    const lists = await this.redis.smembers(this.fc(queue, 'lists'))
    const breakerTypes = types.filter((t) => spec.types![t]!.breaker)
    const paused = Object.entries(fields)
      .map(([k, v]) => [/^t:(.+):pause$/.exec(k)?.[1], Number(v)] as const)
      .filter(([t, until]) => t && until > this.clock.now())
    const cbTypes = [...new Set([...breakerTypes, ...paused.map(([t]) => t!)])]
    const p = this.redis.pipeline()
    p.scard(this.fc(queue, 'cs:q'))
    for (const t of types) p.scard(this.fc(queue, `cs:t:${t}`))
    for (const l of lists) p.llen(this.fc(queue, l))
    for (const t of cbTypes) p.hgetall(this.fc(queue, `cb:${t}`))
    const res = ((await p.exec()) ?? []).map(([err, v]) => {
      if (err) throw err
      return v
    })
    const queueRunning = res[0] as number
    let i = 1
    const running = { queue: spec.concurrency ? queueRunning : null, types: {} as Record<string, number> }
    for (const t of types) {
      const n = res[i++] as number
      if (spec.types![t]!.concurrency) running.types[t] = n
    }
    const held = lists
      .map((l) => {
        const count = res[i++] as number
        const key = l.startsWith('kh:')
        return {
          reason: key ? ('key' as const) : ('concurrency' as const),
          scope: key ? l.slice(3) : l === 'ch:q' ? 'queue' : `type ${l.slice(5)}`,
          count,
        }
      })
      .filter((h) => h.count > 0)
      .sort((a, b) => b.count - a.count)
    const breakers: Record<string, BreakerView> = {}
    for (const t of cbTypes) {
      const h = res[i++] as Record<string, string>
      const until = h.u ? Number(h.u) : null
      breakers[t!] = {
        state: h.s === 'open' ? 'open' : h.s === 'half' ? 'half_open' : 'closed',
        failures: Number(h.f ?? 0),
        open_until: h.s === 'open' ? until : null,
        probe: h.s === 'half' ? (h.p ?? null) : null,
      }
    }
    return { queue, limits: spec, running, held, breakers, paused: Object.fromEntries(paused) }
  }
}
