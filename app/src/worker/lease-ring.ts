/**
 * The lease ops ring: a single-producer, single-consumer ring buffer in a SharedArrayBuffer.
 * The main thread writes `track`/`untrack` records as it starts and finishes jobs; the lease
 * thread reads them on a short timer of its own (and before every renewal). Writing wakes
 * nobody: a postMessage per batch woke the lease thread, which on a busy 2-core machine
 * preempted the main thread for ~90 µs each time (~10 % of a no-op drain's throughput).
 *
 * A record is visible to the reader once written (Atomics.store of the head after the bytes),
 * so a handler that blocks the main thread right after it starts still has its lease renewed.
 *
 * Record: kind u8 | queue length u8 | id length u8 | epoch f64 | deadline f64 | queue | id,
 * names as latin1 (queue names and ids are ASCII). A record that does not fit before the end
 * of the ring leaves a WRAP byte and starts again at 0.
 */
export const RING_BYTES = 1 << 20

export const TRACK = 1
export const UNTRACK = 2
const WRAP = 3

const HEAD = 0 // written by the writer only
const TAIL = 1 // written by the reader only
const HEADER_BYTES = 8
const REC_BYTES = 19
const PRINTABLE = /^[\x21-\x7e]{1,255}$/

export type RingRecord = (kind: number, queue: string, id: string, epoch: number, deadline: number) => void

class Ring {
  readonly sab: SharedArrayBuffer
  protected readonly ctl: Int32Array
  protected readonly buf: Buffer
  protected readonly view: DataView
  protected readonly cap: number

  constructor(sab: SharedArrayBuffer) {
    this.sab = sab
    this.ctl = new Int32Array(sab, 0, 2)
    this.buf = Buffer.from(sab, HEADER_BYTES)
    this.view = new DataView(sab, HEADER_BYTES)
    this.cap = sab.byteLength - HEADER_BYTES
  }
}

export class LeaseRingWriter extends Ring {
  static create(bytes = RING_BYTES): LeaseRingWriter {
    return new LeaseRingWriter(new SharedArrayBuffer(HEADER_BYTES + bytes))
  }

  /** Appends a record; false when it cannot (ring full, or a name the format cannot hold). */
  write(kind: number, queue: string, id: string, epoch = 0, deadline = 0): boolean {
    if (!PRINTABLE.test(queue) || !PRINTABLE.test(id)) return false
    const n = REC_BYTES + queue.length + id.length
    const cap = this.cap
    let head = Atomics.load(this.ctl, HEAD)
    const tail = Atomics.load(this.ctl, TAIL)
    const free = cap - ((head - tail + cap) % cap) - 1
    if (head + n > cap) {
      // Skip the ring's end (marked), write at 0.
      if (cap - head + n > free) return false
      this.buf[head] = WRAP
      head = 0
    } else if (n > free) {
      return false
    }
    const b = this.buf
    b[head] = kind
    b[head + 1] = queue.length
    b[head + 2] = id.length
    this.view.setFloat64(head + 3, epoch)
    this.view.setFloat64(head + 11, deadline)
    b.write(queue, head + REC_BYTES, 'latin1')
    b.write(id, head + REC_BYTES + queue.length, 'latin1')
    Atomics.store(this.ctl, HEAD, (head + n) % cap)
    return true
  }
}

export class LeaseRingReader extends Ring {
  /** Hands every record written since the last read to `fn`, in order. */
  read(fn: RingRecord): number {
    const cap = this.cap
    const head = Atomics.load(this.ctl, HEAD)
    let pos = Atomics.load(this.ctl, TAIL)
    let n = 0
    const b = this.buf
    while (pos !== head) {
      if (b[pos] === WRAP) {
        pos = 0
        continue
      }
      const ql = b[pos + 1]!
      const il = b[pos + 2]!
      const q0 = pos + REC_BYTES
      fn(
        b[pos]!,
        b.toString('latin1', q0, q0 + ql),
        b.toString('latin1', q0 + ql, q0 + ql + il),
        this.view.getFloat64(pos + 3),
        this.view.getFloat64(pos + 11),
      )
      n++
      pos = (q0 + ql + il) % cap
    }
    Atomics.store(this.ctl, TAIL, pos)
    return n
  }
}
