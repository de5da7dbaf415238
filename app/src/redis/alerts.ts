/**
 * Alerts in Redis (ADR 0025): rules, alert instances, acknowledgements, silences, the history,
 * the notification outbox, delivery counters, the evaluators' lease and the samples rates are
 * measured against. Every key is `<prefix>:{:alerts}<suffix>` -- one slot of its own -- and
 * bounded: the streams by MAXLEN, the hashes by the rules × labels that exist, silences until
 * they end, samples by the longest window.
 *
 * A transition (pending → firing → resolved, a repeat, the digest) is one call of the function
 * `alert_write`: fenced by the lease and a compare-and-set on the value read, it writes the new
 * value, the notification and the history entry together or not at all.
 */
import { randomBytes } from 'node:crypto'
import { DtqError } from '../errors.ts'
import {
  type AlertRule,
  builtinRules,
  CHANNELS,
  type ChannelName,
  checkRule,
  type RuleInput,
  type Sample,
  type Silence,
  silenced,
} from '../queue/alert-rules.ts'
import type { JobStore } from './store.ts'
import { StoreBase } from './store-base.ts'

/** The alerts' key suffixes (after `<prefix>:{:alerts}`). */
export const ALERT_KEY = {
  rules: ':rules',
  state: ':state',
  acks: ':acks',
  silences: ':silences',
  history: ':history',
  outbox: ':outbox',
  attempts: ':attempts',
  sent: ':sent',
  meta: ':meta',
  samples: ':samples',
  leader: ':leader',
} as const

/** Bounds of the streams (approximate, MAXLEN ~). */
export const OUTBOX_MAX = 10_000
export const HISTORY_MAX = 5_000
/** Most stored rules and live silences: a bad client cannot grow them without bound. */
export const MAX_RULES = 500
export const MAX_SILENCES = 500

export type AlertStatus = 'pending' | 'firing'

/** An alert instance as stored in `:state` (JSON): one per rule × labels while its condition holds. */
export interface AlertInstance {
  id: string
  rule: string
  kind: AlertRule['kind']
  severity: AlertRule['severity']
  labels: { queue: string; task_type?: string }
  status: AlertStatus
  value: number
  threshold: number
  summary: string
  /** When the condition was first seen true (pending since). */
  since: number
  fired_at: number | null
  /** Last notification sent (queued in the outbox) for it; null while none. */
  last_sent: number | null
  /** Transitions and notifications so far: part of each notification's id. */
  seq: number
}

export interface AlertView extends AlertInstance {
  acknowledged: { by: string; at: number } | null
  silenced_by: string | null
}

/** What the outbox carries; receivers dedupe by `id`. */
export interface Notification {
  id: string
  type: 'firing' | 'repeat' | 'resolved' | 'test' | 'digest' | 'purge'
  at: number
  severity: AlertRule['severity']
  title: string
  text: string
  alert?: Omit<AlertInstance, 'seq'> & { resolved_at?: number }
  details?: Record<string, unknown>
  /** Only these channels (empty: all configured). */
  channels?: ChannelName[]
}

export interface HistoryEntry {
  id: string
  type: string
  at: number
  alert?: string
  rule?: string
  labels?: { queue: string; task_type?: string }
  severity?: string
  value?: number
  summary?: string
  by?: string
  channel?: string
  error?: string
}

export type WriteResult = 'written' | 'changed' | 'not_leader'

export class AlertStore extends StoreBase {
  constructor(jobs: JobStore) {
    super(jobs.redis, { ...jobs.opts, clock: jobs.clock })
  }

  key(suffix: keyof typeof ALERT_KEY): string {
    return this.keys.alerts(ALERT_KEY[suffix])
  }

  // ---- the lease ---------------------------------------------------------------------------

  /** The evaluators' lease (function `lead` on its own key): true while `token` holds it. */
  async lead(token: string, ttlMs: number, release = false): Promise<boolean> {
    const args = [this.clock.now(), 0, 0, 0, token, ttlMs, release ? 'release' : 'hold']
    return (await this.lib.call<number>(this.redis, 'lead', this.key('leader'), args)) === 1
  }

  /** One fenced, compare-and-set transition with its notification and history entry. */
  async write(o: {
    token: string
    hash: ':state' | ':meta'
    field: string
    expected: string | null
    value: string | null
    notification?: Notification
    history?: Omit<HistoryEntry, 'id'>
  }): Promise<WriteResult> {
    const r = await this.lib.call<number>(this.redis, 'alert_write', this.keys.alerts(), [
      this.clock.now(),
      0,
      0,
      0,
      o.token,
      o.hash,
      o.field,
      o.expected ?? '',
      o.value ?? '',
      o.notification ? JSON.stringify(o.notification) : '',
      o.history ? JSON.stringify(o.history) : '',
      OUTBOX_MAX,
      HISTORY_MAX,
    ])
    return r === 1 ? 'written' : r === 0 ? 'changed' : 'not_leader'
  }

