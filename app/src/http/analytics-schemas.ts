/**
 * The analytics routes' schemas (ADR 0030): queries and answers, for validation, OpenAPI and
 * the console's types (`@dtq/app/analytics`). No Fastify here: the console's typecheck reads it.
 */
import Type, { type Static, type TSchema } from 'typebox'
import { BUCKET_MS, type Bucket, MAX_BUCKETS } from '../history/analytics.ts'
import { QueueName, TaskType } from './schemas.ts'

const strict = { additionalProperties: false } as const
const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()])
const Ms = (description: string) => Type.Integer({ minimum: 0, maximum: 9_999_999_999_999, description })

const RangeProps = {
  from: Type.Optional(Ms('start of the range, ms since the epoch, inclusive (default: `to` - 7 days)')),
  to: Type.Optional(Ms('end of the range, ms, exclusive (default: now)')),
  queue: Type.Optional(QueueName),
  task_type: Type.Optional(TaskType),
}
export const BucketS = Type.Enum(Object.keys(BUCKET_MS) as Bucket[], {
  description: `UTC hours or days; at most ${MAX_BUCKETS} buckets in the range`,
})
export const SeriesQuery = Type.Object({ ...RangeProps, bucket: Type.Optional(BucketS) }, strict)
export const LatencyQuery = Type.Object(
  {
    ...RangeProps,
    bucket: Type.Optional(BucketS),
    by: Type.Optional(Type.Enum(['task_type'], { description: 'a series per task type too' })),
  },
  strict,
)
export const TopQuery = Type.Object(
  { ...RangeProps, limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })) },
  strict,
)

export const Head = {
  from: Type.Integer(),
  to: Type.Integer(),
}
export const SeriesHead = { ...Head, bucket: BucketS, bucket_ms: Type.Integer() }
export const Counts = Type.Object({
  at: Type.Number({ description: "the bucket's start, ms" }),
  task_type: Type.String({ description: 'a task type, or (other) for the sum of the less busy ones' }),
  completed: Type.Integer(),
  failed: Type.Integer(),
  cancelled: Type.Integer(),
})
export const Rate = Type.Object({
  at: Type.Number(),
  task_type: Type.String(),
  completed: Type.Integer(),
  failed: Type.Integer(),
  rate: Type.Number({ description: 'failed / (completed + failed)' }),
})
const Pcts = Type.Object({
  p50: Nullable(Type.Number()),
  p95: Nullable(Type.Number()),
  p99: Nullable(Type.Number()),
})
export const Latency = Type.Object({
  at: Type.Number(),
  task_type: Nullable(Type.String({ description: 'null: all types together' })),
  count: Type.Integer(),
  wait_ms: Pcts,
  run_ms: Pcts,
})
export const ErrorClassS = Type.Object({
  error_class: Type.String(),
  count: Type.Integer({ description: 'failed attempts with this class (each retry counts)' }),
  jobs: Type.Integer({ description: 'distinct jobs' }),
  first_seen: Type.Number({ description: 'first failure in the range, ms' }),
  last_seen: Type.Number(),
  example: Nullable(Type.String({ description: 'the latest message (first 1000 characters)' })),
  task_types: Type.Array(Type.String(), { description: 'up to 10' }),
})
export const Slow = Type.Object({
  task_type: Type.String(),
  count: Type.Integer(),
  run_ms: Type.Object({ ...Pcts.properties, avg: Nullable(Type.Number()), max: Nullable(Type.Number()) }),
})
export const WorkerS = Type.Object({
  worker: Type.String(),
  completed: Type.Integer(),
  failed: Type.Integer(),
  cancelled: Type.Integer(),
  per_hour: Type.Number({ description: 'attempts ended per hour of the range' }),
  failed_per_hour: Type.Number(),
  run_p95_ms: Nullable(Type.Number()),
  first_seen: Type.Number(),
  last_seen: Type.Number(),
})

export type ThroughputDto = Static<typeof Counts>
export type FailureRateDto = Static<typeof Rate>
export type LatencyDto = Static<typeof Latency>
export type ErrorClassDto = Static<typeof ErrorClassS>
export type SlowDto = Static<typeof Slow>
export type WorkerRateDto = Static<typeof WorkerS>
