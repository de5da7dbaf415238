/**
 * The alert evaluator (ADR 0025), run by the holder of the alerts lease every
 * ALERT_EVAL_INTERVAL_MS: reads the engine once (queue stats, live workers, breakers), applies
 * the rules, and moves each alert instance pending → firing → resolved. Every transition is
 * one `alert_write` call -- fenced by the lease token and a compare-and-set on the instance as
 * read -- that writes the instance, the notification and the history entry together: a
 * transition notifies exactly once even when a deposed evaluator still runs a tick, and an
 * evaluator killed part-way leaves either all of it or nothing (the next leader redoes it).
 *
 * Notifications: firing (when it fires, or when a silence over a firing alert ends), repeat
 * (every repeat_ms / ALERT_REPEAT_MS while it fires, unless acknowledged or silenced),
 * resolved (when it was notified firing); and the daily DLQ digest at ALERT_DIGEST_AT (UTC).
 */
import type { Config } from '../config.ts'
import {
  type AlertRule,
  type Condition,
  evaluate,
  type Sample,
  type Silence,
  type Snapshot,
  silenced,
  summary,
  type TypeCounts,
} from '../queue/alert-rules.ts'
import { liveWorkersByQueue } from '../queue/consumers.ts'
import type { Queue } from '../queue/queue.ts'
import type { AlertInstance, AlertStore, Notification } from '../redis/alerts.ts'

export type EvaluatorSettings = Pick<
  Config,
  | 'alertRepeatMs'
  | 'alertDigestAt'
  | 'alertDlqThreshold'
  | 'alertDlqCritical'
  | 'alertDlqGrowth'
  | 'alertFailureRate'
  | 'alertFailureWindowMs'
  | 'alertOldestWaitingMs'
  | 'alertNoWorkerForMs'
>

export interface EvaluatorOptions {
  queue: Queue
  store: AlertStore
  settings: EvaluatorSettings
  /** NEGATIVE CONTROL ONLY (DTQ_UNSAFE=no-alert-lease): transitions written without fence or compare. */
  write?: AlertStore['write']
}

/** What a tick did (tests, logs). */
export interface TickReport {
  transitions: number
  notifications: number
  refused: number
}

/** The next instance, and what to notify, for an instance and its condition now. */
export function decide(
  cur: AlertInstance | null,
  cond: Condition | null,
  ctx: { now: number; acked: boolean; silence: Silence | null; repeatMs: number },
): { next: AlertInstance | null; notify: Notification['type'] | null; history: string | null } | null {
  const { now } = ctx
  if (!cond?.active) {
    if (!cur) return null
    if (cur.status === 'pending') return { next: null, notify: null, history: null }
    const notify = cur.last_sent !== null && !ctx.silence ? 'resolved' : null
    return { next: null, notify, history: 'resolved' }
  }
  const rule = cond.rule
  const base = {
    id: cond.id,
    rule: rule.id,
    kind: rule.kind,
    severity: rule.severity,
    labels: cond.labels,
    value: cond.value,
    threshold: rule.threshold,
    summary: summary(rule, cond.labels, cond.value),
  }
  if (!cur || cur.status === 'pending') {
    const since = cur?.since ?? now
    if (now - since < rule.for_ms) {
      if (cur) return null // still pending: nothing to write
      return {
        next: { ...base, status: 'pending', since, fired_at: null, last_sent: null, seq: 0 },
        notify: null,
        history: null,
      }
    }
    const notify = ctx.silence ? null : 'firing'
    return {
      next: {
        ...base,
        status: 'firing',
        since,
        fired_at: now,
        last_sent: notify ? now : null,
        seq: (cur?.seq ?? 0) + 1,
      },
      notify,
      history: 'firing',
    }
  }
  // Firing and still true.
  if (!ctx.silence && cur.last_sent === null)
    return { next: { ...cur, ...base, last_sent: now, seq: cur.seq + 1 }, notify: 'firing', history: null }
  if (
    !ctx.silence &&
    !ctx.acked &&
    ctx.repeatMs > 0 &&
    cur.last_sent !== null &&
    now - cur.last_sent >= ctx.repeatMs
  )
    return { next: { ...cur, ...base, last_sent: now, seq: cur.seq + 1 }, notify: 'repeat', history: null }
  if (cur.value !== cond.value) return { next: { ...cur, ...base }, notify: null, history: null }
  return null
}

