/**
 * A worker's blocking wait for new jobs: "wake me when an entry lands after these tails in any
 * of these queues' ready streams". On one server (standalone, Sentinel's primary) it is one
 * XREAD BLOCK over every stream, on one connection. On a Redis Cluster one XREAD cannot name keys
 * of several slots, and each queue is a slot of its own (ADR 0017): there each queue gets a lane,
 * a connection of its own with its own XREAD BLOCK, and the wait ends when the first lane sees an
 * entry. A lane still blocked when the wait ends stays in flight and serves the next wait: new
 * entries always get ids above every earlier tail, so a read started from older tails still
 * wakes on them (at worst a spurious wake-up, never a missed one).
 */
import { PRIORITIES } from '../queue/job.ts'
import { isCluster, type RedisClient } from './connection.ts'
import type { Keys } from './keys.ts'

export interface StreamTails {
  queue: string
  /** Last entry id per priority stream (PRIORITIES order) when the queue's read came up short. */
  tails: string[]
}

interface Lane {
  conn: RedisClient
  /** The read in flight: true when an entry landed, false when BLOCK ran out. */
  inFlight: Promise<boolean> | null
  /** When the read in flight was sent (ms). */
  sentAt: number
}

/**
 * How long past its BLOCK time a read may stay unanswered before its lane is given up and made
 * anew (a link that died silently; the command timeout normally ends it first).
 */
const LANE_GRACE_MS = 3000

export class EntryWaiter {
  private readonly connect: () => RedisClient
  private readonly keys: Keys
  private readonly perQueue: boolean
  private readonly lanes = new Map<string, Lane>()
  /** The waits in progress, ended at once by interrupt(). */
  private readonly waiting = new Set<(woke: boolean) => void>()
  private closed = false

  /**
   * `connect` makes a connection for blocking reads (no autopipelining, a timeout above the
   * BLOCK time); `probe` is a connection of the deployment, to tell whether it is a Cluster.
   */
  constructor(connect: () => RedisClient, keys: Keys, probe: RedisClient) {
    this.connect = connect
    this.keys = keys
    this.perQueue = isCluster(probe)
  }

  /**
   * True when an entry landed after the tails of one of `streams` within about `blockMs`; false
   * when none did, or when interrupt() cut the wait.
   */
  async wait(streams: StreamTails[], blockMs: number): Promise<boolean> {
    if (!streams.length || this.closed) return false
    const groups = this.perQueue ? streams.map((s) => [s]) : [streams]
    const reads = groups.map((group) => this.read(this.perQueue ? group[0]!.queue : '', group, blockMs))
    // The first lane to see an entry ends the wait; if none does, it ends when all have timed out
    // (or, should a lane hang, a little after its BLOCK time).
    return new Promise<boolean>((resolve, reject) => {
      let pending = reads.length
      const timer = setTimeout(() => finish(false), blockMs + LANE_GRACE_MS)
      const finish = (woke: boolean, err?: unknown) => {
        if (!this.waiting.delete(finish)) return
        clearTimeout(timer)
        if (err === undefined) resolve(woke)
        else reject(err)
      }
      this.waiting.add(finish)
      for (const r of reads) {
        r.then(
          (woke) => {
            if (woke) finish(true)
            else if (--pending === 0) finish(false)
          },
          (err) => finish(false, err),
        )
      }
    })
  }

  private read(name: string, group: StreamTails[], blockMs: number): Promise<boolean> {
    let lane = this.lanes.get(name)
    if (lane?.inFlight && Date.now() - lane.sentAt > blockMs + LANE_GRACE_MS) {
      // Unanswered long past its BLOCK time: the link is dead. A fresh lane takes over.
      lane.conn.disconnect()
      lane = undefined
    }
    if (!lane) {
      lane = { conn: this.connect(), inFlight: null, sentAt: 0 }
      this.lanes.set(name, lane)
    }
    if (lane.inFlight) return lane.inFlight
    const keys: string[] = []
    const ids: string[] = []
    for (const s of group) {
      PRIORITIES.forEach((p, i) => {
        keys.push(this.keys.stream(s.queue, p))
        ids.push(s.tails[i] ?? '0-0')
      })
    }
    const l = lane
    const read = (async () => {
      if (l.conn.status === 'wait' || l.conn.status === 'end') await l.conn.connect().catch(() => {})
      const res = await l.conn.xread('COUNT', 1, 'BLOCK', blockMs, 'STREAMS', ...keys, ...ids)
      return res !== null
    })()
    l.inFlight = read
    l.sentAt = Date.now()
    const clear = () => {
      if (l.inFlight === read) l.inFlight = null
    }
    read.then(clear, clear)
    return read
  }

  /**
   * Ends the waits in progress at once (they answer false) and cuts every blocked read; the
   * lanes reconnect on the next wait.
   */
  interrupt(): void {
    for (const finish of [...this.waiting]) finish(false)
    for (const lane of this.lanes.values()) {
      lane.conn.disconnect()
      lane.inFlight = null
    }
  }

  /** Ends the waits in progress and closes every lane's connection. */
  close(): void {
    this.closed = true
    this.interrupt()
    this.lanes.clear()
  }
}