  // ---- rules -------------------------------------------------------------------------------

  /** Built-in rules (from the settings) overlaid by stored ones, in id order. */
  async rules(defaults: Parameters<typeof builtinRules>[0]): Promise<AlertRule[]> {
    const stored = await this.redis.hgetall(this.key('rules'))
    const byId = new Map(builtinRules(defaults).map((r) => [r.id, r]))
    for (const [id, json] of Object.entries(stored)) {
      try {
        const r = JSON.parse(json) as AlertRule
        const builtin = byId.get(id)?.builtin ?? false
        byId.set(id, { ...r, builtin, overridden: builtin })
      } catch {
        // A foreign value: skipped (the API only writes checked JSON).
      }
    }
    return [...byId.values()].sort((a, b) => a.id.localeCompare(b.id))
  }

  /** Checks and stores a rule (bad input: VALIDATION, nothing written). */
  async putRule(input: RuleInput, isBuiltin: boolean): Promise<AlertRule> {
    const problems: string[] = []
    const rule = checkRule(input, problems)
    if (!rule) throw new DtqError('VALIDATION', 'invalid alert rule', { problems })
    const key = this.key('rules')
    if (!isBuiltin && !(await this.redis.hexists(key, rule.id)) && (await this.redis.hlen(key)) >= MAX_RULES)
      throw new DtqError('VALIDATION', `at most ${MAX_RULES} stored rules`)
    await this.redis.hset(key, rule.id, JSON.stringify(rule))
    return rule
  }

  async storedRule(id: string): Promise<boolean> {
    return (await this.redis.hexists(this.key('rules'), id)) === 1
  }

  /** Removes a stored rule (a built-in one falls back to its settings); whether it existed. */
  async deleteRule(id: string): Promise<boolean> {
    return (await this.redis.hdel(this.key('rules'), id)) === 1
  }

  // ---- instances, acknowledgements ---------------------------------------------------------

  /** The stored instances, as raw JSON by id (what the compare-and-set compares). */
  states(): Promise<Record<string, string>> {
    return this.redis.hgetall(this.key('state'))
  }

  async acks(): Promise<Record<string, { fired_at: number; by: string; at: number }>> {
    const raw = await this.redis.hgetall(this.key('acks'))
    const out: Record<string, { fired_at: number; by: string; at: number }> = {}
    for (const [id, json] of Object.entries(raw)) {
      try {
        out[id] = JSON.parse(json)
      } catch {}
    }
    return out
  }

  /** The alerts now (pending and firing), with their acknowledgement and silence. */
  async list(): Promise<AlertView[]> {
    const [states, acks, silences] = await Promise.all([this.states(), this.acks(), this.silences()])
    const now = this.clock.now()
    const out: AlertView[] = []
    for (const json of Object.values(states)) {
      let a: AlertInstance
      try {
        a = JSON.parse(json)
      } catch {
        continue
      }
      const ack = acks[a.id]
      out.push({
        ...a,
        acknowledged: ack && ack.fired_at === a.fired_at ? { by: ack.by, at: ack.at } : null,
        silenced_by: silenced(silences, a.rule, a.labels, now)?.id ?? null,
      })
    }
    const rank = { critical: 0, warning: 1, info: 2 }
    return out.sort(
      (a, b) =>
        (a.status === b.status ? 0 : a.status === 'firing' ? -1 : 1) ||
        rank[a.severity] - rank[b.severity] ||
        a.id.localeCompare(b.id),
    )
  }

  /** Acknowledges a firing alert: its repeats stop until it resolves. */
  async ack(id: string, by: string): Promise<AlertView> {
    const json = await this.redis.hget(this.key('state'), id)
    const a = json ? (JSON.parse(json) as AlertInstance) : null
    if (!a) throw new DtqError('NOT_FOUND', `no alert ${id}`)
    if (a.status !== 'firing') throw new DtqError('INVALID_STATE', `alert ${id} is ${a.status}, not firing`)
    const at = this.clock.now()
    await this.redis.hset(this.key('acks'), id, JSON.stringify({ fired_at: a.fired_at, by, at }))
    await this.addHistory({ type: 'acknowledged', at, alert: id, rule: a.rule, labels: a.labels, by })
    return (
      (await this.list()).find((x) => x.id === id) ?? { ...a, acknowledged: { by, at }, silenced_by: null }
    )
  }

