/**
 * Flows (docs/decisions/0019): a graph of jobs submitted at once, each node a normal job spec
 * in its own queue, started when all its parents completed. This module is the pure part: the
 * spec, its checks (unknown references, cycles, size) and the deterministic ids that make
 * creating a flow idempotent. No I/O; `redis/flows.ts` writes and releases.
 */
import { createHash, randomBytes } from 'node:crypto'
import { JOB_ID_PATTERN, type Problems, QUEUE_PATTERN } from './validate.ts'

/** What a failed or cancelled parent does to a child: fail it, ignore it, or cancel the child. */
export const FLOW_POLICIES = ['fail', 'ignore', 'cancel'] as const
export type FlowPolicy = (typeof FLOW_POLICIES)[number]

export interface FlowEdgeSpec {
  /** The parent's node key. */
  node: string
  /** When the parent fails (default `fail`) -- or is cancelled: `ignore` ignores that too, else the child is cancelled. */
  on_failure?: FlowPolicy
}

/** A node: a job spec (Queue's JobSpec, without id and idempotency_key) with a key and its parents. */
export interface FlowNodeSpec {
  /** The node's key, unique in the flow: what `depends_on` names, and part of its job id. */
  key: string
  depends_on?: Array<string | FlowEdgeSpec>
  task_type: string
  queue?: string
  [field: string]: unknown
}

export interface FlowSpec {
  nodes: FlowNodeSpec[]
  /** The same key gives the same flow (and creates nothing more): retry a failed submission with it. */
  idempotency_key?: string
}

/** A checked node: its key, its parents with their policies, its depth (roots are 0). */
export interface FlowNodePlan {
  key: string
  /** The node's job fields (key and depends_on taken out), checked by Queue like any job's. */
  spec: Record<string, unknown>
  parents: Array<[string, FlowPolicy]>
  children: string[]
  depth: number
}

export const NODE_KEY_PATTERN = /^[A-Za-z0-9_-]{1,64}$/
const FLOW_ID_PATTERN = /^f[A-Za-z0-9_-]{20}$/

/** A flow's id: from its idempotency key (the same key, the same flow), else random. */
export function flowId(idempotencyKey?: string): string {
  const raw = idempotencyKey
    ? createHash('sha256').update(`flow\n${idempotencyKey}`).digest()
    : randomBytes(15)
  return `f${raw.toString('base64url').slice(0, 20)}`
}

export function isFlowId(id: unknown): id is string {
  return typeof id === 'string' && FLOW_ID_PATTERN.test(id)
}

/** A node's job id: the flow id and its key (never all digits: it starts with `f`). */
export function nodeJobId(flow: string, key: string): string {
  return `${flow}.${key}`
}

const NODE_FIELDS = new Set(['key', 'depends_on'])

/**
 * Checks a flow's graph -- keys, references, cycles, size -- and orders it: every problem is
 * pushed to `problems` (nothing is written for a flow with any). The job fields of each node
 * are checked by the caller (Queue.toRecord, like any job).
 */
export function planFlow(spec: FlowSpec, maxNodes: number, problems: Problems): FlowNodePlan[] {
  if (!spec || typeof spec !== 'object' || !Array.isArray(spec.nodes) || spec.nodes.length === 0) {
    problems.push('nodes must be a non-empty array')
    return []
  }
  for (const k of Object.keys(spec)) {
    if (k !== 'nodes' && k !== 'idempotency_key')
      problems.push(`${k} is not a known field (nodes, idempotency_key)`)
  }
  if (spec.nodes.length > maxNodes) {
    problems.push(`a flow has at most ${maxNodes} nodes (FLOW_MAX_NODES), got ${spec.nodes.length}`)
    return []
  }
  const plans = new Map<string, FlowNodePlan>()
  for (const [i, n] of spec.nodes.entries()) {
    if (!n || typeof n !== 'object') {
      problems.push(`nodes[${i}]: must be an object`)
      continue
    }
    if (typeof n.key !== 'string' || !NODE_KEY_PATTERN.test(n.key)) {
      problems.push(`nodes[${i}]: key must be 1-64 letters, digits, _ -`)
      continue
    }
    if (plans.has(n.key)) {
      problems.push(`nodes[${i}]: key ${n.key} is used twice`)
      continue
    }
    for (const k of ['id', 'job_id', 'idempotency_key'])
      if (k in n)
        problems.push(`nodes[${i}]: ${k} is not allowed in a flow (node ids derive from the flow's)`)
    const spec: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(n)) if (!NODE_FIELDS.has(k)) spec[k] = v
    const parents: Array<[string, FlowPolicy]> = []
    const deps: unknown = n.depends_on ?? []
    if (!Array.isArray(deps)) problems.push(`nodes[${i}]: depends_on must be an array`)
    else
      for (const d of deps) {
        const edge = typeof d === 'string' ? { node: d } : d
        const policy = edge?.on_failure ?? 'fail'
        if (!edge || typeof edge.node !== 'string')
          problems.push(`nodes[${i}]: depends_on items are node keys or {node, on_failure}`)
        else if (!FLOW_POLICIES.includes(policy))
          problems.push(`nodes[${i}]: on_failure must be one of ${FLOW_POLICIES.join(', ')}`)
        else if (parents.some(([p]) => p === edge.node))
          problems.push(`nodes[${i}]: depends on ${edge.node} twice`)
        else parents.push([edge.node, policy])
      }
    if (parents.length && (n.delay_ms !== undefined || n.run_at !== undefined))
      problems.push(`nodes[${i}]: delay_ms and run_at are for nodes without parents`)
    plans.set(n.key, { key: n.key, spec, parents, children: [], depth: 0 })
  }
  for (const p of plans.values()) {
    for (const [parent] of p.parents) {
      const q = plans.get(parent)
      if (!q) problems.push(`node ${p.key} depends on unknown node ${parent}`)
      else q.children.push(p.key)
    }
  }
  if (problems.length) return []
  // Kahn's order: what is left once no node without pending parents remains is a cycle.
  const pending = new Map([...plans.values()].map((p) => [p.key, p.parents.length]))
  const order: FlowNodePlan[] = [...plans.values()].filter((p) => p.parents.length === 0)
  for (let i = 0; i < order.length; i++) {
    const p = order[i]!
    for (const c of p.children) {
      const child = plans.get(c)!
      child.depth = Math.max(child.depth, p.depth + 1)
      const left = pending.get(c)! - 1
      pending.set(c, left)
      if (left === 0) order.push(child)
    }
  }
  if (order.length < plans.size) {
    const cyclic = [...pending].filter(([, n]) => n > 0).map(([k]) => k)
    problems.push(`the graph has a cycle through ${cyclic.slice(0, 10).join(', ')}`)
    return []
  }
  return order
}

