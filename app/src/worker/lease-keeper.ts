/**
 * LeaseKeeper: the main-thread side of lease renewal. Running jobs are tracked here, per
 * delivery (queue, id, epoch), and renewed every `leaseMs` by a worker thread
 * (lease-thread.ts). It reports back deliveries whose lease was lost (someone else owns the
 * job now), whose deadline passed, or that were asked to cancel. A thread that dies is
 * noticed and restarted with every delivery still held (see restart()).
 */
import { Worker as Thread } from 'node:worker_threads'
import type { RedisTarget } from '../redis/connection.ts'
import type { StoreOptions } from '../redis/store.ts'
import { LeaseRingWriter, TRACK, UNTRACK } from './lease-ring.ts'

export interface LeaseThreadData {
  redis: RedisTarget
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
 * instead: lines of one string, `t <queue> <id> <epoch> <deadline>` or `u <queue> <id> <epoch>`
 * (queue names and ids have no spaces).
 */
export type ToLeaseThread = { type: 'ops'; ops: string } | { type: 'stop' } | { type: 'stall'; ms: number }

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
  /** The thread died: renewal stopped until it is back (`up` true again). */
  onThreadDown(up: boolean, reason: string): void
  /** Every delivery held now, to track again in a restarted thread. */
  held(): Array<{ queue: string; id: string; epoch: number; deadline: number }>
}

/** Restart delays after a lease thread dies (the last one repeats). */
const RESTART_DELAYS_MS = [0, 100, 500, 1000]

export class LeaseKeeper {
  private thread: Thread | undefined
  private readonly data: LeaseThreadData
  private readonly events: LeaseEvents
  private readonly enabled: boolean
  private readonly restartOnExit: boolean
  private ring = LeaseRingWriter.create()
  private ops: string[] = []
  private sendQueued = false
  private flushTimer: NodeJS.Timeout | undefined
  private stopping = false
  private restarts = 0
  private restartTimer: NodeJS.Timeout | undefined

  /**
   * `enabled: false` switches renewal off, `restartOnExit: false` leaves a dead thread dead
   * (both only for the negative-control tests).
   */
  constructor(data: LeaseThreadData, events: LeaseEvents, enabled = true, restartOnExit = true) {
    this.data = data
    this.events = events
    this.enabled = enabled
    this.restartOnExit = restartOnExit
  }

  /** Whether renewal runs now (false while a dead thread is being restarted). */
  get up(): boolean {
    return this.thread !== undefined
  }

  async start(): Promise<void> {
    if (!this.enabled || this.thread) return
    this.stopping = false
    const thread = new Thread(new URL('./lease-thread.ts', import.meta.url), {
      workerData: { ...this.data, ring: this.ring.sab } satisfies LeaseThreadData,
    })
    thread.unref()
    await new Promise<void>((resolve, reject) => {
      thread.once('error', reject)
      thread.once('exit', (code) => {
        if (this.thread === thread) this.died(`exited with code ${code}`)
        reject(new Error(`lease thread exited with code ${code} while starting`))
      })
      thread.on('message', (msg: FromLeaseThread) => {
        switch (msg.type) {
          case 'ready':
            this.thread = thread
            thread.off('error', reject)
            // An error after start ends the thread: 'exit' follows and restarts it.
            thread.on('error', (err) => this.events.onError(`lease thread crashed: ${err.message}`))
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
   * The thread died after it started (an uncaught error, an out-of-memory kill of the thread):
   * no lease is being renewed. Start a new one on a fresh ring and track every delivery still
   * held again; until then the worker takes no new work (onThreadDown).
   */
  private died(reason: string): void {
    this.thread = undefined
    if (this.stopping) return
    this.events.onThreadDown(false, reason)
    if (!this.restartOnExit) return
    const delay = RESTART_DELAYS_MS[Math.min(this.restarts++, RESTART_DELAYS_MS.length - 1)]!
    this.restartTimer = setTimeout(() => void this.restart(), delay)
  }

  private async restart(): Promise<void> {
    if (this.stopping) return
    this.ring = LeaseRingWriter.create()
    this.ops = []
    try {
      await this.start()
    } catch (err) {
      this.events.onError(`lease thread restart failed: ${(err as Error).message}`)
      if (!this.thread) this.died('restart failed')
      return
    }
    for (const l of this.events.held()) this.track(l.queue, l.id, l.epoch, l.deadline)
    this.restarts = 0
    this.events.onThreadDown(true, 'restarted')
  }

  /** Ends the thread as a crash would (for the tests of restart()). */
  crash(): void {
    void this.thread?.terminate()
  }

  /** Blocks the thread for `ms`, as a long GC pause of its isolate would (for the tests). */
  stall(ms: number): void {
    this.thread?.postMessage({ type: 'stall', ms } satisfies ToLeaseThread)
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
  untrack(queue: string, id: string, epoch: number): void {
    if (!this.thread) return
    if (!this.ops.length && this.ring.write(UNTRACK, queue, id, epoch)) return
    this.ops.push(`u ${queue} ${id} ${epoch}`)
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
    this.stopping = true
    clearTimeout(this.restartTimer)
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
