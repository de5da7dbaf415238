/**
 * Request and response schemas of the REST API (TypeBox → JSON Schema → validation, types and
 * OpenAPI). The console imports the `Static<>` types from here instead of redeclaring them.
 */
import Type, { type Static, type TSchema } from 'typebox'
import { PRIORITIES, STATES } from '../queue/job.ts'
import { MAX_PARTITIONS } from '../queue/partitions.ts'
import {
  MAX_CATCH_UP,
  MAX_EVERY_MS,
  MIN_EVERY_MS,
  MISFIRE_POLICIES,
  OVERLAP_POLICIES,
  SCHEDULE_NAME_PATTERN,
  SCHEDULE_NAME_RULE,
} from '../queue/schedule.ts'
import { JOB_ID_PATTERN, QUEUE_PATTERN } from '../queue/validate.ts'
import { WORKER_COMMANDS } from '../redis/registry.ts'

const strict = { additionalProperties: false } as const

export const QueueName = Type.String({
  pattern: QUEUE_PATTERN.source,
  description: '1-64 letters, digits, _ . - (not . or ..)',
})
const JOB_ID = JOB_ID_PATTERN.source
export const JobId = Type.String({
  pattern: JOB_ID,
  description: '1-128 letters, digits, _ . - (not . or ..)',
})
export const TaskType = Type.String({ pattern: '^[A-Za-z0-9_.:/-]{1,128}$' })
export const WorkerId = Type.String({ pattern: '^[A-Za-z0-9_.-]{1,200}$' })
export const PriorityS = Type.Enum([...PRIORITIES])
export const StateS = Type.Enum([...STATES])
const Text = (max: number) =>
  Type.String({ minLength: 1, maxLength: max, pattern: '^[^\\u0000-\\u001f\\u007f]*$' })
const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()])

export const ErrorReply = Type.Object(
  {
    error: Type.String({ description: 'HTTP reason phrase' }),
    code: Type.String({ description: 'stable machine-readable code' }),
    message: Type.String(),
    details: Type.Optional(Type.Unknown()),
  },
  { $id: 'Error' },
)

/**
 * The error replies of a route for its OpenAPI schema: what every authenticated route can
 * answer -- 400 (bad input), 401/403 (token, role), 429 (the rate limiter), 503 (Redis away or
 * full) -- plus the statuses given (404, 409, …).
 */
export function errorReplies<S extends number>(...extra: S[]) {
  const out = {
    400: ErrorReply,
    401: ErrorReply,
    403: ErrorReply,
    429: ErrorReply,
    503: ErrorReply,
  } as Record<400 | 401 | 403 | 429 | 503 | S, typeof ErrorReply>
  for (const s of extra) out[s] = ErrorReply
  return out
}

export const AttemptErrorS = Type.Object({
  attempt: Type.Number(),
  message: Type.String(),
  class: Type.Optional(Type.String({ description: "the error's class (its code or name): a bounded label" })),
  stack: Type.Optional(Type.String()),
  worker: Type.String(),
  started_at: Type.Optional(Type.Number()),
  at: Type.Number(),
})

export const JobS = Type.Object(
  {
    id: Type.String(),
    queue: Type.String(),
    task_type: Type.String(),
    payload: Type.Unknown(),
    state: StateS,
    priority: PriorityS,
    attempts: Type.Integer(),
    failures: Type.Integer(),
    stalls: Type.Integer(),
    max_retries: Type.Integer(),
    timeout_ms: Type.Integer(),
    epoch: Type.Integer(),
    created_at: Type.Number(),
    updated_at: Type.Number(),
    queued_at: Nullable(Type.Number()),
    run_at: Nullable(Type.Number()),
    started_at: Nullable(Type.Number()),
    finished_at: Nullable(Type.Number()),
    worker: Nullable(Type.String()),
    result: Type.Unknown(),
    error: Nullable(Type.String()),
    error_class: Nullable(
      Type.String({
        description: "the last failure's error class (its code or name, e.g. TypeError, ETIMEDOUT)",
      }),
    ),
    errors: Type.Array(AttemptErrorS),
    progress: Nullable(Type.Number()),
    idempotency_key: Nullable(Type.String()),
    partition_key: Nullable(Type.String()),
    trace: Nullable(Type.String()),
    backoff: Type.Unknown(),
    cancel_requested: Type.Boolean(),
    schedule: Nullable(Type.String({ description: 'the schedule that made the job' })),
    fired_at: Nullable(Type.Number({ description: 'the fire time it was made for' })),
    flow_id: Nullable(Type.String({ description: 'the flow the job is a node of (GET /flows/{flow_id})' })),
    flow_node: Nullable(Type.String()),
    parent_results: Type.Record(Type.String(), Type.Unknown(), {
      description: "a flow node's completed parents' results, by node key",
    }),
    dedup: Nullable(
      Type.Object({
        mode: Type.Enum(['unique', 'throttle', 'debounce']),
        ttl_ms: Type.Integer(),
        key_hash: Type.String({
          description: 'SHA-256 (base64url) of the dedup key, or of task_type and payload',
        }),
      }),
    ),
    start_by: Nullable(Type.Number({ description: 'start deadline, ms since the epoch' })),
    expired: Type.Boolean({ description: 'ended (cancelled) because it was not started by start_by' }),
    snoozes: Type.Integer({ description: 'times its handler snoozed it (no attempt used)' }),
    deduplicated: Type.Optional(
      Type.Boolean({
        description:
          "true on the answer to an add that an earlier job's dedup answered: this is that job (200)",
      }),
    ),
    edits: Type.Optional(
      Type.Object(
        {
          count: Type.Integer(),
          by: Type.String(),
          at: Type.Number(),
          previous_sha1: Type.String({ description: 'SHA-1 of the payload the last edit replaced' }),
        },
        { description: 'present once the payload was edited: how many times, the last edit (ADR 0020)' },
      ),
    ),
    removed: Type.Optional(
      Type.Boolean({
        description:
          'true on the answer to a repeated idempotency_key whose job finished and was removed after its retention: only id, state and finished_at are known',
      }),
    ),
    replay_of: Nullable(
      Type.String({ description: 'a replay (ADR 0028): the job it re-runs, `<queue>/<id>`' }),
    ),
    replays: Type.Optional(
      Type.Object(
        {
          count: Type.Integer(),
          last: Type.Array(Type.Object({ job: Type.String(), at: Type.Number() })),
        },
        { description: 'present once the job was replayed: how many times, the latest 10 (`<queue>/<id>`)' },
      ),
    ),
  },
  { $id: 'Job' },
)

