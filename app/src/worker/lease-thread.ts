/**
 * The lease keeper's thread. It renews the leases of running jobs on its own event loop and
 * its own Redis connection, so a handler that blocks the main thread cannot starve renewal
 * (invariant 4). It stops renewing a job at its deadline (its timeout plus a grace), so a
 * wedged handler cannot hold a job forever.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { followClock } from '../redis/clock.ts'
import { connectRedis, createRedis } from '../redis/connection.ts'
import { JobStore } from '../redis/store.ts'
import type { LeaseThreadData, ToLeaseThread } from './lease-keeper.ts'
import { LeaseRingReader, TRACK } from './lease-ring.ts'

/** How often the thread reads the ops ring (it also reads it before every renewal). */
const RING_POLL_MS = 20

const data = workerData as LeaseThreadData
const port = parentPort!
const redis = createRedis({ target: data.redis, commandTimeoutMs: data.commandTimeoutMs, name: 'dtq-lease' })
// Scripts get the worker's time base: Redis's clock, as the main thread measures it.
const store = new JobStore(redis, {
  ...data.store,
  clock: data.clockShift ? followClock(data.clockShift) : undefined,
})
const leases = new Map<string, { queue: string; id: string; epoch: number; deadline: number }>()
let timer: NodeJS.Timeout | undefined
let ringTimer: NodeJS.Timeout | undefined
let renewing = false

/** Leases are kept per delivery (queue, id, epoch): a job delivered to us again is a second lease. */
const leaseKey = (queue: string, id: string, epoch: number) => `${queue}\u0000${id}\u0000${epoch}`

function apply(kind: 'track' | 'untrack', queue: string, id: string, epoch: number, deadline: number) {
  const key = leaseKey(queue, id, epoch)
  if (kind === 'track') leases.set(key, { queue, id, epoch, deadline })
  else leases.delete(key)
}

const ring = data.ring ? new LeaseRingReader(data.ring) : null
function readRing(): void {
  ring?.read((kind, queue, id, epoch, deadline) =>
    apply(kind === TRACK ? 'track' : 'untrack', queue, id, epoch, deadline),
  )
}

async function renew(): Promise<void> {
  readRing()
  if (renewing || !leases.size) return
  renewing = true
  try {
    const now = Date.now()
    const byQueue = new Map<string, Array<{ id: string; epoch: number }>>()
    for (const [key, l] of leases) {
      if (l.deadline && now > l.deadline) {
        leases.delete(key)
        port.postMessage({ type: 'expired', queue: l.queue, id: l.id, epoch: l.epoch })
        continue
      }
      byQueue.set(l.queue, [...(byQueue.get(l.queue) ?? []), { id: l.id, epoch: l.epoch }])
    }
    for (const [queue, items] of byQueue) {
      try {
        const res = await store.heartbeat(queue, data.consumer, items)
        items.forEach((it, i) => {
          if (res[i] === 0) {
            leases.delete(leaseKey(queue, it.id, it.epoch))
            port.postMessage({ type: 'lost', queue, id: it.id, epoch: it.epoch })
          } else if (res[i] === 2) {
            port.postMessage({ type: 'cancel', queue, id: it.id, epoch: it.epoch })
          }
        })
      } catch (err) {
        port.postMessage({ type: 'error', message: (err as Error).message })
      }
    }
  } finally {
    renewing = false
  }
}

port.on('message', (msg: ToLeaseThread) => {
  switch (msg.type) {
    case 'ops':
      // Fallback ops, sent only while the ring was full: what the ring holds came first.
      readRing()
      for (const line of msg.ops.split('\n')) {
        const [op, queue = '', id = '', epoch, deadline] = line.split(' ')
        apply(op === 't' ? 'track' : 'untrack', queue, id, Number(epoch), Number(deadline))
      }
      break
    case 'stall': {
      // Tests only: the thread's event loop blocked, as by a long GC pause of its isolate.
      const until = Date.now() + msg.ms
      while (Date.now() < until) {}
      break
    }
    case 'stop':
      clearInterval(timer)
      clearInterval(ringTimer)
      redis.disconnect()
      port.close()
      break
  }
})

connectRedis(redis, 60_000)
  .catch(() => {})
  .finally(() => {
    timer = setInterval(() => void renew(), data.leaseMs)
    ringTimer = setInterval(readRing, RING_POLL_MS)
    port.postMessage({ type: 'ready' })
  })
