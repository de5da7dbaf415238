/**
 * Flows in Redis (docs/decisions/0019). A flow spans queues, so slots on a Cluster, and no
 * script can span them: the record is written first in a slot of its own, the nodes are
 * created from it in their queues (idempotently: ids derive from the flow id), and what a
 * finished node means for its children travels through its queue's outbox (written by the
 * finishing script, atomically with the state change) to `flow_release` in each child's slot.
 * Every step is safe to repeat, so a crash anywhere is repaired by doing it again.
 */
import { type FlowPolicy, nodeJobId } from '../queue/flows.ts'
import { F, type JobState, pairsToRecord } from '../queue/job.ts'
import type { JobStore, NewJobRecord } from './store.ts'
import { StoreBase } from './store-base.ts'

/**
 * A node: key, queue, job id, parents and the job to create. The record stores it under
 * `n:<key>` without its key, and without its id when that is `<flow>.<key>`: `{i, q, p, r}`.
 */
export interface FlowNodeRecord<J = StoredJob> {
  /** Its place in the flow's order (parents before children): the order `get` lists nodes in. */
  i: number
  k: string
  q: string
  id: string
  p: Array<[string, FlowPolicy]>
  /** The job to create (the record drops it once every node exists: flow_done). */
  r?: J
  /** 1: an existing job, named in a later job's `depends_on` -- joined (flow_attach), not created. */
  x?: 1
}

/**
 * What the record keeps of a node's job: only what `jobOf` cannot rebuild (defaults left out,
 * the flow fields derived) -- a record holds every node of a flow (docs/performance.md).
 */
export interface StoredJob {
  task_type: string
  payload: string
  max_retries: number
  priority?: NewJobRecord['priority']
  timeout_ms?: number
  run_at?: number
  partition_key?: string
  /** trace, backoff. */
  extra?: Record<string, string>
  /** A job added alone with depends_on keeps its idempotency key: [key, hash, TTL s]. */
  idem?: [string, string, number]
}

function storedJob(r: NewJobRecord): StoredJob {
  const s: StoredJob = { task_type: r.task_type, payload: r.payload, max_retries: r.max_retries }
  if (r.priority !== 'normal') s.priority = r.priority
  if (r.timeout_ms) s.timeout_ms = r.timeout_ms
  if (r.run_at) s.run_at = r.run_at
  if (r.partition_key) s.partition_key = r.partition_key
  if (Object.keys(r.extra).length) s.extra = r.extra
  if (r.idem_hash) s.idem = [r.idempotency_key, r.idem_hash, r.idem_ttl_s]
  return s
}

/** The job a node's enqueue writes: its stored fields, its id, and its flow fields. */
function jobOf(flow: string, n: FlowNodeRecord): NewJobRecord {
  const r = n.r!
  const extra: Record<string, string> = { ...(r.extra ?? {}), [F.flow]: flow, [F.flow_node]: n.k }
  if (n.p.length) extra[F.flow_pending] = String(n.p.length)
  return {
    id: n.id,
    task_type: r.task_type,
    payload: r.payload,
    priority: r.priority ?? 'normal',
    max_retries: r.max_retries,
    timeout_ms: r.timeout_ms ?? 0,
    run_at: r.run_at ?? 0,
    idem_hash: r.idem?.[1] ?? '',
    idempotency_key: r.idem?.[0] ?? '',
    idem_ttl_s: r.idem?.[2] ?? 0,
    partition_key: r.partition_key ?? '',
    extra,
  }
}

/**
 * A child as its parent's entry in the record names it: key, queue, edge policy, and its job id
 * when that is not `<flow>.<key>`.
 */
type ChildRef = [string, string, FlowPolicy, string?]

/** Each node's children (the record's `c:<node>` lists), from the nodes' parents. */
function childrenOf(flow: string, nodes: FlowNodeRecord[]): Record<string, ChildRef[]> {
  const children: Record<string, ChildRef[]> = {}
  for (const n of nodes) {
    for (const [parent, policy] of n.p) {
      children[parent] ??= []
      children[parent].push(n.id === nodeJobId(flow, n.k) ? [n.k, n.q, policy] : [n.k, n.q, policy, n.id])
    }
  }
  return children
}

/** A node from its record's field `n:<key>`. */
function storedNode(flow: string, field: string, json: string): FlowNodeRecord {
  const n = JSON.parse(json) as Omit<FlowNodeRecord, 'k' | 'id'> & { id?: string }
  const k = field.slice(2)
  return { ...n, k, id: n.id ?? nodeJobId(flow, k), p: asArray(n.p) }
}

/** What complete() found of the existing jobs a flow's nodes depend on. */
export interface AttachOutcome {
  /** Existing parents gone before they could be joined: their children were cancelled. */
  missing: string[]
}