export const BackoffS = Type.Object(
  {
    initial_ms: Type.Optional(Type.Integer({ minimum: 0, maximum: 86_400_000 })),
    multiplier: Type.Optional(Type.Number({ minimum: 1, maximum: 100 })),
    max_ms: Type.Optional(Type.Integer({ minimum: 0, maximum: 604_800_000 })),
  },
  strict,
)

/** The options a job and a schedule's job template share. */
const jobCommonFields = {
  task_type: TaskType,
  payload: Type.Optional(Type.Unknown()),
  queue: Type.Optional(QueueName),
  priority: Type.Optional(PriorityS),
  partition_key: Type.Optional(Text(256)),
  max_retries: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000 })),
  timeout_ms: Type.Optional(Type.Integer({ minimum: 0 })),
  backoff: Type.Optional(BackoffS),
}

export const CreateJob = Type.Object(
  {
    ...jobCommonFields,
    delay_ms: Type.Optional(Type.Integer({ minimum: 0 })),
    run_at: Type.Optional(
      Type.Union([Type.Integer({ minimum: 0 }), Type.String({ maxLength: 64, description: 'ISO 8601' })]),
    ),
    idempotency_key: Type.Optional(Text(256)),
    dedup: Type.Optional(
      Type.Object(
        {
          mode: Type.Enum(['unique', 'throttle', 'debounce']),
          ttl_ms: Type.Optional(Type.Integer({ minimum: 0 })),
          key: Type.Optional(Text(256)),
        },
        {
          ...strict,
          description:
            'deduplication beyond idempotency keys (ADR 0021), by key or by task_type + payload: unique (one job while it lives, or within ttl_ms of its creation), throttle (the first add of each ttl_ms window; later ones answer it), debounce (the pending job takes the latest payload and runs ttl_ms after the latest add). A deduplicated add answers 200 with that job and `deduplicated: true`. Not with depends_on.',
        },
      ),
    ),
    start_by: Type.Optional(
      Type.Union([Type.Integer({ minimum: 0 }), Type.String({ maxLength: 64, description: 'ISO 8601' })], {
        description:
          'start deadline: a job not started by then ends cancelled with expired: true (no attempt used); ms since the epoch or ISO 8601',
      }),
    ),
    expires_in_ms: Type.Optional(
      Type.Integer({ minimum: 1, description: 'the start deadline, ms from now' }),
    ),
    job_id: Type.Optional(
      Type.String({
        pattern: JOB_ID,
        description:
          'your own id for the job (an existing live job with it is returned instead); not all digits: DTQ numbers the jobs it names itself',
      }),
    ),
    depends_on: Type.Optional(
      Type.Array(
        Type.Union([
          Type.String({ pattern: JOB_ID, description: 'a job id in the same queue' }),
          Type.Object(
            {
              job_id: Type.String({ pattern: JOB_ID }),
              queue: Type.Optional(QueueName),
              on_failure: Type.Optional(Type.Enum(['fail', 'ignore', 'cancel'])),
            },
            strict,
          ),
        ]),
        {
          minItems: 1,
          description:
            "existing jobs this one waits for (state `waiting`) until each completed; their results are in the job's `parent_results` (by job id; `<queue>/<id>` for another queue's). on_failure (default fail): fail | ignore | cancel this job when that parent fails or is cancelled. Unknown jobs are a 400 that writes nothing. Not with delay_ms or run_at, not in /jobs/batch.",
        },
      ),
    ),
  },
  { ...strict, $id: 'CreateJob' },
)

export const CreateBatch = Type.Object({ jobs: Type.Array(CreateJob, { minItems: 1 }) }, strict)
/**
 * What POST /jobs/batch checks of the whole request: the envelope. Its items are checked one by
 * one against CreateJob in the handler, so a malformed item is rejected alone (CreateBatch is the
 * schema the OpenAPI shows).
 */
export const BatchEnvelope = Type.Object({ jobs: Type.Array(Type.Unknown(), { minItems: 1 }) }, strict)

