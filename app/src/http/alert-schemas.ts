/**
 * Schemas of the alerts routes (ADR 0025): rules, alerts, silences, history, the test alert.
 * Kept apart from schemas.ts (the console imports the `Static<>` types from here too).
 */
import Type, { type Static, type TSchema } from 'typebox'
import { CHANNELS, KIND_DOC, RULE_KINDS, SEVERITIES } from '../queue/alert-rules.ts'

const strict = { additionalProperties: false } as const
const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()])
const Name = Type.String({
  pattern: '^(?!\\.\\.?$)[A-Za-z0-9_.-]{1,64}$',
  description: '1-64 letters, digits, _ . -',
})
const Scope = Type.String({
  pattern: '^(\\*|(?!\\.\\.?$)[A-Za-z0-9_.~-]{1,128})$',
  description: "a queue name, or '*' for every queue",
})
const TypeScope = Type.String({
  pattern: '^(\\*|[A-Za-z0-9_.:/-]{1,128})$',
  description: "a task type, or '*' for every type",
})
const Who = Type.String({ minLength: 1, maxLength: 100, pattern: '^[^\\u0000-\\u001f\\u007f]*$' })
const Labels = Type.Object({ queue: Type.String(), task_type: Type.Optional(Type.String()) })

const RuleFields = {
  kind: Type.Enum([...RULE_KINDS], {
    description: Object.entries(KIND_DOC)
      .map(([k, d]) => `${k}: ${d}`)
      .join('; '),
  }),
  queue: Type.Optional(Scope),
  task_type: Type.Optional(TypeScope),
  threshold: Type.Optional(
    Type.Number({ minimum: 0, maximum: 1e12, description: 'failure_rate: a ratio 0..1; oldest_waiting: ms' }),
  ),
  window_ms: Type.Optional(Type.Integer({ minimum: 1000, maximum: 86_400_000 })),
  for_ms: Type.Optional(
    Type.Integer({
      minimum: 0,
      maximum: 86_400_000,
      description: 'the condition holds this long before it fires',
    }),
  ),
  severity: Type.Optional(Type.Enum([...SEVERITIES])),
  enabled: Type.Optional(Type.Boolean()),
  repeat_ms: Type.Optional(
    Nullable(
      Type.Integer({
        minimum: 0,
        maximum: 604_800_000,
        description: 'cooldown between repeats; null: ALERT_REPEAT_MS',
      }),
    ),
  ),
  min_count: Type.Optional(Type.Integer({ minimum: 1, maximum: 1e9 })),
  channels: Type.Optional(
    Type.Array(Type.Enum([...CHANNELS]), { maxItems: 3, description: 'empty: every configured channel' }),
  ),
  description: Type.Optional(Type.String({ maxLength: 500 })),
}

export const RuleBody = Type.Object({ id: Name, ...RuleFields }, { ...strict, $id: 'AlertRuleBody' })
export const RulePutBody = Type.Object(RuleFields, { ...strict, $id: 'AlertRulePutBody' })
export const RuleParams = Type.Object({ id: Name })

export const RuleS = Type.Object({
  id: Type.String(),
  kind: Type.Enum([...RULE_KINDS]),
  queue: Type.String(),
  task_type: Type.String(),
  threshold: Type.Number(),
  window_ms: Type.Integer(),
  for_ms: Type.Integer(),
  severity: Type.Enum([...SEVERITIES]),
  enabled: Type.Boolean(),
  repeat_ms: Nullable(Type.Integer()),
  min_count: Type.Integer(),
  channels: Type.Array(Type.String()),
  description: Type.String(),
  builtin: Type.Boolean({ description: 'defined by the settings (a stored rule with its id overrides it)' }),
  overridden: Type.Boolean({ description: 'a built-in rule replaced by a stored one' }),
})
export type AlertRuleDto = Static<typeof RuleS>
export const RulesReply = Type.Object({ rules: Type.Array(RuleS) })