// ---- depends_on on a job added alone ---------------------------------------------------------

/** A parent named in `depends_on` of a job added alone: an existing job, by id (and queue). */
export interface DependencySpec {
  job_id: string
  /** Its queue (default: the new job's). */
  queue?: string
  on_failure?: FlowPolicy
}

/** A checked parent: where it is, its edge policy, and its node key in the flow made for it. */
export interface DependencyPlan {
  id: string
  queue: string
  on_failure: FlowPolicy
  /** Its job id, or `<queue>/<id>` when in another queue than the child: `parent_results`' key. */
  key: string
}

/**
 * Checks the `depends_on` of a job added alone (existing jobs: ids, or {job_id, queue,
 * on_failure}): every problem is pushed to `problems`. `child` is the new job's queue and id
 * (if given): a job cannot depend on itself.
 */
export function planDependencies(
  deps: unknown,
  child: { queue: string; id?: string },
  max: number,
  problems: Problems,
): DependencyPlan[] {
  if (!Array.isArray(deps) || deps.length === 0) {
    problems.push('depends_on must be a non-empty array of job ids or {job_id, queue?, on_failure?}')
    return []
  }
  if (deps.length > max) {
    problems.push(`depends_on names at most ${max} jobs (FLOW_MAX_NODES - 1), got ${deps.length}`)
    return []
  }
  const plans: DependencyPlan[] = []
  deps.forEach((d, i) => {
    const edge = (typeof d === 'string' ? { job_id: d } : d) as DependencySpec
    if (!edge || typeof edge !== 'object') {
      problems.push(`depends_on[${i}]: a job id or {job_id, queue?, on_failure?}`)
      return
    }
    const unknown = Object.keys(edge).filter((k) => !['job_id', 'queue', 'on_failure'].includes(k))
    if (unknown.length)
      problems.push(
        `depends_on[${i}]: ${unknown.join(', ')} is not a known field (job_id, queue, on_failure)`,
      )
    const queue = edge.queue ?? child.queue
    const policy = edge.on_failure ?? 'fail'
    if (typeof edge.job_id !== 'string' || !JOB_ID_PATTERN.test(edge.job_id))
      problems.push(`depends_on[${i}]: job_id must be 1-128 letters, digits, _ . -`)
    else if (typeof queue !== 'string' || !QUEUE_PATTERN.test(queue))
      problems.push(`depends_on[${i}]: queue must be 1-64 letters, digits, _ . -`)
    else if (!FLOW_POLICIES.includes(policy))
      problems.push(`depends_on[${i}]: on_failure must be one of ${FLOW_POLICIES.join(', ')}`)
    else if (queue === child.queue && edge.job_id === child.id)
      problems.push(`depends_on[${i}]: a job cannot depend on itself`)
    else if (plans.some((p) => p.id === edge.job_id && p.queue === queue))
      problems.push(`depends_on[${i}]: job ${edge.job_id} in queue ${queue} is named twice`)
    else
      plans.push({
        id: edge.job_id,
        queue,
        on_failure: policy,
        key: queue === child.queue ? edge.job_id : `${queue}/${edge.job_id}`,
      })
  })
  return plans
}
