/**
 * LeaseKeeper: the main-thread side of lease renewal. Running jobs are tracked here and
 * renewed every `leaseMs` by a worker thread (lease-thread.ts). It reports back jobs whose
 * lease was lost (someone else owns them now), whose deadline passed, or that were asked
 * to cancel.
 */
import { Worker as Thread } from 'node:worker_threads'
import type { StoreOptions } from '../redis/store.ts'

export interface LeaseThreadData {
  redisUrl: string
  commandTimeoutMs: number
  store: Omit<StoreOptions, 'clock'>
  consumer: string
  leaseMs: number
}

export type LeaseOp =
  | { type: 'track'; queue: string; id: string; epoch: number; deadline: number }
  | { type: 'untrack'; queue: string; id: string }

export type ToLeaseThread = { type: 'ops'; ops: LeaseOp[] } | { type: 'stop' }

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
  private ops: LeaseOp[] = []

  /** `enabled: false` switches renewal off (only for the negative-control tests). */
  constructor(data: LeaseThreadData, events: LeaseEvents, enabled = true) {
    this.data = data
    this.events = events
    this.enabled = enabled
  }

  async start(): Promise<void> {
    if (!this.enabled || this.thread) return
    const thread = new Thread(new URL('./lease-thread.ts', import.meta.url), { workerData: this.data })
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

  track(queue: string, id: string, epoch: number, deadline: number): void {
    this.post({ type: 'track', queue, id, epoch, deadline })
  }

  untrack(queue: string, id: string): void {
    this.post({ type: 'untrack', queue, id })
  }

  /** Ops of one turn of the event loop go in one message (a postMessage per job cost ~5 % CPU). */
  private post(op: LeaseOp): void {
    if (!this.thread) return
    this.ops.push(op)
    if (this.ops.length === 1) queueMicrotask(() => this.send())
  }

  private send(): void {
    const ops = this.ops
    this.ops = []
    if (ops.length) this.thread?.postMessage({ type: 'ops', ops } satisfies ToLeaseThread)
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
