/**
 * Alert rules (ADR 0025), pure: what a rule is, its checks, the built-in rules the settings
 * define, and what each rule says about one snapshot of the engine -- which alert instances
 * (rule × queue [× task type]) have their condition true now, with the value measured.
 * The evaluator (worker/alert-evaluator.ts) turns that into pending → firing → resolved.
 */
import type { Config } from '../config.ts'
import { lacksWorkers } from './consumers.ts'
import { logicalQueue } from './partitions.ts'

export const RULE_KINDS = [
  'dlq_depth',
  'dlq_growth',
  'failure_rate',
  'no_worker',
  'oldest_waiting',
  'breaker_open',
] as const
export type RuleKind = (typeof RULE_KINDS)[number]
export const SEVERITIES = ['info', 'warning', 'critical'] as const
export type Severity = (typeof SEVERITIES)[number]
export const CHANNELS = ['webhook', 'slack', 'email'] as const
export type ChannelName = (typeof CHANNELS)[number]

/** What each kind measures, for docs, the API and messages. */
export const KIND_DOC: Record<RuleKind, string> = {
  dlq_depth: 'dead letters in the queue > threshold',
  dlq_growth: 'dead letters added within window_ms > threshold',
  failure_rate:
    'failed attempts / finished attempts of a task type within window_ms > threshold (0..1; at least min_count attempts)',
  no_worker: 'jobs waiting or running and no live worker serving the queue (threshold unused)',
  oldest_waiting: 'age of the oldest job waiting to start, ms > threshold (an SLO)',
  breaker_open: "a task type's circuit breaker is open (threshold unused)",
}

export interface AlertRule {
  id: string
  kind: RuleKind
  /** A queue name, or '*' for every queue. */
  queue: string
  /** failure_rate and breaker_open: a task type, or '*'. */
  task_type: string
  threshold: number
  window_ms: number
  /** The condition must hold this long before the alert fires (pending meanwhile). */
  for_ms: number
  severity: Severity
  enabled: boolean
  /** Cooldown between repeated notifications of a firing alert; null: ALERT_REPEAT_MS. */
  repeat_ms: number | null
  /** failure_rate: fewest finished attempts within the window for a rate to count. */
  min_count: number
  /** Channels to notify; empty: every configured one. */
  channels: ChannelName[]
  description: string
  /** Defined by the settings (a stored rule with its id overrides it). */
  builtin?: boolean
  /** A built-in rule replaced by a stored one. */
  overridden?: boolean
}

export type RuleInput = Partial<Omit<AlertRule, 'builtin' | 'overridden'>> & { kind: RuleKind; id?: string }

const ID = /^(?!\.\.?$)[A-Za-z0-9_.-]{1,64}$/
const SCOPE = /^(\*|(?!\.\.?$)[A-Za-z0-9_.~-]{1,128})$/
const TYPE_SCOPE = /^(\*|[A-Za-z0-9_.:/-]{1,128})$/
const DAY_MS = 86_400_000

/** A rule with defaults applied, checked; problems named by field (nothing is written with any). */
export function checkRule(input: RuleInput, problems: string[]): AlertRule | null {
  const start = problems.length
  const r = input as Record<string, unknown>
  if (typeof r.id !== 'string' || !ID.test(r.id))
    problems.push('id must be 1-64 letters, digits, _ . - (not . or ..)')
  if (!RULE_KINDS.includes(r.kind as RuleKind)) problems.push(`kind must be one of ${RULE_KINDS.join(', ')}`)
  const queue = (r.queue as string | undefined) ?? '*'
  if (typeof queue !== 'string' || !SCOPE.test(queue)) problems.push("queue must be a queue name or '*'")
  const taskType = (r.task_type as string | undefined) ?? '*'
  if (typeof taskType !== 'string' || !TYPE_SCOPE.test(taskType))
    problems.push("task_type must be a task type (letters, digits, _ . : / -) or '*'")
  const num = (name: string, v: unknown, lo: number, hi: number, int = true) => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi || (int && !Number.isInteger(v)))
      problems.push(`${name} must be ${int ? 'an integer' : 'a number'} from ${lo} to ${hi}`)
  }
  const kind = r.kind as RuleKind
  const threshold = (r.threshold as number | undefined) ?? (kind === 'failure_rate' ? 0.5 : 0)
  if (kind === 'failure_rate') num('threshold', threshold, 0, 1, false)
  else num('threshold', threshold, 0, 1e12, false)
  const windowMs = (r.window_ms as number | undefined) ?? 300_000
  num('window_ms', windowMs, 1000, DAY_MS)
  const forMs = (r.for_ms as number | undefined) ?? 0
  num('for_ms', forMs, 0, DAY_MS)
  const repeat = r.repeat_ms === undefined ? null : (r.repeat_ms as number | null)
  if (repeat !== null) num('repeat_ms', repeat, 0, 7 * DAY_MS)
  const minCount = (r.min_count as number | undefined) ?? 5
  num('min_count', minCount, 1, 1e9)
  const severity = (r.severity as Severity | undefined) ?? 'warning'
  if (!SEVERITIES.includes(severity)) problems.push(`severity must be one of ${SEVERITIES.join(', ')}`)
  const enabled = (r.enabled as boolean | undefined) ?? true
  if (typeof enabled !== 'boolean') problems.push('enabled must be true or false')
  const channels = (r.channels as ChannelName[] | undefined) ?? []
  if (!Array.isArray(channels) || channels.some((c) => !CHANNELS.includes(c)))
    problems.push(`channels must be a list of ${CHANNELS.join(', ')}`)
  const description = (r.description as string | undefined) ?? ''
  if (typeof description !== 'string' || description.length > 500)
    problems.push('description must be at most 500 characters')
  if (problems.length > start) return null
  return {
    id: r.id as string,
    kind,
    queue,
    task_type: taskType,
    threshold,
    window_ms: windowMs,
    for_ms: forMs,
    severity,
    enabled,
    repeat_ms: repeat,
    min_count: minCount,
    channels: [...new Set(channels)],
    description,
  }
}