/** A schema validation's errors as the API reports them: one message and `details` (path, message). */
export function describeValidation(
  errors: ReadonlyArray<{ instancePath?: string; message?: string }>,
  where: string,
): { message: string; details: Array<{ path: string; message: string }> } {
  // TypeBox reports an unknown field as "schema is false" on it (plus a summary on its parent).
  const v = errors
    .map((e) => ({
      path: e.instancePath || '/',
      message: e.message === 'schema is false' ? 'is not a known field' : (e.message ?? 'is invalid'),
    }))
    .filter(
      (e, _i, all) =>
        !(
          e.message.includes('additional properties') && all.some((o) => o.message === 'is not a known field')
        ),
    )
  return {
    message: `invalid ${where}: ${v
      .slice(0, 5)
      .map((e) => `${e.path} ${e.message}`)
      .join('; ')}`,
    details: v.map((e) => ({ path: `${where}${e.path === '/' ? '' : e.path}`, message: e.message })),
  }
}

export const BatchItem = Type.Object({
  index: Type.Integer(),
  status: Type.Integer({
    description:
      "201 created, 200 existing (idempotent repeat), 400 rejected; in a failed batch's details, the failure's status (e.g. 503) for the items not created or of unknown outcome",
  }),
  outcome: Type.Enum(['created', 'existing', 'rejected', 'not_created', 'unknown'], {
    description:
      'not_created: nothing of it was written (safe to send again); unknown: its write timed out or lost its connection and may have happened (send it again with a job_id or idempotency_key to be safe)',
  }),
  job: Type.Optional(JobS),
  error: Type.Optional(ErrorReply),
})

export const BatchReply = Type.Object({
  created: Type.Integer(),
  existing: Type.Integer(),
  rejected: Type.Integer(),
  not_created: Type.Integer(),
  unknown: Type.Integer(),
  items: Type.Array(BatchItem),
})

/** A batch that failed part-way: the error, with the per-item outcome in `details`. */
export const BatchFailure = Type.Object(
  {
    error: Type.String({ description: 'HTTP reason phrase' }),
    code: Type.String({ description: 'stable machine-readable code' }),
    message: Type.String(),
    details: Type.Optional(BatchReply),
  },
  { $id: 'BatchFailure' },
)

export const Cursor = Type.String({
  minLength: 1,
  maxLength: 512,
  pattern: '^[A-Za-z0-9_-]*$',
  description: "a page's next_cursor, as given (anything else is a 400)",
})
export const Limit = Type.Integer({ minimum: 1, maximum: 1000, default: 50 })

const ListWhere = Type.String({
  minLength: 1,
  maxLength: 500,
  description:
    'a payload filter: `path=value` (JSON value, or text) or `path~text` (contains), e.g. `user.id=42`',
})
export const ListJobsQuery = Type.Object(
  {
    status: Type.Optional(StateS),
    task_type: Type.Optional(TaskType),
    queue: Type.Optional(QueueName),
    idempotency_key: Type.Optional(Text(256)),
    cursor: Type.Optional(Cursor),
    limit: Type.Optional(Limit),
    // ---- scale (ADR 0033) ----
    from: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 253_402_300_799_999,
        description:
          'jump to a time (ms since the epoch): the first page starts there -- jobs listed at or before it, newest first (a cursor, when given, is the position instead)',
      }),
    ),
    order: Type.Optional(
      Type.Enum(['desc', 'asc'], {
        description: 'desc (default): newest first; asc: oldest first -- by the `sort` time',
      }),
    ),
    sort: Type.Optional(
      Type.Enum(['updated', 'created'], {
        description:
          "updated (default): by the time a job entered its current state (`updated_at`; for queued and active jobs, when queued; ADR 0033). created: by created_at, through the queue's created-time index -- needs `queue` (400) whose index is on (409 CREATED_INDEX_OFF; PUT /queues/{queue}/created-index); `status` and `task_type` filter what it reads, at most the listing's scan per page (a short page has a cursor to continue); ADR 0035",
      }),
    ),
    where: Type.Optional(
      Type.Union([ListWhere, Type.Array(ListWhere, { maxItems: 8 })], {
        description:
          'payload filter(s) `path=value` or `path~text`, as GET /search takes them; needs `queue` or `task_type` (400 otherwise). Answered by the search (live jobs: at most SEARCH_LIVE_SCAN read, said in `scan`; archived ones too when DATABASE_URL is set), in its order (finished_at, else created_at, newest first)',
      }),
    ),
  },
  strict,
)

export type ListJobsQueryDto = Static<typeof ListJobsQuery>

export const JobPage = Type.Object({
  items: Type.Array(JobS),
  next_cursor: Nullable(Type.String()),
  total: Type.Optional(
    Nullable(
      Type.Integer({
        description:
          'how many jobs match the filter, when that is cheap (the per-state counts: no task_type, no where); null when not',
      }),
    ),
  ),
  by_state: Type.Optional(
    Type.Record(Type.String(), Type.Integer(), {
      description: '`total` per state (the states the filter covers), when `total` is known',
    }),
  ),
  scan: Type.Optional(
    Type.Object({
      scanned: Type.Integer({ description: 'live jobs read for a `where` filter' }),
      capped: Type.Boolean({ description: 'SEARCH_LIVE_SCAN cut the scan short: older live jobs not read' }),
      limit: Type.Integer({ description: 'SEARCH_LIVE_SCAN' }),
    }),
  ),
  history: Type.Optional(Type.Enum(['enabled', 'disabled', 'unavailable'])),
})

export const IdParams = Type.Object({ id: JobId }, strict)
export const QueueQuery = Type.Object(
  {
    queue: Type.Optional(
      Type.String({
        pattern: QUEUE_PATTERN.source,
        description:
          "the job's queue. Ids are unique within a queue: without it, a job_id of yours used in several queues is a 409 AMBIGUOUS_JOB_ID naming them (and every queue is read to find the job; with it, one key)",
      }),
    ),
  },
  strict,
)

