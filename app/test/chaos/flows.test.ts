/**
 * Flows under kill -9 (docs/decisions/0019): a 1000-node flow -- fan-out, fan-in, diamonds,
 * three queues -- run by worker processes killed -9 again and again. The handler writes when
 * each run starts and ends to a ledger outside Redis; the checker asks of it: did every node
 * run, did any child start before each of its parents had ended a run, is any node lost. The
 * NEGATIVE CONTROL (DTQ_UNSAFE=flow-early-release: a child is queued when any one parent
 * completes) must be caught by the same checker.
 */
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { loadConfig } from '../../src/config.ts'
import type { FlowNodeSpec } from '../../src/queue/flows.ts'
import { Queue } from '../../src/queue/queue.ts'
import { targetEnv, waitFor } from '../helpers.ts'
import { FULL, RedisServer, report, System } from './harness.ts'

const cleanups: Array<() => unknown> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

const QUEUES = ['fa', 'fb', 'fc']
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/**
 * A layered graph of n nodes (deterministic): one root fanning out to the first layer, each
 * later node with 1-3 parents in the layer above (diamonds where two share parents), some
 * reaching two layers up, and one sink fanning in from the whole last layer.
 */
function chaosGraph(n: number, width: number, ms: number): FlowNodeSpec[] {
  let seed = 42
  const rnd = (k: number) => {
    seed = (seed * 1103515245 + 12345) % 2147483648
    return seed % k
  }
  const nodes: FlowNodeSpec[] = [{ key: 'root', queue: QUEUES[0], task_type: 'flowledger', payload: { ms } }]
  const layers: string[][] = [['root']]
  for (let i = 1; i < n - 1; i++) {
    const layer = Math.ceil(i / width)
    if (!layers[layer]) layers[layer] = []
    const key = `n${i}`
    const above = layers[layer - 1]!
    const parents = new Set<string>()
    const k = layer === 1 ? 1 : 1 + rnd(3)
    for (let j = 0; j < k; j++) parents.add(above[rnd(above.length)]!)
    if (layer >= 2 && rnd(4) === 0) parents.add(layers[layer - 2]![rnd(layers[layer - 2]!.length)]!)
    nodes.push({
      key,
      queue: QUEUES[i % 3],
      task_type: 'flowledger',
      payload: { ms },
      depends_on: [...parents],
    })
    layers[layer].push(key)
  }
  nodes.push({
    key: 'sink',
    queue: QUEUES[1],
    task_type: 'flowledger',
    payload: { ms },
    depends_on: layers.at(-1),
  })
  return nodes
}

/** start / end times per job id, from the flow ledger. */
function readFlowLedger(file: string): Map<string, { starts: number[]; ends: number[] }> {
  const runs = new Map<string, { starts: number[]; ends: number[] }>()
  if (!existsSync(file)) return runs
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const [id, what, at] = line.split(' ')
    if (!id || !at) continue
    const r = runs.get(id) ?? { starts: [], ends: [] }
    ;(what === 'start' ? r.starts : r.ends).push(Number(at))
    runs.set(id, r)
  }
  return runs
}

describe('flow faults', () => {
  for (const control of [false, true]) {
    it(`${control ? 'NEGATIVE CONTROL (children released early): caught' : 'a 1000-node flow under repeated kill -9 of its workers: every node ran once its parents had, none lost'}`, async () => {
      const redis = await RedisServer.start()
      cleanups.push(() => redis.stop())
      const sys = new System(redis.url, {
        WORKER_QUEUES: QUEUES.join(','),
        FLOW_LEDGER_FILE: '',
        ...(control ? { DTQ_UNSAFE: 'flow-early-release' } : {}),
      })
      const ledger = join(sys.ledger, '..', 'flow-ledger.txt')
      sys.env.FLOW_LEDGER_FILE = ledger
      cleanups.push(() => sys.stop())
      await sys.connect()
      const queue = new Queue(sys.redis, loadConfig({ ...targetEnv(sys.target), KEY_PREFIX: sys.prefix }))
      cleanups.push(() => queue.close())

      const n = 1000
      const nodes = chaosGraph(n, FULL ? 25 : 50, FULL ? 60 : 5)
      const workers = [sys.worker(), sys.worker(), sys.worker()]
      const { flow } = await queue.addFlow({ nodes })
      const edges = flow.edges
      const started = Date.now()
      const kills = FULL ? 20 : 6
      let killed = 0
      const done = async () => {
        const f = await queue.getFlow(flow.id)
        return f!.counts.completed === n
      }
      for (; killed < kills && !(await done()); killed++) {
        await sleep(800)
        const victim = workers.splice(killed % workers.length, 1)[0]!
        victim.child.kill('SIGKILL')
        workers.push(sys.worker())
      }
      // The flow as it stands and the ledger's runs: the edges whose child started before its
      // parent had ended any run (released before its parents completed).
      const inspect = async () => {
        const view = (await queue.getFlow(flow.id))!
        const runs = readFlowLedger(ledger)
        const jobOf = new Map(view.nodes.map((x) => [x.key, x.job_id]))
        const firstEnd = (key: string) =>
          Math.min(...(runs.get(jobOf.get(key)!)?.ends ?? [Number.POSITIVE_INFINITY]))
        const early = edges.filter((e) => {
          const starts = runs.get(jobOf.get(e.to)!)?.starts ?? []
          return starts.length > 0 && Math.min(...starts) < firstEnd(e.from)
        })
        return { view, runs, early }
      }
      let finished = true
      if (control)
        // Until an early release shows (or the flow is done): on a loaded machine the workers
        // restarted after each kill may take seconds before they run anything.
        await waitFor(async () => (await inspect()).early.length > 0 || (await done()), {
          timeoutMs: 40_000,
          what: 'an early release',
        }).catch(() => undefined)
      else
        await waitFor(done, { timeoutMs: FULL ? 240_000 : 40_000, what: 'flow completed' }).catch(
          () => (finished = false),
        )

      const { view, runs, early } = await inspect()
      const neverRan = view.nodes.filter((x) => !(runs.get(x.job_id)?.ends.length ?? 0))
      const reran = view.nodes.filter((x) => (runs.get(x.job_id)?.starts.length ?? 0) > 1).length
      const outboxes = await Promise.all(QUEUES.map((q) => sys.redis.xlen(sys.keys.flowOut(q))))
      report(control ? 'flow early release (control)' : 'flow under kill -9', {
        nodes: n,
        edges: edges.length,
        kills: killed,
        seconds: (Date.now() - started) / 1000,
        completed: view.counts.completed ?? 0,
        neverRan: neverRan.length,
        early: early.length,
        reran,
        outbox: outboxes.reduce((a, b) => a + b, 0),
      })
      if (control) {
        expect(early.length, 'children released early are caught').toBeGreaterThan(0)
        return
      }
      expect(finished).toBe(true)
      expect(early).toEqual([])
      expect(neverRan).toEqual([])
      expect(view.counts).toEqual({ completed: n })
      await waitFor(
        async () =>
          (await Promise.all(QUEUES.map((q) => sys.redis.xlen(sys.keys.flowOut(q))))).every((l) => l === 0),
        {
          what: 'outboxes drained',
        },
      )
    }, 300_000)
  }
})