const TITLE: Record<Notification['type'], string> = {
  firing: 'FIRING',
  repeat: 'STILL FIRING',
  resolved: 'RESOLVED',
  test: 'TEST',
  digest: 'DIGEST',
  purge: 'PURGE',
}

function notification(
  type: Notification['type'],
  inst: AlertInstance,
  rule: AlertRule | undefined,
  now: number,
): Notification {
  const { seq: _seq, ...alert } = inst
  return {
    id: `${inst.id}#${inst.fired_at ?? inst.since}#${type === 'resolved' ? 'resolved' : inst.seq}`,
    type,
    at: now,
    severity: inst.severity,
    title: `[${TITLE[type]}] ${rule?.description || inst.rule}`,
    text: type === 'resolved' ? `resolved: ${inst.summary}` : inst.summary,
    alert: type === 'resolved' ? { ...alert, resolved_at: now } : alert,
    channels: rule?.channels.length ? rule.channels : undefined,
  }
}

export class AlertEvaluator {
  private readonly o: EvaluatorOptions

  constructor(o: EvaluatorOptions) {
    this.o = o
  }

  /** Reads the engine as the rules need it. */
  async snapshot(rules: AlertRule[]): Promise<Snapshot> {
    const { queue } = this.o
    const now = queue.clock.now()
    const kinds = new Set(rules.filter((r) => r.enabled).map((r) => r.kind))
    const [stats, workers] = await Promise.all([
      queue.stats(),
      kinds.has('no_worker') ? queue.registry.list() : Promise.resolve([]),
    ])
    const breakers = kinds.has('breaker_open')
      ? (await queue.limits.views(await queue.store.queues())).flatMap((v) =>
          Object.entries(v.breakers).map(([type, b]) => ({ queue: v.queue, type, state: b.state })),
        )
      : []
    const served = new Set(liveWorkersByQueue(workers).keys())
    const perType = kinds.has('failure_rate')
    return {
      now,
      served,
      breakers,
      queues: stats.queues.map((q) => {
        const types: Record<string, TypeCounts> = {}
        if (perType) {
          for (const [k, v] of Object.entries(q.totals)) {
            const m = /^(completed|failed|retried)\|(.+)$/.exec(k)
            if (!m) continue
            types[m[2]!] ??= { done: 0, failed: 0 }
            const t = types[m[2]!]!
            t.done += v
            if (m[1] !== 'completed') t.failed += v
          }
        }
        return {
          queue: q.queue,
          paused: q.paused,
          waiting: q.counts.queued,
          active: q.counts.active,
          dlq: q.dlq,
          oldest_waiting_ms: q.oldest_waiting_ms,
          types,
        }
      }),
    }
  }