export const JobDetail = Type.Object({
  ...JobS.properties,
  logs: Type.Array(Type.String()),
  source: Type.Optional(
    Type.Literal('archive', {
      description:
        'present when Redis no longer holds the job (past its retention) and this is its record in the history archive (DATABASE_URL): read-only, no logs; replay, timeline and compare work on it (ADR 0028)',
    }),
  ),
})

export const CancelReply = Type.Object({
  outcome: Type.Enum(['cancelled', 'requested']),
  job: JobS,
})

const ErrorClassS = Type.String({
  pattern: '^[A-Za-z0-9_.:-]{1,64}$',
  description:
    "as GET /dlq/stats groups it: the job's error class, else the name before a leading 'Name:' of its error, else Error",
})

export const DlqQuery = Type.Object(
  {
    queue: Type.Optional(QueueName),
    task_type: Type.Optional(TaskType),
    priority: Type.Optional(PriorityS),
    error_class: Type.Optional(ErrorClassS),
    error: Type.Optional(Text(256)),
    older_than_days: Type.Optional(Type.Number({ minimum: 0, maximum: 3650 })),
    cursor: Type.Optional(Cursor),
    limit: Type.Optional(Limit),
  },
  strict,
)

export const DlqJob = Type.Object({ ...JobS.properties, dlq_entry: Type.String(), failed_at: Type.Number() })
export const DlqPage = Type.Object({ items: Type.Array(DlqJob), next_cursor: Nullable(Type.String()) })

export const DlqStatsQuery = Type.Object(
  {
    queue: Type.Optional(QueueName),
    task_type: Type.Optional(TaskType),
    priority: Type.Optional(PriorityS),
  },
  strict,
)
export const DlqStatsReply = Type.Object({
  groups: Type.Array(
    Type.Object({
      queue: Type.String(),
      task_type: Type.String(),
      priority: PriorityS,
      error_class: Type.String({
        description: "the job's error class, else the name before a leading 'Name:' of its error, else Error",
      }),
      count: Type.Integer(),
      newest: Type.Number({ description: "when the group's newest dead letter failed (ms)" }),
    }),
  ),
  total: Type.Integer(),
})

export const DlqRetryMany = Type.Object(
  {
    queue: Type.Optional(QueueName),
    task_type: Type.Optional(TaskType),
    priority: Type.Optional(PriorityS),
    error: Type.Optional(Text(256)),
    older_than_days: Type.Optional(Type.Number({ minimum: 0, maximum: 3650 })),
    rate_per_sec: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000, default: 100 })),
    max: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000_000 })),
  },
  strict,
)

export const DlqRetryManyReply = Type.Object({
  job: JobS,
  message: Type.String(),
})

export const PurgeQuery = Type.Object(
  {
    older_than_days: Type.Number({ minimum: 0, maximum: 3650 }),
    queue: Type.Optional(QueueName),
    priority: Type.Optional(PriorityS),
  },
  strict,
)

export const StreamStatsS = Type.Object({
  length: Type.Integer(),
  pending: Type.Integer(),
  lag: Nullable(
    Type.Integer({
      description:
        'entries not delivered yet; null when unknown (Redis reports none and more than 1000 entries lie on each side of the last-delivered one)',
    }),
  ),
  oldest_waiting_ms: Nullable(Type.Number()),
})

/** The created-time index of a queue (ADR 0035). */
export const CreatedIndexState = Type.Enum(['off', 'building', 'on'], {
  description:
    "the queue's created-time index (GET /jobs?sort=created): off, building (its backfill runs), on",
})

export const QueueStatsS = Type.Object({
  queue: Type.String(),
  paused: Type.Boolean(),
  counts: Type.Record(Type.String(), Type.Integer()),
  totals: Type.Record(Type.String(), Type.Number()),
  streams: Type.Object({ high: StreamStatsS, normal: StreamStatsS, low: StreamStatsS }),
  delayed: Type.Integer(),
  dlq: Type.Integer(),
  oldest_waiting_ms: Nullable(Type.Number()),
  partitions: Type.Optional(
    Type.Integer({ description: "a partitioned queue's partition count; the row sums its partitions" }),
  ),
  // Live consumers (ADR 0032), in GET /queues and /stats.
  live_workers: Type.Optional(
    Type.Integer({ description: 'live workers consuming the queue (registry entry alive, not stopping)' }),
  ),
  no_workers: Type.Optional(
    Type.Boolean({
      description:
        'jobs waiting or running, not paused, and no live worker consumes the queue (alert no_worker)',
    }),
  ),
  created_index: Type.Optional(CreatedIndexState),
})

export const QueuesReply = Type.Object({ items: Type.Array(QueueStatsS) })
export const CreatedIndexBody = Type.Object(
  { on: Type.Boolean({ description: 'true: build the index (then keep it); false: delete it' }) },
  strict,
)
export const CreatedIndexReply = Type.Object({ queue: Type.String(), created_index: CreatedIndexState })
export const QueueParams = Type.Object({ queue: QueueName }, strict)
export const PartitionsBody = Type.Object(
  {
    partitions: Type.Integer({
      minimum: 1,
      maximum: MAX_PARTITIONS,
      description: 'the new count (it only grows)',
    }),
  },
  strict,
)
export const PartitionsReply = Type.Object({
  queue: Type.String(),
  partitions: Type.Integer(),
  before: Type.Integer(),
})