/** The built-in rules, from the settings (ALERT_*). A stored rule with the same id replaces one. */
export function builtinRules(
  c: Pick<
    Config,
    | 'alertDlqThreshold'
    | 'alertDlqCritical'
    | 'alertDlqGrowth'
    | 'alertFailureRate'
    | 'alertFailureWindowMs'
    | 'alertOldestWaitingMs'
    | 'alertNoWorkerForMs'
  >,
): AlertRule[] {
  const base = {
    queue: '*',
    task_type: '*',
    window_ms: 300_000,
    for_ms: 0,
    enabled: true,
    repeat_ms: null,
    min_count: 5,
    channels: [] as ChannelName[],
    builtin: true,
  }
  return [
    {
      ...base,
      id: 'dlq_depth',
      kind: 'dlq_depth',
      threshold: c.alertDlqThreshold,
      severity: 'warning',
      description: 'DLQ threshold exceeded (ALERT_DLQ_THRESHOLD)',
    },
    {
      ...base,
      id: 'dlq_critical',
      kind: 'dlq_depth',
      threshold: c.alertDlqCritical,
      severity: 'critical',
      description: 'DLQ critical threshold exceeded (ALERT_DLQ_CRITICAL)',
    },
    {
      ...base,
      id: 'dlq_growth',
      kind: 'dlq_growth',
      threshold: c.alertDlqGrowth,
      window_ms: 900_000,
      severity: 'warning',
      description: 'DLQ growing fast (ALERT_DLQ_GROWTH per 15 min)',
    },
    {
      ...base,
      id: 'failure_rate',
      kind: 'failure_rate',
      threshold: c.alertFailureRate,
      window_ms: c.alertFailureWindowMs,
      severity: 'warning',
      description: 'task failures (ALERT_FAILURE_RATE over ALERT_FAILURE_WINDOW_MS)',
    },
    {
      ...base,
      id: 'no_worker',
      kind: 'no_worker',
      threshold: 0,
      for_ms: c.alertNoWorkerForMs,
      severity: 'critical',
      description: 'work waiting and no live worker (ALERT_NO_WORKER_FOR_MS)',
    },
    {
      ...base,
      id: 'oldest_waiting',
      kind: 'oldest_waiting',
      threshold: c.alertOldestWaitingMs,
      severity: 'warning',
      description: 'oldest waiting job over its SLO (ALERT_OLDEST_WAITING_MS)',
    },
    {
      ...base,
      id: 'breaker_open',
      kind: 'breaker_open',
      threshold: 0,
      severity: 'warning',
      description: 'a circuit breaker opened',
    },
  ]
}

/** Totals per task type used by failure_rate: finished attempts and failed ones. */
export interface TypeCounts {
  done: number
  failed: number
}

/** One look at the engine, as the evaluator reads it. */
export interface Snapshot {
  now: number
  queues: Array<{
    queue: string
    paused: boolean
    waiting: number
    active: number
    dlq: number
    oldest_waiting_ms: number | null
    types: Record<string, TypeCounts>
  }>
  /** Queues some live (not stopping) worker serves. */
  served: Set<string>
  breakers: Array<{ queue: string; type: string; state: 'open' | 'closed' | 'half_open' }>
}

/** A past sample: DLQ depth and per-type counts per queue at a time. */
export interface Sample {
  at: number
  q: Record<string, { dlq: number; types?: Record<string, TypeCounts> }>
}

