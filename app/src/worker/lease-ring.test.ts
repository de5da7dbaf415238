import { Worker as Thread } from 'node:worker_threads'
import { describe, expect, it } from 'vitest'
import { LeaseRingReader, LeaseRingWriter, TRACK, UNTRACK } from './lease-ring.ts'

type Rec = [number, string, string, number, number]
const drain = (r: LeaseRingReader) => {
  const out: Rec[] = []
  r.read((...rec) => out.push(rec))
  return out
}

describe('lease ops ring', () => {
  it('hands records over in order, across the end of the ring, many times round', () => {
    const w = LeaseRingWriter.create(200)
    const r = new LeaseRingReader(w.sab)
    const all: Rec[] = []
    const want: Rec[] = []
    for (let i = 0; i < 500; i++) {
      const rec: Rec = [i % 3 ? TRACK : UNTRACK, 'q', `job-${i}`, i, i * 10]
      if (!w.write(...rec)) {
        all.push(...drain(r))
        expect(w.write(...rec)).toBe(true)
      }
      want.push(rec)
    }
    all.push(...drain(r))
    expect(all).toEqual(want)
  })

  it('refuses a record when full or when a name does not fit the format, and changes nothing', () => {
    const w = LeaseRingWriter.create(100)
    const r = new LeaseRingReader(w.sab)
    const a: Rec = [TRACK, 'default', 'a'.repeat(30), 1, 2] // 56 bytes
    const b: Rec = [UNTRACK, 'default', 'b'.repeat(10), 0, 0] // 36 bytes
    const c: Rec = [TRACK, 'default', 'c'.repeat(10), 3, 4]
    expect(w.write(...a)).toBe(true)
    expect(w.write(...b)).toBe(true)
    expect(w.write(...c)).toBe(false) // full: what is unread is never overwritten
    expect(w.write(TRACK, 'default', 'has space')).toBe(false)
    expect(w.write(TRACK, 'default', 'é')).toBe(false)
    expect(w.write(TRACK, 'default', 'x'.repeat(256))).toBe(false)
    expect(drain(r)).toEqual([a, b])
    expect(w.write(...c)).toBe(true) // past the end: at 0
    expect(drain(r)).toEqual([c])
    expect(drain(r)).toEqual([])
  })

  it('is read by another thread while this one is blocked', async () => {
    const w = LeaseRingWriter.create(4096)
    const t = new Thread(
      `const { parentPort, workerData } = require('node:worker_threads')
       const ctl = new Int32Array(workerData, 0, 2)
       // Waits for the writer's head to move, without any message.
       while (Atomics.load(ctl, 0) === 0) Atomics.wait(ctl, 1, 0, 10)
       parentPort.postMessage(Atomics.load(ctl, 0))`,
      { eval: true, workerData: w.sab },
    )
    const got = new Promise((resolve) => t.once('message', resolve))
    await new Promise((r) => setTimeout(r, 50))
    w.write(TRACK, 'q', 'j1', 1, 0)
    // Block this thread: the reader still sees the record.
    const until = Date.now() + 100
    while (Date.now() < until) {}
    expect(await got).toBeGreaterThan(0)
    await t.terminate()
  })
})