export const WorkerS = Type.Object({
  id: Type.String(),
  host: Type.String(),
  pid: Type.Integer(),
  queues: Type.Array(Type.String()),
  concurrency: Type.Integer(),
  active: Type.Integer(),
  processed: Type.Integer(),
  failed: Type.Integer(),
  started_at: Type.Number(),
  heartbeat_at: Type.Number(),
  state: Type.String(),
})
export const WorkersReply = Type.Object({ items: Type.Array(WorkerS) })
/** GET /workers/{id}: the worker and what it wrote of its activity with its last heartbeat. */
export const WorkerDetailReply = Type.Object({
  ...WorkerS.properties,
  running: Type.Array(
    Type.Object({
      id: Type.String(),
      queue: Type.String(),
      task_type: Type.String(),
      attempt: Type.Integer(),
      started_at: Type.Number(),
    }),
    { description: 'Jobs whose handlers run now, longest-running first (at most 100; `active` counts all)' },
  ),
  recent_failures: Type.Array(
    Type.Object({
      id: Type.String(),
      queue: Type.String(),
      task_type: Type.String(),
      attempt: Type.Integer(),
      error: Type.String(),
      error_class: Type.String(),
      outcome: Type.String({ description: 'retrying or failed (dead-lettered)' }),
      at: Type.Number(),
    }),
    { description: 'Its latest failed attempts, newest first (at most 20, since it started)' },
  ),
  rates: Type.Array(
    Type.Object({ minute: Type.Number(), completed: Type.Integer(), failed: Type.Integer() }),
    { description: 'Outcomes per minute over its last 15 minutes (minutes without any are absent)' },
  ),
})
export const WorkerCommandParams = Type.Object(
  { id: WorkerId, command: Type.Enum([...WORKER_COMMANDS]) },
  strict,
)

export const StatsReply = Type.Object({
  totals: Type.Record(Type.String(), Type.Integer()),
  queues: Type.Array(QueueStatsS),
  workers: Type.Integer(),
  throughput: Type.Array(
    Type.Object({ minute: Type.Number(), completed: Type.Integer(), failed: Type.Integer() }),
  ),
})

export const EventsQuery = Type.Object(
  {
    queue: Type.Optional(QueueName),
    task_type: Type.Optional(TaskType),
    job_id: Type.Optional(JobId),
    access_token: Type.Optional(Type.String({ maxLength: 512 })),
  },
  strict,
)

export const GenerateJobs = Type.Object(
  {
    count: Type.Integer({ minimum: 1, maximum: 100_000 }),
    task_type: Type.Optional(TaskType),
    queue: Type.Optional(QueueName),
    partition_key_prefix: Type.Optional(
      Type.String({ maxLength: 200, pattern: '^[^\\u0000-\\u001f\\u007f]*$' }),
    ),
    payload_template: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    priority: Type.Optional(PriorityS),
  },
  strict,
)
export const GenerateReply = Type.Object({
  created: Type.Integer(),
  queue: Type.String(),
  task_type: Type.String(),
})

export const OkReply = Type.Object({ ok: Type.Boolean() })
export const CountReply = Type.Object({ deleted: Type.Integer() })
export const HealthReply = Type.Object({ status: Type.String(), redis: Type.Optional(Type.String()) })

export type JobDto = Static<typeof JobS>
export type JobPageDto = Static<typeof JobPage>
export type CreateJobDto = Static<typeof CreateJob>
export type DlqJobDto = Static<typeof DlqJob>
export type QueueStatsDto = Static<typeof QueueStatsS>
export type WorkerDto = Static<typeof WorkerS>
export type WorkerDetailDto = Static<typeof WorkerDetailReply>
export type StatsDto = Static<typeof StatsReply>
export type ErrorDto = Static<typeof ErrorReply>
export type ScheduleDto = Static<typeof ScheduleS>
export type ScheduleDetailDto = Static<typeof ScheduleDetailS>
export type ScheduleInputDto = Static<typeof ScheduleBody>
export type FireRecordDto = Static<typeof FireRecordS>
export type PreviewDto = Static<typeof PreviewReply>
export type DlqStatsDto = Static<typeof DlqStatsReply>
export type { AuditEntryDto, AuditPageDto, FailuresDto, HistoryDto } from './ops-schemas.ts'

// ---- schedules (ADR 0018) ------------------------------------------------------------------

const TimeS = Type.Union([
  Type.Integer({ minimum: 0 }),
  Type.String({ maxLength: 64, description: 'ISO 8601' }),
])
const NullableTime = Nullable(Type.Number())

export const ScheduleParams = Type.Object(
  { name: Type.String({ pattern: SCHEDULE_NAME_PATTERN.source, description: SCHEDULE_NAME_RULE }) },
  strict,
)

/** A job template: a job's options less those that name one job (id, idempotency key, delay). */
export const JobTemplateS = Type.Object({ ...jobCommonFields, trace: Type.Optional(Text(512)) }, strict)

export const ScheduleBody = Type.Object(
  {
    cron: Type.Optional(
      Type.String({ maxLength: 256, description: '5 fields, or 6 with seconds first (croner syntax)' }),
    ),
    tz: Type.Optional(
      Type.String({ maxLength: 64, description: 'IANA time zone of the cron expression (default UTC)' }),
    ),
    every_ms: Type.Optional(Type.Integer({ minimum: MIN_EVERY_MS, maximum: MAX_EVERY_MS })),
    job: JobTemplateS,
    start_at: Type.Optional(TimeS),
    end_at: Type.Optional(TimeS),
    max_runs: Type.Optional(Type.Integer({ minimum: 1, maximum: 1e9 })),
    paused: Type.Optional(Type.Boolean()),
    overlap: Type.Optional(Type.Enum([...OVERLAP_POLICIES])),
    misfire: Type.Optional(Type.Enum([...MISFIRE_POLICIES])),
    catch_up_max: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_CATCH_UP })),
    misfire_grace_ms: Type.Optional(Type.Integer({ minimum: 1000, maximum: 86_400_000 })),
  },
  { ...strict, $id: 'ScheduleBody' },
)