export const AlertS = Type.Object({
  id: Type.String(),
  rule: Type.String(),
  kind: Type.String(),
  severity: Type.Enum([...SEVERITIES]),
  labels: Labels,
  status: Type.Enum(['pending', 'firing']),
  value: Type.Number(),
  threshold: Type.Number(),
  summary: Type.String(),
  since: Type.Number(),
  fired_at: Nullable(Type.Number()),
  last_sent: Nullable(Type.Number()),
  seq: Type.Integer(),
  acknowledged: Nullable(Type.Object({ by: Type.String(), at: Type.Number() })),
  silenced_by: Nullable(Type.String()),
})
export type AlertDto = Static<typeof AlertS>
export const AlertsReply = Type.Object({
  alerts: Type.Array(AlertS),
  firing: Type.Integer(),
  pending: Type.Integer(),
  channels: Type.Array(Type.String(), { description: 'the channels this API process has configured' }),
  sent: Type.Array(Type.Object({ channel: Type.String(), outcome: Type.String(), count: Type.Integer() })),
})
export type AlertsReplyDto = Static<typeof AlertsReply>
export const AlertParams = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 400, pattern: '^[A-Za-z0-9_.:/~*-]+$' }),
})
export const AckBody = Type.Object({ by: Type.Optional(Who) }, { ...strict, $id: 'AlertAckBody' })

export const HistoryQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
    before: Type.Optional(
      Type.String({ pattern: '^\\d{1,15}-\\d{1,15}$', description: 'next from the previous page' }),
    ),
  },
  strict,
)
export const HistoryEntryS = Type.Object({
  id: Type.String(),
  type: Type.String(),
  at: Type.Number(),
  alert: Type.Optional(Type.String()),
  rule: Type.Optional(Type.String()),
  labels: Type.Optional(Labels),
  severity: Type.Optional(Type.String()),
  value: Type.Optional(Type.Number()),
  summary: Type.Optional(Type.String()),
  by: Type.Optional(Type.String()),
  channel: Type.Optional(Type.String()),
  error: Type.Optional(Type.String()),
})
export type HistoryEntryDto = Static<typeof HistoryEntryS>
export const HistoryReply = Type.Object({ entries: Type.Array(HistoryEntryS), next: Nullable(Type.String()) })

export const SilenceBody = Type.Object(
  {
    rule: Type.Optional(Name),
    queue: Type.Optional(Type.String({ pattern: '^(?!\\.\\.?$)[A-Za-z0-9_.~-]{1,128}$' })),
    task_type: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_.:/-]{1,128}$' })),
    until: Type.Optional(Type.Number({ minimum: 0, maximum: 1e15, description: 'ms since the epoch' })),
    duration_ms: Type.Optional(Type.Integer({ minimum: 1000, maximum: 31_536_000_000 })),
    comment: Type.Optional(Type.String({ maxLength: 500 })),
    by: Type.Optional(Who),
  },
  { ...strict, $id: 'SilenceBody' },
)
export const SilenceS = Type.Object({
  id: Type.String(),
  rule: Nullable(Type.String()),
  queue: Nullable(Type.String()),
  task_type: Nullable(Type.String()),
  until: Type.Number(),
  comment: Type.String(),
  created_by: Type.String(),
  created_at: Type.Number(),
})
export type SilenceDto = Static<typeof SilenceS>
export const SilencesReply = Type.Object({ silences: Type.Array(SilenceS) })
export const SilenceParams = Type.Object({ id: Type.String({ pattern: '^[a-z0-9]{1,40}$' }) })

export const TestReply = Type.Object({
  results: Type.Array(
    Type.Object({
      channel: Type.String(),
      ok: Type.Boolean(),
      ms: Type.Number(),
      error: Nullable(Type.String()),
    }),
  ),
})
export type TestReplyDto = Static<typeof TestReply>
