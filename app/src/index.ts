/** The library API of DTQ: producers use Queue, workers use Worker. */
export { type Config, ConfigError, loadConfig, SETTINGS } from './config.ts'
export {
  DtqError,
  JobAbortedError,
  PermanentJobError,
  RateLimitedError,
  RetryJobError,
  SnoozeJob,
} from './errors.ts'
export { backoffDelayMs } from './queue/backoff.ts'
export type { AttemptError, Job, JobState, Priority } from './queue/job.ts'
export { PRIORITIES, STATES } from './queue/job.ts'
export {
  type AddOptions,
  type AddResult,
  BulkAddError,
  type BulkItem,
  type BulkOutcome,
  type JobSpec,
  Queue,
} from './queue/queue.ts'
export type { ReplayChanges } from './queue/replay.ts'
export { TRANSITIONS } from './queue/states.ts'
export type { JobSource } from './redis/job-source.ts'
export type { WorkerCommand, WorkerInfo } from './redis/registry.ts'
export { createReplays, type DryRun, Replays } from './redis/replay-service.ts'
export type { Clock, QueueStats } from './redis/store.ts'
export { disableTracing, enableTracing, startTracing, stopTracing } from './tracing/index.ts'
export type { Handler, JobContext } from './worker/handlers.ts'
export { Worker, type WorkerOptions } from './worker/worker.ts'
