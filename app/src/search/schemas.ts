/**
 * The search API's schemas (ADR 0029): TypeBox, shared by the routes (validation, OpenAPI) and
 * the console (its types: `@dtq/app/search-schemas`).
 */
import Type, { type Static } from 'typebox'
import { Cursor, QueueName, StateS, TaskType, WorkerId } from '../http/schemas.ts'
import type { Job } from '../queue/job.ts'
import { EXPORT_FORMATS } from './export.ts'
import { MAX_WHERE } from './filters.ts'

const strict = { additionalProperties: false } as const
const Where = Type.String({
  minLength: 1,
  maxLength: 500,
  description:
    'a payload filter: `path=value` (JSON value, or text) or `path~text` (contains), e.g. `user.id=42`',
})

/** The filters of a search (also what a preset holds). */
export const SearchFiltersS = Type.Object(
  {
    queue: Type.Optional(QueueName),
    task_type: Type.Optional(TaskType),
    state: Type.Optional(StateS),
    worker: Type.Optional(WorkerId),
    from: Type.Optional(Type.Integer({ minimum: 0, description: 'ms since the epoch, inclusive' })),
    to: Type.Optional(Type.Integer({ minimum: 0, description: 'ms since the epoch, exclusive' })),
    q: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 200,
        pattern: '^[^\\u0000-\\u001f\\u007f]*$',
        description: 'free text over payload and errors (web search syntax: "a phrase", -not, or)',
      }),
    ),
    where: Type.Optional(Type.Union([Where, Type.Array(Where, { maxItems: MAX_WHERE })])),
  },
  strict,
)
export type SearchFiltersBody = Static<typeof SearchFiltersS>

export const SearchQuery = Type.Object(
  {
    ...SearchFiltersS.properties,
    cursor: Type.Optional(Cursor),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
  },
  strict,
)

export const ExportQuery = Type.Object(
  {
    ...SearchFiltersS.properties,
    format: Type.Optional(Type.Enum([...EXPORT_FORMATS], { default: 'csv' })),
    limit: Type.Optional(
      Type.Integer({ minimum: 1, description: 'rows at most (SEARCH_EXPORT_MAX: the cap)' }),
    ),
  },
  strict,
)

const JobAny = Type.Unsafe<Job>({
  type: 'object',
  additionalProperties: true,
  description: 'the job as GET /jobs/{id} serves it',
})
export const SearchItemS = Type.Object({
  source: Type.Enum(['live', 'archive']),
  at: Type.Number({ description: 'the time it sorts by: finished_at, or created_at while not finished' }),
  job: JobAny,
})

export const SearchReply = Type.Object({
  items: Type.Array(SearchItemS),
  next_cursor: Type.Union([Type.String(), Type.Null()]),
  history: Type.Enum(['enabled', 'disabled', 'unavailable'], {
    description:
      'disabled: no DATABASE_URL (live jobs only); unavailable: PostgreSQL failed (see history_error)',
  }),
  history_error: Type.Optional(Type.String()),
  live: Type.Object({
    scanned: Type.Integer({ description: 'live jobs read from Redis' }),
    capped: Type.Boolean({ description: 'SEARCH_LIVE_SCAN stopped the live part: narrow the filters' }),
  }),
  range: Type.Object({
    from: Type.Integer(),
    to: Type.Integer(),
    defaulted: Type.Boolean({
      description: 'no `from` given: the history searched is the last SEARCH_DEFAULT_DAYS',
    }),
  }),
})
export type SearchReplyBody = Static<typeof SearchReply>

export const PresetName = Type.String({
  pattern: '^[A-Za-z0-9_.-][A-Za-z0-9 _.-]{0,63}$',
  description: '1-64 letters, digits, space, _ . - (not starting with a space)',
})
export const PresetS = Type.Object({ name: PresetName, filters: SearchFiltersS, saved_at: Type.Number() })
export const PresetBody = Type.Object({ name: PresetName, filters: SearchFiltersS }, strict)
export type Preset = Static<typeof PresetS>

export type SearchItemDto = Static<typeof SearchItemS>
export type SearchFiltersDto = SearchFiltersBody
export type PresetDto = Preset