export const FireRecordS = Type.Object({
  at: Type.Number({ description: 'the fire time' }),
  job_id: Nullable(Type.String()),
  outcome: Type.String({
    description: 'job | missed_run | triggered | skipped_overlap | missed (misfire, no job) | ended',
  }),
  job_state: Nullable(Type.String({ description: "the job's state now ('removed': past retention)" })),
})

const scheduleFields = {
  name: Type.String(),
  queue: Type.String(),
  cron: Nullable(Type.String()),
  tz: Type.String(),
  every_ms: Nullable(Type.Number()),
  start_at: NullableTime,
  end_at: NullableTime,
  max_runs: Nullable(Type.Number()),
  overlap: Type.String(),
  misfire: Type.String(),
  catch_up_max: Type.Number(),
  misfire_grace_ms: Type.Number(),
  job: Type.Unknown(),
  paused: Type.Boolean(),
  next_fire: NullableTime,
  runs: Type.Number(),
  last_fire: NullableTime,
  last_job: Nullable(Type.String()),
  last_outcome: Nullable(Type.String()),
  created_at: Type.Number(),
  updated_at: Type.Number(),
}
export const ScheduleS = Type.Object(scheduleFields, { $id: 'Schedule' })
export const ScheduleDetailS = Type.Object(
  {
    ...scheduleFields,
    next_runs: Type.Array(Type.Number(), { description: 'the next five fire times' }),
    history: Type.Array(FireRecordS),
  },
  { $id: 'ScheduleDetail' },
)
export const SchedulesReply = Type.Object({ items: Type.Array(ScheduleS) })
export const TriggerReply = Type.Object({ job_id: Type.String(), schedule: ScheduleDetailS })
export const PreviewQuery = Type.Object(
  { cron: Type.String({ minLength: 1, maxLength: 256 }), tz: Type.Optional(Type.String({ maxLength: 64 })) },
  strict,
)
export const PreviewReply = Type.Object({ tz: Type.String(), times: Type.Array(Type.Number()) })
export type FlowDto = Static<typeof FlowS>

// ---- flows (docs/decisions/0019) ----------------------------------------------------------

const FlowPolicyS = Type.Enum(['fail', 'ignore', 'cancel'])

export const CreateFlow = Type.Object(
  {
    nodes: Type.Array(
      Type.Object(
        {
          key: Type.String({ description: 'the node key, unique in the flow: 1-64 letters, digits, _ -' }),
          depends_on: Type.Optional(
            Type.Array(
              Type.Union([
                Type.String(),
                Type.Object({ node: Type.String(), on_failure: Type.Optional(FlowPolicyS) }, strict),
              ]),
              {
                description: 'parent node keys; on_failure (default fail): fail | ignore | cancel the child',
              },
            ),
          ),
        },
        {
          additionalProperties: true,
          description:
            'a job spec (as POST /jobs, without job_id and idempotency_key) plus key and depends_on',
        },
      ),
      { minItems: 1 },
    ),
    idempotency_key: Type.Optional(Text(256)),
  },
  strict,
)

export const FlowNodeS = Type.Object({
  key: Type.String(),
  queue: Type.String(),
  job_id: Type.String(),
  state: Nullable(StateS),
  depends_on: Type.Array(Type.Object({ node: Type.String(), on_failure: FlowPolicyS })),
  existing: Type.Boolean({
    description: 'an existing job a job added with depends_on waits for (not created by the flow)',
  }),
})

export const FlowS = Type.Object(
  {
    id: Type.String(),
    state: Type.Enum(['creating', 'created']),
    created_at: Type.Number(),
    idempotency_key: Nullable(Type.String()),
    nodes: Type.Array(FlowNodeS),
    edges: Type.Array(Type.Object({ from: Type.String(), to: Type.String(), on_failure: FlowPolicyS })),
    counts: Type.Record(Type.String(), Type.Integer()),
  },
  { $id: 'Flow' },
)

export const FlowParams = Type.Object({ id: Type.String({ pattern: '^f[A-Za-z0-9_-]{20}$' }) }, strict)

// ---- flow control (docs/decisions/0022) ------------------------------------------------------