  /** One evaluation, as the holder of `token`. */
  async tick(token: string): Promise<TickReport> {
    const { store, settings } = this.o
    const report: TickReport = { transitions: 0, notifications: 0, refused: 0 }
    const rules = await store.rules(settings)
    const snap = await this.snapshot(rules)
    const now = snap.now
    // Windows of the rules measured against the past: their baselines, then today's sample.
    const windows = [
      ...new Set(
        rules
          .filter((r) => r.enabled && (r.kind === 'dlq_growth' || r.kind === 'failure_rate'))
          .map((r) => r.window_ms),
      ),
    ]
    const baselines = new Map<number, Sample | null>()
    for (const w of windows) baselines.set(w, await store.sampleSince(now - w))
    if (windows.length) {
      const withTypes = rules.some((r) => r.enabled && r.kind === 'failure_rate')
      const q: Sample['q'] = {}
      for (const x of snap.queues) q[x.queue] = withTypes ? { dlq: x.dlq, types: x.types } : { dlq: x.dlq }
      // A sample that cannot be written (Redis at maxmemory refuses XADD) costs a point of the
      // windows, never the evaluation: the transitions' function runs on a full Redis.
      await store.addSample({ at: now, q }, Math.max(...windows) + 60_000).catch(() => undefined)
    }
    const conds = evaluate(rules, snap, (w) => baselines.get(w) ?? null)
    const byId = new Map(conds.map((c) => [c.id, c]))
    const [states, acks, silences] = await Promise.all([store.states(), store.acks(), store.silences()])
    await store.dropEndedSilences()
    const rulesById = new Map(rules.map((r) => [r.id, r]))
    const ids = new Set([...Object.keys(states), ...conds.filter((c) => c.active).map((c) => c.id)])
    for (const id of ids) {
      const raw = states[id] ?? null
      let cur: AlertInstance | null = null
      if (raw) {
        try {
          cur = JSON.parse(raw) as AlertInstance
        } catch {
          cur = null
        }
      }
      const cond = byId.get(id) ?? null
      const rule = cond?.rule ?? (cur ? rulesById.get(cur.rule) : undefined)
      const labels = cond?.labels ?? cur?.labels
      if (!labels) continue
      const ack = acks[id]
      const d = decide(cur, cond, {
        now,
        acked: !!ack && !!cur && ack.fired_at === cur.fired_at,
        silence: silenced(silences, rule?.id ?? cur?.rule ?? '', labels, now),
        repeatMs: rule?.repeat_ms ?? settings.alertRepeatMs,
      })
      if (!d) continue
      const about = d.next ?? cur!
      const n = d.notify ? notification(d.notify, about, rule, now) : undefined
      const r = await (this.o.write ?? store.write.bind(store))({
        token,
        hash: ':state',
        field: id,
        expected: raw,
        value: d.next ? JSON.stringify(d.next) : null,
        notification: n,
        history: d.history
          ? {
              type: d.history,
              at: now,
              alert: id,
              rule: about.rule,
              labels: about.labels,
              severity: about.severity,
              value: cond?.value ?? about.value,
              summary: about.summary,
            }
          : n && d.notify === 'firing'
            ? {
                type: 'notified',
                at: now,
                alert: id,
                rule: about.rule,
                labels: about.labels,
                summary: about.summary,
              }
            : undefined,
      })
      if (r === 'not_leader') {
        report.refused++
        return report // deposed: the new leader redoes what is left
      }
      if (r === 'changed') {
        report.refused++
        continue
      }
      report.transitions++
      if (n) report.notifications++
    }
    if (settings.alertDigestAt) report.notifications += await this.digest(token, snap)
    return report
  }

  /**
   * The daily DLQ digest: once the day's ALERT_DIGEST_AT (UTC) has passed, one notification per
   * day (compare-and-set on the meta field `digest`): per queue its dead letters now and the
   * jobs dead-lettered since the last digest.
   */
  private async digest(token: string, snap: Snapshot): Promise<number> {
    const { store, queue } = this.o
    const [hh, mm] = this.o.settings.alertDigestAt.split(':').map(Number)
    const day = new Date(snap.now).toISOString().slice(0, 10)
    const due = Date.parse(`${day}T00:00:00Z`) + (hh! * 60 + mm!) * 60_000
    if (snap.now < due) return 0
    const raw = await store.redis.hget(store.key('meta'), 'digest')
    const last = raw ? (JSON.parse(raw) as { day: string; failed: Record<string, number> }) : null
    if (last?.day === day) return 0
    const stats = await queue.stats()
    const failed: Record<string, number> = {}
    const rows: Array<{ queue: string; dlq: number; dead_lettered: number }> = []
    for (const q of stats.queues) {
      failed[q.queue] = q.totals.failed ?? 0
      const since = Math.max(0, (q.totals.failed ?? 0) - (last?.failed[q.queue] ?? 0))
      if (q.dlq > 0 || since > 0) rows.push({ queue: q.queue, dlq: q.dlq, dead_lettered: since })
    }
    rows.sort((a, b) => b.dlq - a.dlq)
    const total = rows.reduce((s, r) => s + r.dlq, 0)
    const text =
      rows.length === 0
        ? 'No dead letters.'
        : `${total} dead letters in ${rows.length} queue(s): ${rows
            .slice(0, 20)
            .map((r) => `${r.queue} ${r.dlq} (+${r.dead_lettered})`)
            .join(', ')}`
    const n: Notification = {
      id: `digest#${day}`,
      type: 'digest',
      at: snap.now,
      severity: 'info',
      title: `[DIGEST] DLQ summary ${day}`,
      text,
      details: { day, queues: rows, since: last?.day ?? null },
    }
    const r = await store.write({
      token,
      hash: ':meta',
      field: 'digest',
      expected: raw,
      value: JSON.stringify({ day, failed }),
      notification: n,
      history: { type: 'digest', at: snap.now, summary: text },
    })
    return r === 'written' ? 1 : 0
  }
}