export interface Condition {
  id: string
  rule: AlertRule
  labels: { queue: string; task_type?: string }
  value: number
  active: boolean
}

/** An alert instance's id: rule and labels (names hold no ':'). */
export function instanceId(rule: string, queue: string, taskType?: string): string {
  return taskType === undefined ? `${rule}:${queue}` : `${rule}:${queue}:${taskType}`
}

const matches = (scope: string, name: string) => scope === '*' || scope === name

/**
 * Every rule against the snapshot: the instances whose condition is true (active) and, for
 * the kinds measured per existing thing, those measured false. `baseline(windowMs)` gives the
 * oldest sample within that window (null while none exists: growth and rates are not judged).
 */
export function evaluate(
  rules: AlertRule[],
  snap: Snapshot,
  baseline: (windowMs: number) => Sample | null,
): Condition[] {
  const out: Condition[] = []
  for (const rule of rules) {
    if (!rule.enabled) continue
    const add = (labels: Condition['labels'], value: number, active: boolean) =>
      out.push({ id: instanceId(rule.id, labels.queue, labels.task_type), rule, labels, value, active })
    if (rule.kind === 'breaker_open') {
      for (const b of snap.breakers) {
        const q = logicalQueue(b.queue)
        if (!matches(rule.queue, q) || !matches(rule.task_type, b.type)) continue
        add({ queue: q, task_type: b.type }, b.state === 'open' ? 1 : 0, b.state === 'open')
      }
      continue
    }
    const past = rule.kind === 'dlq_growth' || rule.kind === 'failure_rate' ? baseline(rule.window_ms) : null
    for (const q of snap.queues) {
      if (!matches(rule.queue, q.queue)) continue
      switch (rule.kind) {
        case 'dlq_depth':
          add({ queue: q.queue }, q.dlq, q.dlq > rule.threshold)
          break
        case 'dlq_growth': {
          if (!past) break
          const grown = q.dlq - (past.q[q.queue]?.dlq ?? 0)
          add({ queue: q.queue }, grown, grown > rule.threshold)
          break
        }
        case 'oldest_waiting': {
          const age = q.oldest_waiting_ms ?? 0
          add({ queue: q.queue }, age, !q.paused && age > rule.threshold)
          break
        }
        case 'no_worker': {
          const work = q.waiting + q.active
          add({ queue: q.queue }, work, lacksWorkers(q, snap.served.has(q.queue) ? 1 : 0))
          break
        }
        case 'failure_rate': {
          if (!past) break
          for (const [type, now] of Object.entries(q.types)) {
            if (!matches(rule.task_type, type)) continue
            const then = past.q[q.queue]?.types?.[type] ?? { done: 0, failed: 0 }
            const done = now.done - then.done
            const failed = now.failed - then.failed
            const rate = done > 0 ? failed / done : 0
            add(
              { queue: q.queue, task_type: type },
              Math.round(rate * 1000) / 1000,
              done >= rule.min_count && rate > rule.threshold,
            )
          }
          break
        }
      }
    }
  }
  return out
}

/** One line saying what an alert is about. */
export function summary(rule: AlertRule, labels: Condition['labels'], value: number): string {
  const where = labels.task_type ? `${labels.queue}/${labels.task_type}` : labels.queue
  switch (rule.kind) {
    case 'dlq_depth':
      return `${where}: ${value} dead letters (threshold ${rule.threshold})`
    case 'dlq_growth':
      return `${where}: DLQ grew by ${value} within ${Math.round(rule.window_ms / 60000)} min (threshold ${rule.threshold})`
    case 'failure_rate':
      return `${where}: ${Math.round(value * 100)} % of attempts failed within ${Math.round(rule.window_ms / 60000)} min (threshold ${Math.round(rule.threshold * 100)} %)`
    case 'no_worker':
      return `${where}: ${value} jobs waiting or running and no live worker serves the queue`
    case 'oldest_waiting':
      return `${where}: oldest waiting job is ${Math.round(value / 1000)} s old (SLO ${Math.round(rule.threshold / 1000)} s)`
    case 'breaker_open':
      return `${where}: circuit breaker open`
  }
}

/** Whether a silence covers an alert. */
export interface Silence {
  id: string
  rule: string | null
  queue: string | null
  task_type: string | null
  until: number
  comment: string
  created_by: string
  created_at: number
}

export function silenced(
  silences: Silence[],
  rule: string,
  labels: Condition['labels'],
  now: number,
): Silence | null {
  return (
    silences.find(
      (s) =>
        s.until > now &&
        (s.rule === null || s.rule === rule) &&
        (s.queue === null || s.queue === labels.queue) &&
        (s.task_type === null || s.task_type === labels.task_type),
    ) ?? null
  )
}