const RateS = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: 1_000_000, description: 'at most this many starts…' }),
    window_ms: Type.Integer({ minimum: 1, maximum: 86_400_000, description: '…per this many ms' }),
  },
  strict,
)
const TypeLimitsS = Type.Object(
  {
    rate: Type.Optional(RateS),
    concurrency: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
    breaker: Type.Optional(
      Type.Object(
        {
          failures: Type.Integer({ minimum: 1, maximum: 10_000, description: 'consecutive failed attempts' }),
          cooldown_ms: Type.Integer({
            minimum: 100,
            maximum: 86_400_000,
            description: 'open this long, then one probe',
          }),
        },
        strict,
      ),
    ),
  },
  strict,
)
export const LimitsBody = Type.Object(
  {
    rate: Type.Optional(RateS),
    concurrency: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 1_000_000,
        description: 'at most this many running at once, fleet-wide',
      }),
    ),
    key_concurrency: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 10_000,
        description: 'per partition_key, started in enqueue order (1: FIFO per key; a retry keeps its place)',
      }),
    ),
    types: Type.Optional(
      Type.Record(Type.String(), TypeLimitsS, { description: 'per task type, in this queue' }),
    ),
  },
  { ...strict, $id: 'LimitsBody' },
)
const BreakerViewS = Type.Object({
  state: Type.Enum(['closed', 'open', 'half_open']),
  failures: Type.Integer(),
  open_until: Nullable(Type.Number()),
  probe: Nullable(Type.String()),
})
export const LimitsReply = Type.Object({
  queue: Type.String(),
  limits: LimitsBody,
  running: Type.Object({
    queue: Nullable(Type.Integer()),
    types: Type.Record(Type.String(), Type.Integer()),
  }),
  held: Type.Array(
    Type.Object({ reason: Type.Enum(['concurrency', 'key']), scope: Type.String(), count: Type.Integer() }),
  ),
  breakers: Type.Record(Type.String(), BreakerViewS),
  paused: Type.Record(Type.String(), Type.Number()),
  released: Type.Optional(Type.Integer({ description: 'held jobs this change let go' })),
})
export const BreakerParams = Type.Object({ queue: QueueName, type: TaskType }, strict)
export const BreakerBody = Type.Object(
  {
    action: Type.Enum(['open', 'close', 'reset']),
    open_ms: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 604_800_000,
        description: "open: for how long (default: the breaker's cool-down, else 60 s)",
      }),
    ),
  },
  strict,
)
export type LimitsDto = Static<typeof LimitsReply>
export type LimitsBodyDto = Static<typeof LimitsBody>
// ---- day-2 operations (ADR 0020) -----------------------------------------------------------

export const PriorityBody = Type.Object({ priority: PriorityS }, strict)
export const PayloadBody = Type.Object(
  {
    payload: Type.Unknown({ description: 'the new payload (any JSON, at most MAX_PAYLOAD_BYTES)' }),
    edited_by: Type.Optional(Text(200)),
  },
  strict,
)
export const DeleteJobReply = Type.Object({
  deleted: Type.Integer(),
  id: Type.String(),
  queue: Type.String(),
  state: StateS,
})
export const EmptyQueueBody = Type.Object(
  { limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, default: 1000 })) },
  strict,
)
export const EmptyQueueReply = Type.Object({
  queue: Type.String(),
  removed: Type.Integer(),
  cancelled: Type.Integer(),
  more: Type.Boolean({ description: 'jobs waiting to run are left: call again' }),
})
export const DeleteQueueQuery = Type.Object({ force: Type.Optional(Type.Boolean()) }, strict)
export const DeleteQueueReply = Type.Object({ queue: Type.String(), keys: Type.Integer() })
export const BulkJobsBody = Type.Object(
  {
    action: Type.Enum(['cancel', 'retry', 'delete']),
    queue: Type.Optional(QueueName),
    state: Type.Optional(StateS),
    task_type: Type.Optional(TaskType),
    older_than_ms: Type.Optional(Type.Integer({ minimum: 0, maximum: 10 * 365 * 86_400_000 })),
    error_contains: Type.Optional(Text(256)),
    rate_per_sec: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000, default: 100 })),
    max: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000_000 })),
  },
  strict,
)
export const ConcurrencyBody = Type.Object(
  { concurrency: Type.Integer({ minimum: 1, maximum: 10_000 }) },
  strict,
)
export const WorkerParams = Type.Object({ id: WorkerId }, strict)

// ---- replay and debugging (ADR 0028) ---------------------------------------------------------

