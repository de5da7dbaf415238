/**
 * Schemas of the operations routes added by ADR 0026 (GET /audit, GET /stats/history): apart from
 * their routes so the console imports their types without the server's plugins.
 */
import Type, { type Static } from 'typebox'
import { HISTORY_RANGES } from '../redis/history.ts'
import { QueueName, TaskType } from './schemas.ts'

export const AuditQuery = Type.Object(
  {
    actor: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    action: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    target: Type.Optional(Type.String({ minLength: 1, maxLength: 300 })),
    result: Type.Optional(
      Type.String({
        pattern: '^[A-Za-z0-9_]{1,64}$',
        description: 'ok, error (any failure), or an error code',
      }),
    ),
    since: Type.Optional(Type.Integer({ minimum: 0, maximum: 1e15, description: 'ms, inclusive' })),
    until: Type.Optional(Type.Integer({ minimum: 0, maximum: 1e15, description: 'ms, inclusive' })),
    cursor: Type.Optional(Type.String({ pattern: '^\\d{1,20}-\\d{1,20}$' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
  },
  { additionalProperties: false },
)

export const AuditEntryS = Type.Object({
  id: Type.String(),
  at: Type.Number(),
  actor: Type.String({
    description: "the token's name (API_TOKENS token:role:name), cli:<user>@<host>, or anonymous",
  }),
  role: Type.String(),
  action: Type.String({ description: 'METHOD /route, or cli <command>' }),
  target: Type.String(),
  status: Type.Integer(),
  result: Type.String({ description: 'ok or the error code' }),
  ip: Type.String(),
  user_agent: Type.String(),
  request_id: Type.String(),
  duration_ms: Type.Number(),
  detail: Type.String({ description: 'non-secret options: the query string (no access_token), CLI flags' }),
})

export const AuditPage = Type.Object({
  items: Type.Array(AuditEntryS),
  next_cursor: Type.Union([Type.String(), Type.Null()]),
  write_failures: Type.Integer({
    description: 'audit writes that failed on this API instance since it started',
  }),
})

export type AuditEntryDto = Static<typeof AuditEntryS>
export type AuditPageDto = Static<typeof AuditPage>

const Nullable = <T extends ReturnType<typeof Type.Object>>(t: T) => Type.Union([t, Type.Null()])
const LatencyS = Type.Object({
  count: Type.Integer({ description: 'attempts observed in the interval' }),
  p50: Type.Number(),
  p95: Type.Number(),
  p99: Type.Number(),
})

export const HistoryQuery = Type.Object(
  {
    range: Type.Optional(Type.Enum(Object.keys(HISTORY_RANGES) as Array<keyof typeof HISTORY_RANGES>)),
    queue: Type.Optional(QueueName),
    task_type: Type.Optional(TaskType),
  },
  { additionalProperties: false },
)

export const HistoryReply = Type.Object({
  range: Type.String(),
  queue: Type.Union([Type.String(), Type.Null()]),
  task_type: Type.Optional(
    Type.Union([Type.String(), Type.Null()], {
      description: 'one task type: completed and failed from the per-type snapshots, latency null (ADR 0032)',
    }),
  ),
  step_ms: Type.Integer({ description: "each point's interval" }),
  points: Type.Array(
    Type.Object({
      at: Type.Number({ description: "the interval's start (ms)" }),
      completed: Type.Integer(),
      failed: Type.Integer(),
      wait: Nullable(LatencyS),
      run: Nullable(LatencyS),
    }),
  ),
})

export type HistoryDto = Static<typeof HistoryReply>

// ---- What is failing now (GET /stats/failures, ADR 0032) ----------------------------------------

export const FailuresQuery = Type.Object(
  {
    minutes: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 1440, default: 15, description: 'the window: the last N minutes' }),
    ),
    queue: Type.Optional(QueueName),
    task_type: Type.Optional(TaskType),
    limit: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 50, default: 10, description: 'groups answered' }),
    ),
  },
  { additionalProperties: false },
)

const RateS = Type.Object({
  completed: Type.Integer(),
  failed: Type.Integer({ description: 'jobs that ended failed (dead-lettered)' }),
  failure_rate: Type.Union([Type.Number(), Type.Null()], {
    description: 'failed / (completed + failed); null with neither',
  }),
})

export const FailuresReply = Type.Object({
  minutes: Type.Integer(),
  since: Type.Number({ description: 'the window starts here (ms)' }),
  groups: Type.Array(
    Type.Object({
      queue: Type.String(),
      task_type: Type.String(),
      error_class: Type.String(),
      count: Type.Integer({ description: 'dead letters of the group that failed within the window' }),
      last_seen: Type.Number({ description: 'when the newest of them failed (ms)' }),
      last_message: Type.Union([Type.String(), Type.Null()], {
        description:
          "the newest dead letter's error (first 500 characters); null if it left the DLQ meanwhile",
      }),
    }),
  ),
  total: Type.Integer({ description: 'dead letters within the window (every group)' }),
  truncated: Type.Boolean({
    description:
      'a queue had more dead letters in the window than one request examines (2000): counts are lower bounds',
  }),
  ...RateS.properties,
  queues: Type.Array(Type.Object({ queue: Type.String(), ...RateS.properties }), {
    description: "each queue's completed and failed jobs within the window (per-minute buckets)",
  }),
})

export type FailuresDto = Static<typeof FailuresReply>