export interface FlowNodeView {
  key: string
  queue: string
  job_id: string
  /** The job's state now (null: not created yet, or removed after its retention). */
  state: JobState | null
  depends_on: Array<{ node: string; on_failure: FlowPolicy }>
  /** An existing job the flow's child was added to depend on (not created by the flow). */
  existing: boolean
}

export interface FlowView {
  id: string
  /** `creating` until every node exists (the maintenance leader finishes a stalled one). */
  state: 'creating' | 'created'
  created_at: number
  idempotency_key: string | null
  nodes: FlowNodeView[]
  edges: Array<{ from: string; to: string; on_failure: FlowPolicy }>
  /** How many nodes are in each state. */
  counts: Partial<Record<JobState | 'unknown', number>>
}

/** Nodes per enqueue call while creating a flow. */
const CREATE_CHUNK = 500
/** Outbox entries read per round of a drain. */
const DRAIN_PAGE = 100
/** Releases per flow_release call (a page's entries may fan out to many children). */
const RELEASES_PER_CALL = 500

const asArray = <T>(v: unknown): T[] => (Array.isArray(v) ? (v as T[]) : [])

/** FLOW_RETENTION_S when none is given (config.ts has the same default). */
const DEFAULT_FLOW_RETENTION_S = 604_800

export class FlowStore extends StoreBase {
  private readonly jobs: JobStore
  /**
   * How long a record outlives its last release: its TTL, set at creation (plus the wait of
   * its latest scheduled root) and pushed forward by every release of the flow (EXPIRE GT).
   */
  private readonly retentionS: number

  constructor(jobs: JobStore, opts: { retentionS?: number } = {}) {
    super(jobs.redis, { ...jobs.opts, clock: jobs.clock })
    this.jobs = jobs
    this.retentionS = opts.retentionS ?? DEFAULT_FLOW_RETENTION_S
  }

  /**
   * Writes the flow's record, then its nodes (see complete). A flow that exists already is
   * completed if it is still `creating` (a retry after a crash) and answered as it is.
   * Returns whether this call wrote the record, and the existing parents found gone.
   */
  async create(
    flow: string,
    idempotencyKey: string,
    given: FlowNodeRecord<NewJobRecord>[],
  ): Promise<{ created: boolean } & AttachOutcome> {
    const nodes = given.map(
      (n): FlowNodeRecord => (n.r ? { ...n, r: storedJob(n.r) } : { ...n, r: undefined }),
    )
    // Registered before the record, so the leader finds a flow whose creator died part-way.
    await this.redis.zadd(this.keys.flowsCreating(), this.clock.now(), flow)
    const children = childrenOf(flow, nodes)
    const stored = Object.fromEntries(
      nodes.map(({ k, id, ...rest }) => [k, id === nodeJobId(flow, k) ? rest : { ...rest, id }]),
    )
    // A root scheduled far ahead keeps its flow's record until it is due, and the retention after.
    const now = this.clock.now()
    const runAt = (r: NewJobRecord) => (r.run_at < 0 ? now - r.run_at : r.run_at)
    const waitS = Math.ceil(Math.max(0, ...given.map((n) => (n.r ? runAt(n.r) - now : 0))) / 1000)
    const [made, state] = await this.run<[number, string]>('flow_create', this.keys.flowQueue(flow), [
      idempotencyKey,
      JSON.stringify(stored),
      JSON.stringify(children),
      this.retentionS + waitS,
    ])
    let outcome: AttachOutcome = { missing: [] }
    if (state === 'creating') outcome = await this.complete(flow, made === 1 ? nodes : undefined)
    else await this.redis.zrem(this.keys.flowsCreating(), flow)
    return { created: made === 1, ...outcome }
  }

  /**
   * Creates a flow's nodes from its record and marks it created. Nodes with parents first
   * (`waiting`), the roots last: no node can finish before every node exists, so every
   * release finds its child. Then every parent joins in its slot (attach): the existing jobs
   * the nodes depend on become members, and every parent gets its children on its own hash
   * (F.flow_children; a parent that ends before has its entry released from the record,
   * which the flow has just written). Idempotent (an existing id is left as it is, a joined
   * parent joins again as a no-op). `nodes`: all of the flow's nodes.
   */
  async complete(flow: string, nodes?: FlowNodeRecord[]): Promise<AttachOutcome> {
    nodes ??= await this.readNodes(flow)
    const children = childrenOf(flow, nodes)
    for (const roots of [false, true]) {
      const byQueue = new Map<string, NewJobRecord[]>()
      for (const n of nodes) {
        // A node without its job was created already (flow_done drops the copies once all
        // exist); an existing job's node is joined (attach), not created.
        if ((n.p.length === 0) !== roots || n.x || !n.r) continue
        const list = byQueue.get(n.q) ?? []
        list.push(jobOf(flow, n))
        byQueue.set(n.q, list)
      }
      for (const [queue, records] of byQueue)
        for (let i = 0; i < records.length; i += CREATE_CHUNK)
          await this.jobs.enqueue(queue, records.slice(i, i + CREATE_CHUNK))
    }
    const outcome = await this.attach(flow, nodes, children)
    await this.run('flow_done', this.keys.flowQueue(flow), [])
    await this.redis.zrem(this.keys.flowsCreating(), flow)
    return outcome
  }

