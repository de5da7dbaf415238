/**
 * LeaseKeeper: the main-thread side of lease renewal. Running jobs are tracked here and
 * renewed every `leaseMs` by a worker thread (lease-thread.ts). It reports back jobs whose
 * lease was lost (someone else owns them now), whose deadline passed, or that were asked
 * to cancel.
 */
import { Worker as Thread } from 'node:worker_threads'
import type { StoreOptions } from '../redis/store.ts'
import { LeaseRingWriter, TRACK, UNTRACK } from './lease-ring.ts'

export interface LeaseThreadData {
  redisUrl: string
  commandTimeoutMs: number
  store: Omit<StoreOptions, 'clock'>
  consumer: string
  leaseMs: number
  /** The worker's RedisClock shift (followClock); absent: this machine's clock. */
  clockShift?: SharedArrayBuffer
  /** The lease ops ring (lease-ring.ts); set by the keeper. */
  ring?: SharedArrayBuffer
}

/**
 * Ops go through the shared ring (lease-ring.ts). Should it be full, they go as a message
 * instead: lines of one string, `t <queue> <id> <epoch> <deadline>` or `u <queue> <id>`
 * (queue names and ids have no spaces).
 */
export type ToLeaseThread = { type: 'ops'; ops: string } | { type: 'stop' }

/** Fallback ops: untracks ride along with the next tracks, or go within this many ms. */
const UNTRACK_FLUSH_MS = 50

export type FromLeaseThread =
  | { type: 'ready' }
  | { type: 'lost' | 'expired' | 'cancel'; queue: string; id: string; epoch: number }
  | { type: 'error'; message: string }

export interface LeaseEvents {
  onLost(queue: string, id: string, epoch: number): void
  onExpired(queue: string, id: string, epoch: number): void
  onCancel(queue: string, id: string, epoch: number): void
  onError(message: string): void
}

export class LeaseKeeper {
  private thread: Thread | undefined
  private readonly data: LeaseThreadData
  private readonly events: LeaseEvents
  private readonly enabled: boolean
  private readonly ring = LeaseRingWriter.create()
  private ops: string[] = []
  private sendQueued = false
  private flushTimer: NodeJS.Timeout | undefined

  /** `enabled: false` switches renewal off (only for the negative-control tests). */
  constructor(data: LeaseThreadData, events: LeaseEvents, enabled = true) {
    this.data = data
    this.events = events
    this.enabled = enabled
  }

  async start(): Promise<void> {
    if (!this.enabled || this.thread) return
    const thread = new Thread(new URL('./lease-thread.ts', import.meta.url), {
      workerData: { ...this.data, ring: this.ring.sab } satisfies LeaseThreadData,
    })
    this.thread = thread
    thread.unref()
    await new Promise<void>((resolve, reject) => {
      thread.once('error', reject)
      thread.on('message', (msg: FromLeaseThread) => {
        switch (msg.type) {
          case 'ready':
            resolve()
            break
          case 'lost':
            this.events.onLost(msg.queue, msg.id, msg.epoch)
            break
          case 'expired':
            this.events.onExpired(msg.queue, msg.id, msg.epoch)
            break
          case 'cancel':
            this.events.onCancel(msg.queue, msg.id, msg.epoch)
            break
          case 'error':
            this.events.onError(msg.message)
            break
        }
      })
    })
  }

  /**
   * In the ring before the handler runs, so a handler that then blocks the main thread still
   * has its lease renewed (a fallback message is sent a microtask ahead of the handler).
   */
  track(queue: string, id: string, epoch: number, deadline: number): void {
    if (!this.thread) return
    if (!this.ops.length && this.ring.write(TRACK, queue, id, epoch, deadline)) return
    this.ops.push(`t ${queue} ${id} ${epoch} ${deadline}`)
    if (!this.sendQueued) {
      this.sendQueued = true
      queueMicrotask(() => this.send())
    }
  }

  /**
   * Not urgent: until the thread reads it, it may renew a finished job once, which the fence
   * answers with "not yours" and the processor ignores.
   */
  untrack(queue: string, id: string): void {
    if (!this.thread) return
    if (!this.ops.length && this.ring.write(UNTRACK, queue, id)) return
    this.ops.push(`u ${queue} ${id}`)
    if (!this.sendQueued && !this.flushTimer) {
      this.flushTimer = setTimeout(() => this.send(), UNTRACK_FLUSH_MS)
      this.flushTimer.unref()
    }
  }

  private send(): void {
    this.sendQueued = false
    clearTimeout(this.flushTimer)
    this.flushTimer = undefined
    const ops = this.ops
    this.ops = []
    if (ops.length) this.thread?.postMessage({ type: 'ops', ops: ops.join('\n') } satisfies ToLeaseThread)
  }

  async stop(): Promise<void> {
    const t = this.thread
    if (!t) return
    this.send()
    this.thread = undefined
    const exited = new Promise<void>((resolve) => t.once('exit', () => resolve()))
    t.postMessage({ type: 'stop' } satisfies ToLeaseThread)
    await Promise.race([exited, new Promise((r) => setTimeout(r, 2000))])
    await t.terminate()
  }
}