  // ---- silences ----------------------------------------------------------------------------

  /** Live silences (those ended are left out; the evaluator deletes them). */
  async silences(all = false): Promise<Silence[]> {
    const raw = await this.redis.hgetall(this.key('silences'))
    const now = this.clock.now()
    const out: Silence[] = []
    for (const json of Object.values(raw)) {
      try {
        const s = JSON.parse(json) as Silence
        if (all || s.until > now) out.push(s)
      } catch {}
    }
    return out.sort((a, b) => a.until - b.until)
  }

  async addSilence(s: Omit<Silence, 'id' | 'created_at'>): Promise<Silence> {
    const now = this.clock.now()
    const problems: string[] = []
    if (s.rule === null && s.queue === null && s.task_type === null)
      problems.push('give at least one of rule, queue, task_type')
    if (s.rule !== null && !/^(?!\.\.?$)[A-Za-z0-9_.-]{1,64}$/.test(s.rule))
      problems.push('rule is not a rule id')
    if (s.queue !== null && !/^(?!\.\.?$)[A-Za-z0-9_.~-]{1,128}$/.test(s.queue))
      problems.push('queue is not a queue name')
    if (s.task_type !== null && !/^[A-Za-z0-9_.:/-]{1,128}$/.test(s.task_type))
      problems.push('task_type is not a task type')
    if (!Number.isFinite(s.until) || s.until <= now) problems.push('until must be in the future')
    if (s.comment.length > 500 || s.created_by.length > 100) problems.push('comment or author too long')
    if (problems.length) throw new DtqError('VALIDATION', 'invalid silence', { problems })
    if ((await this.silences()).length >= MAX_SILENCES)
      throw new DtqError('VALIDATION', `at most ${MAX_SILENCES} live silences`)
    const silence: Silence = {
      ...s,
      id: `s${now.toString(36)}${randomBytes(3).toString('hex')}`,
      created_at: now,
    }
    await this.redis.hset(this.key('silences'), silence.id, JSON.stringify(silence))
    const what = [
      s.rule && `rule ${s.rule}`,
      s.queue && `queue ${s.queue}`,
      s.task_type && `type ${s.task_type}`,
    ]
      .filter(Boolean)
      .join(', ')
    const summary = `${what} until ${new Date(s.until).toISOString()}${s.comment ? `: ${s.comment}` : ''}`
    await this.addHistory({ type: 'silenced', at: now, rule: s.rule ?? undefined, by: s.created_by, summary })
    return silence
  }

  async deleteSilence(id: string, by: string): Promise<boolean> {
    const gone = (await this.redis.hdel(this.key('silences'), id)) === 1
    if (gone) await this.addHistory({ type: 'unsilenced', at: this.clock.now(), by })
    return gone
  }

  /** Deletes silences that ended (the evaluator, each tick). */
  async dropEndedSilences(): Promise<void> {
    const ended = (await this.silences(true)).filter((s) => s.until <= this.clock.now()).map((s) => s.id)
    if (ended.length) await this.redis.hdel(this.key('silences'), ...ended)
  }

  // ---- history, outbox, counters -----------------------------------------------------------

  async addHistory(h: Omit<HistoryEntry, 'id'>): Promise<void> {
    await this.redis.xadd(this.key('history'), 'MAXLEN', '~', HISTORY_MAX, '*', 'h', JSON.stringify(h))
  }

  /** Newest first, at most `limit`, before the entry id `before` (a page's cursor). */
  async history(limit = 100, before?: string): Promise<{ entries: HistoryEntry[]; next: string | null }> {
    const end = before ? `(${before}` : '+'
    const raw = (await this.redis.xrevrange(this.key('history'), end, '-', 'COUNT', limit)) as Array<
      [string, string[]]
    >
    const entries = raw.flatMap(([id, fields]) => {
      try {
        return [{ ...(JSON.parse(fields[1] ?? '{}') as HistoryEntry), id }]
      } catch {
        return []
      }
    })
    return { entries, next: raw.length === limit ? raw[raw.length - 1]![0] : null }
  }

  /** A notification that is no transition (a purge summary): straight into the outbox. */
  async notify(n: Notification): Promise<void> {
    await this.redis.xadd(this.key('outbox'), 'MAXLEN', '~', OUTBOX_MAX, '*', 'n', JSON.stringify(n))
  }