  /**
   * Joins a flow's parents in their slots once every child exists, storing each one's children
   * on its hash (its end then releases them with or without the record). The existing jobs
   * among the nodes (`x`: named in `depends_on` of a job added alone) become members: from
   * here on each one's end reaches its queue's outbox (one that has ended already answers at
   * once: flow_attach writes the entry); one gone meanwhile (a race with its retention or
   * removal) cancels its children. The outboxes written to are drained here, so a child of
   * ended parents is queued before the caller hears back. (A node of the flow's own that is
   * gone ended already, its entry written -- a retention of 0 removes it as it completes --, and
   * a job holding one's id that is not the flow's is left alone: 'foreign'.)
   */
  private async attach(
    flow: string,
    nodes: FlowNodeRecord[],
    children: Record<string, ChildRef[]>,
  ): Promise<AttachOutcome> {
    const byQueue = new Map<string, FlowNodeRecord[]>()
    for (const n of nodes) {
      if (!n.x && !children[n.k]?.length) continue
      const list = byQueue.get(n.q) ?? []
      list.push(n)
      byQueue.set(n.q, list)
    }
    const missing: FlowNodeRecord[] = []
    let due = 0
    const ended = new Set<string>()
    for (const [queue, list] of byQueue) {
      const replies = await this.run<Array<[string, number]>>('flow_attach', queue, [
        list.length,
        ...list.flatMap((n) => [n.id, flow, n.k, JSON.stringify(children[n.k] ?? [])]),
      ])
      replies.forEach(([outcome, at], i) => {
        if (outcome === 'not_found') {
          if (list[i]!.x) missing.push(list[i]!)
        } else if (outcome !== 'attached' && outcome !== 'member' && outcome !== 'foreign') ended.add(queue)
        due = Math.max(due, Number(at))
      })
    }
    // A parent scheduled far ahead keeps the record until it is due, and the retention after.
    const waitS = Math.ceil((due - this.clock.now()) / 1000)
    if (waitS > 0) await this.redis.expire(this.keys.flow(flow), this.retentionS + waitS, 'GT')
    if (missing.length) {
      const gone = new Set(missing.map((n) => n.k))
      const byChildQueue = new Map<string, string[]>()
      for (const c of nodes) {
        for (const [parent] of c.p) {
          if (!gone.has(parent)) continue
          const args = byChildQueue.get(c.q) ?? []
          args.push(c.id, flow, parent, 'cancelled', '', 'cancel')
          byChildQueue.set(c.q, args)
        }
      }
      for (const [queue, args] of byChildQueue)
        await this.run('flow_release', queue, [args.length / 6, ...args])
    }
    for (const queue of ended) await this.drain(queue)
    return { missing: missing.map((n) => `${n.q}/${n.id}`) }
  }

  /** Every node of the flow's record (complete() skips those created already). */
  private async readNodes(flow: string): Promise<FlowNodeRecord[]> {
    const h = await this.redis.hgetall(this.keys.flow(flow))
    return Object.entries(h)
      .filter(([k]) => k.startsWith('n:'))
      .map(([k, v]) => storedNode(flow, k, v))
  }

  /** The flow with its nodes' live states and its edges, or null. */
  async get(flow: string): Promise<FlowView | null> {
    const h = await this.redis.hgetall(this.keys.flow(flow))
    if (!h.st) return null
    const nodes = Object.entries(h)
      .filter(([k]) => k.startsWith('n:'))
      .map(([k, v]) => storedNode(flow, k, v))
      .sort((x, y) => x.i - y.i)
    // One command per node, sent at once (on a Cluster they go to several nodes: no pipeline).
    const states = await Promise.all(nodes.map((n) => this.redis.hget(this.keys.job(n.q, n.id), F.state)))
    const counts: FlowView['counts'] = {}
    const views = nodes.map((n, i): FlowNodeView => {
      const state = (states[i] as JobState | null) ?? null
      counts[state ?? 'unknown'] = (counts[state ?? 'unknown'] ?? 0) + 1
      return {
        key: n.k,
        queue: n.q,
        job_id: n.id,
        state,
        depends_on: asArray<[string, FlowPolicy]>(n.p).map(([node, on_failure]) => ({ node, on_failure })),
        existing: n.x === 1,
      }
    })
    return {
      id: flow,
      state: h.st as FlowView['state'],
      created_at: Number(h.ca),
      idempotency_key: h.ik || null,
      nodes: views,
      edges: views.flatMap((v) =>
        v.depends_on.map((d) => ({ from: d.node, to: v.key, on_failure: d.on_failure })),
      ),
      counts,
    }
  }