export const ReplayBody = Type.Object(
  {
    payload: Type.Optional(Type.Unknown({ description: "the new job's payload (default: the original's)" })),
    queue: Type.Optional(QueueName),
    priority: Type.Optional(PriorityS),
    delay_ms: Type.Optional(Type.Integer({ minimum: 0 })),
    run_at: Type.Optional(
      Type.Union([Type.Integer({ minimum: 0 }), Type.String({ maxLength: 64, description: 'ISO 8601' })]),
    ),
    max_retries: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000 })),
    timeout_ms: Type.Optional(Type.Integer({ minimum: 0 })),
    partition_key: Type.Optional(Text(256)),
    backoff: Type.Optional(BackoffS),
    idempotency_key: Type.Optional(Text(256)),
    job_id: Type.Optional(Type.String({ pattern: JOB_ID, description: "the replay's own id" })),
  },
  {
    ...strict,
    description:
      "what to change (all optional): everything else is the original's -- task type, payload, queue, priority, max_retries, timeout_ms, partition_key, backoff. Not carried: the original's idempotency_key and dedup (they would answer the replay with the original), its id, trace, start deadline and run time. Give the replay an idempotency_key of its own to make a repeated request safe.",
  },
)
export const DryRunQuery = Type.Object(
  {
    queue: QueueQuery.properties.queue,
    dry_run: Type.Optional(
      Type.Boolean({ description: 'check everything and answer what would be created, writing nothing' }),
    ),
  },
  strict,
)
export const CreateQuery = Type.Object({ dry_run: DryRunQuery.properties.dry_run }, strict)
/** The job shape without its $id (a response schema may hold `Job` once). */
const JobShape = Type.Object(JobS.properties)
export const DryRunReply = Type.Object(
  {
    dry_run: Type.Literal(true),
    outcome: Type.Enum(['create', 'existing', 'deduplicated'], {
      description:
        'create: a new job would be added; existing: its job_id or idempotency_key names `existing`; deduplicated: `existing` holds its dedup key and would answer',
    }),
    job: JobShape,
    generated_id: Type.Boolean({ description: "true: DTQ would number the job (job.id is '')" }),
    existing: Nullable(JobShape),
    queue: Type.String(),
    queue_is_new: Type.Boolean({ description: 'the add would register a new queue' }),
    notes: Type.Array(Type.String(), {
      description: 'what the job would meet: a paused queue or type, a breaker, limits',
    }),
    original: Type.Optional(Type.String({ description: 'a replay: the job it re-runs, `<queue>/<id>`' })),
    source: Type.Optional(
      Type.String({ description: 'where the original was found: redis (or an archive)' }),
    ),
  },
  { description: 'a dry run: what the add would do, nothing written' },
)
export const BatchDryRunReply = Type.Object(
  {
    dry_run: Type.Literal(true),
    create: Type.Integer(),
    existing: Type.Integer(),
    deduplicated: Type.Integer(),
    rejected: Type.Integer(),
    items: Type.Array(
      Type.Object({
        index: Type.Integer(),
        status: Type.Integer({ description: 'what the real batch would answer for it: 201, 200, 4xx' }),
        outcome: Type.Enum(['create', 'existing', 'deduplicated', 'rejected']),
        same_as: Type.Optional(
          Type.Integer({
            description: 'an earlier item of this batch that would answer it (same id, key or dedup)',
          }),
        ),
        dry_run: Type.Optional(DryRunReply),
        error: Type.Optional(
          Type.Object({
            error: Type.String(),
            code: Type.String(),
            message: Type.String(),
            details: Type.Optional(Type.Unknown()),
          }),
        ),
      }),
    ),
  },
  { description: "a batch's dry run: per item what the batch would do, nothing written" },
)
export const TimelineEntryS = Type.Object({
  at: Type.Number(),
  event: Type.String(),
  source: Type.Enum(['job', 'events', 'archive']),
  attempt: Type.Optional(Type.Integer()),
  worker: Type.Optional(Nullable(Type.String())),
  message: Type.Optional(Type.String()),
  event_id: Type.Optional(Type.String()),
  detail: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
})
export const TimelineReply = Type.Object({
  job: Type.Object({
    id: Type.String(),
    queue: Type.String(),
    task_type: Type.String(),
    state: Type.String(),
  }),
  entries: Type.Array(TimelineEntryS),
  partial: Type.Boolean({ description: 'true when the record misses something: `gaps` says what' }),
  gaps: Type.Array(Type.String()),
  events_scanned: Type.Integer({ description: "events-stream entries read to find this job's" }),
  source: Type.String(),
})
export const CompareQuery = Type.Object(
  {
    queue: QueueQuery.properties.queue,
    with: Type.String({
      pattern: '^([A-Za-z0-9_.~-]{1,80}/)?[A-Za-z0-9_.-]{1,128}$',
      description: 'the other job: `<queue>/<id>`, or an id (looked up as GET /jobs/{id} does)',
    }),
  },
  strict,
)
export const AttemptsQuery = Type.Object(
  {
    queue: QueueQuery.properties.queue,
    a: Type.Integer({ minimum: 1, maximum: 100_000 }),
    b: Type.Integer({ minimum: 1, maximum: 100_000 }),
  },
  strict,
)
const DifferenceS = Type.Object({
  path: Type.String({ description: 'JSON Pointer into the compared views' }),
  kind: Type.Enum(['added', 'removed', 'changed']),
  a: Type.Optional(Type.Unknown()),
  b: Type.Optional(Type.Unknown()),
})
const JobViewS = Type.Object({
  task_type: Type.String(),
  state: Type.String(),
  payload: Type.Unknown(),
  result: Type.Unknown(),
  error: Nullable(Type.String()),
  error_class: Nullable(Type.String()),
  options: Type.Record(Type.String(), Type.Unknown()),
  timings: Type.Record(Type.String(), Nullable(Type.Number())),
})
const CompareSideS = Type.Object({
  ref: Type.String(),
  source: Type.String(),
  created_at: Type.Number(),
  started_at: Nullable(Type.Number()),
  finished_at: Nullable(Type.Number()),
  worker: Nullable(Type.String()),
  view: JobViewS,
})
const AttemptViewS = Type.Object({
  attempt: Type.Integer(),
  outcome: Type.String(),
  worker: Nullable(Type.String()),
  started_at: Nullable(Type.Number()),
  ended_at: Nullable(Type.Number()),
  duration_ms: Nullable(Type.Number()),
  error: Nullable(Type.String()),
  error_class: Nullable(Type.String()),
  stack: Nullable(Type.String()),
  result: Type.Unknown(),
})
const comparison = <S extends TSchema>(side: S) =>
  Type.Object({
    a: side,
    b: side,
    same: Type.Boolean(),
    differences: Type.Array(DifferenceS, { description: 'at most 200' }),
    total: Type.Integer({ description: 'how many differences in all' }),
  })
export const CompareReply = comparison(CompareSideS)
export const AttemptsCompareReply = comparison(Type.Object({ ref: Type.String(), view: AttemptViewS }))
export type DryRunDto = Static<typeof DryRunReply>
export type TimelineDto = Static<typeof TimelineReply>
export type CompareDto = Static<typeof CompareReply>
export type AttemptsCompareDto = Static<typeof AttemptsCompareReply>
export type ReplayBodyDto = Static<typeof ReplayBody>