  /** A DLQ purge's summary, for the channels (and the history). */
  async purgeSummary(deleted: number, olderThanDays: number, queue?: string): Promise<void> {
    const at = this.clock.now()
    const where = queue ? `queue ${queue}` : 'every queue'
    const text = `${deleted} dead letters purged from ${where} (older than ${olderThanDays} days)`
    await this.notify({
      id: `purge#${at}#${randomBytes(3).toString('hex')}`,
      type: 'purge',
      at,
      severity: 'info',
      title: '[PURGE] DLQ purged',
      text,
      details: { deleted, older_than_days: olderThanDays, queue: queue ?? null },
    })
    await this.addHistory({ type: 'purge', at, summary: text })
  }

  /** `dlq_alerts_sent_total{channel,outcome}`: sent, retried (an attempt failed), failed (given up). */
  async count(channel: ChannelName, outcome: 'sent' | 'retried' | 'failed'): Promise<void> {
    await this.redis.hincrby(this.key('sent'), `${channel}|${outcome}`, 1)
  }

  async sentCounts(): Promise<Array<{ channel: string; outcome: string; count: number }>> {
    const raw = await this.redis.hgetall(this.key('sent'))
    return Object.entries(raw)
      .map(([k, v]) => {
        const [channel = '', outcome = ''] = k.split('|')
        return { channel, outcome, count: Number(v) }
      })
      .filter((c) => (CHANNELS as readonly string[]).includes(c.channel))
      .sort((a, b) => a.channel.localeCompare(b.channel) || a.outcome.localeCompare(b.outcome))
  }

  // ---- samples (rates and growth over a window) --------------------------------------------

  /** Records a sample at `now` and drops those older than `keepMs`; a clock gone back skips it. */
  async addSample(s: Sample, keepMs: number): Promise<void> {
    try {
      await this.redis.xadd(
        this.key('samples'),
        'MINID',
        '~',
        Math.max(0, s.at - keepMs),
        `${s.at}-*`,
        's',
        JSON.stringify(s.q),
      )
    } catch (err) {
      if (!/equal or smaller/.test((err as Error).message)) throw err
    }
  }

  /** The oldest sample at or after `from`, or null. */
  async sampleSince(from: number): Promise<Sample | null> {
    const raw = (await this.redis.xrange(
      this.key('samples'),
      String(Math.max(0, from)),
      '+',
      'COUNT',
      1,
    )) as Array<[string, string[]]>
    const e = raw[0]
    if (!e) return null
    return { at: Number(e[0].split('-')[0]), q: JSON.parse(e[1][1] ?? '{}') }
  }

  // ---- the per-channel delivery state of a notification ------------------------------------

  /** Attempts so far and when the next is due, for one notification on one channel. */
  async attempt(entry: string, channel: ChannelName): Promise<{ n: number; next: number }> {
    const v = await this.redis.hget(this.key('attempts'), `${entry}|${channel}`)
    const [n = '0', next = '0'] = (v ?? '').split(' ')
    return { n: Number(n) || 0, next: Number(next) || 0 }
  }

  async setAttempt(entry: string, channel: ChannelName, n: number, next: number): Promise<void> {
    await this.redis.hset(this.key('attempts'), `${entry}|${channel}`, `${n} ${next}`)
  }

  /** Done with a notification on a channel: acknowledged in that channel's group. */
  async done(entry: string, channel: ChannelName): Promise<void> {
    await Promise.all([
      this.redis.xack(this.key('outbox'), channel, entry),
      this.redis.hdel(this.key('attempts'), `${entry}|${channel}`),
    ])
  }

  /** A channel's consumer group, created at the outbox's end (only what is written from now on). */
  async ensureGroup(channel: ChannelName): Promise<void> {
    try {
      await this.redis.xgroup('CREATE', this.key('outbox'), channel, '$', 'MKSTREAM')
    } catch (err) {
      if (!/BUSYGROUP/.test((err as Error).message)) throw err
    }
  }

  /**
   * A channel's notifications to work on: its consumer's pending ones (retries) first, then new
   * ones. One fixed consumer name per group, so whichever process holds the lease sees them all.
   */
  async pendingAndNew(
    channel: ChannelName,
    count: number,
  ): Promise<Array<{ entry: string; n: Notification | null }>> {
    const read = async (from: string) => {
      const res = (await this.redis.xreadgroup(
        'GROUP',
        channel,
        'leader',
        'COUNT',
        count,
        'STREAMS',
        this.key('outbox'),
        from,
      )) as Array<[string, Array<[string, string[] | null]>]> | null
      return (res?.[0]?.[1] ?? []).map(([entry, fields]) => {
        let n: Notification | null = null
        try {
          n = fields ? (JSON.parse(fields[1] ?? 'null') as Notification) : null
        } catch {}
        return { entry, n }
      })
    }
    const pending = await read('0')
    const fresh = await read('>')
    return [...pending, ...fresh]
  }
}