  /**
   * Carries a queue's outbox to the children: a page of entries at a time, every release of
   * the page whose child is in one queue in one `flow_release` call (in the child's slot), the
   * calls at once, then the page's entries deleted with one XDEL. Safe to run anywhere, any
   * number of times at once: a release applied twice changes nothing, and the order of two
   * releases of one parent does not matter (`c` is final). Returns the entries handled.
   */
  async drain(queue: string, maxEntries = 10_000): Promise<number> {
    const outbox = this.keys.flowOut(queue)
    let done = 0
    let after = '-'
    while (done < maxEntries) {
      const page = await this.redis.xrange(outbox, after, '+', 'COUNT', DRAIN_PAGE)
      if (page.length === 0) break
      const keep = await this.releasePage(page.map(([, fields]) => pairsToRecord(fields)))
      const gone = page.filter((_, i) => !keep.has(i)).map(([entry]) => entry)
      if (gone.length) await this.redis.xdel(outbox, ...gone)
      done += page.length
      after = `(${page[page.length - 1]![0]}`
      if (page.length < DRAIN_PAGE) break
    }
    return done
  }

  /**
   * Releases the children of a page's entries; answers the entries that must stay: a child
   * not created yet (its flow still `creating`: it will exist). The children come with the
   * entry (`c`, copied from the member's hash by its finishing script): a member that ended
   * after its flow's record expired (it waited longer than FLOW_RETENTION_S: a backlog, a long
   * retry delay, a stay in the DLQ then a retry) still releases them. An entry without them (a
   * member from before they were kept on it, or a hand-written one) reads the record.
   */
  private async releasePage(entries: Array<Record<string, string>>): Promise<Set<number>> {
    const lists = await Promise.all(
      entries.map(async (e) => {
        const record = this.keys.flow(e.f ?? '')
        const [[state, list]] = await Promise.all([
          this.redis.hmget(record, 'st', ...(e.c ? [] : [`c:${e.n ?? ''}`])),
          // A flow still at work keeps its record (never shortened: GT; a no-op once it expired).
          this.redis.expire(record, this.retentionS, 'GT'),
        ])
        // Neither the entry's list nor a record: nobody left to release.
        const json = e.c ?? (state ? list : undefined)
        return { state, children: asArray<ChildRef>(JSON.parse(json ?? '[]')) }
      }),
    )
    // Calls per child queue, of at most RELEASES_PER_CALL releases each.
    const calls: Array<{ queue: string; args: string[]; entry: number[] }> = []
    const open = new Map<string, (typeof calls)[number]>()
    lists.forEach(({ children }, i) => {
      const e = entries[i]!
      const flow = e.f ?? ''
      for (const [child, queue, policy, id] of children) {
        let call = open.get(queue)
        if (!call || call.entry.length >= RELEASES_PER_CALL) {
          call = { queue, args: [], entry: [] }
          calls.push(call)
          open.set(queue, call)
        }
        call.args.push(id ?? nodeJobId(flow, child), flow, e.n ?? '', e.o ?? '', e.r ?? '', policy)
        call.entry.push(i)
      }
    })
    const keep = new Set<number>()
    await Promise.all(
      calls.map(async ({ queue, ...call }) => {
        const replies = await this.run<string[]>('flow_release', queue, [call.entry.length, ...call.args])
        replies.forEach((r, k) => {
          const i = call.entry[k]!
          if (r === 'not_found' && lists[i]!.state === 'creating') keep.add(i)
        })
      }),
    )
    return keep
  }

  /** Flows left `creating` longer than `graceMs` (their creator died): completed from their records. */
  async rollForward(graceMs: number): Promise<number> {
    const stale = await this.redis.zrangebyscore(
      this.keys.flowsCreating(),
      '-inf',
      this.clock.now() - graceMs,
      'LIMIT',
      0,
      100,
    )
    for (const flow of stale) {
      const state = await this.redis.hget(this.keys.flow(flow), 'st')
      if (state === 'creating') await this.complete(flow)
      else await this.redis.zrem(this.keys.flowsCreating(), flow)
    }
    return stale.length
  }
}
