import type { JobRef } from './job-ref'

/**
 * Every query key of the console, in one registry. A key starts with the resource it caches;
 * invalidating a root (`queryKeys.jobs.all`) refreshes everything under it, and the live feed
 * invalidates the roots in `liveRoots`.
 */
export const queryKeys = {
  whoami: ['auth', 'whoami'] as const,
  stats: ['stats'] as const,
  queues: ['queues'] as const,
  /** A queue's limits and their live state (under `queues`: a queue refresh refreshes them). */
  limits: (queue: string) => ['queues', 'limits', queue] as const,
  workers: ['workers'] as const,
  jobs: {
    all: ['jobs'] as const,
    list: (filters: object) => ['jobs', 'list', filters] as const,
    search: (term: string, queue?: string) => ['jobs', 'search', term, queue ?? null] as const,
    /** A job read with its queue and the same id read without one (an old link) are two entries. */
    detail: ({ id, queue }: JobRef) => ['jobs', 'detail', id, queue ?? null] as const,
  },
  /**
   * Replay and debugging reads (ADR 0028): not under `jobs`, so the live feed does not rescan a
   * timeline on every event (they refresh on demand).
   */
  debug: {
    timeline: ({ id, queue }: JobRef) => ['debug', 'timeline', id, queue ?? null] as const,
    compare: (a: string, b: string) => ['debug', 'compare', a, b] as const,
    attempts: (job: string, a: number, b: number) => ['debug', 'attempts', job, a, b] as const,
  },
  flows: {
    all: ['flows'] as const,
    detail: (id: string) => ['flows', 'detail', id] as const,
  },
  dlq: {
    all: ['dlq'] as const,
    list: (filters: object) => ['dlq', 'list', filters] as const,
    stats: (filters: object) => ['dlq', 'stats', filters] as const,
  },
  /** Alerts (ADR 0025): what fires, rules, silences, history -- all under one root. */
  alerts: {
    all: ['alerts'] as const,
    now: ['alerts', 'now'] as const,
    rules: ['alerts', 'rules'] as const,
    silences: ['alerts', 'silences'] as const,
    history: ['alerts', 'history'] as const,
  },
  audit: (filters: object) => ['audit', filters] as const,
  history: (range: string, queue?: string, taskType?: string) =>
    ['stats', 'history', range, queue ?? null, taskType ?? null] as const,
  /** What is failing now (GET /stats/failures, ADR 0032): a bounded DLQ walk, polled, not live. */
  failures: (minutes: number) => ['failures', minutes] as const,
  /** Searches across live and archived jobs (not refreshed by the live feed: a search is asked). */
  search: {
    results: (filters: object) => ['search', 'results', filters] as const,
    presets: ['search', 'presets'] as const,
  },
  schedules: {
    all: ['schedules'] as const,
    detail: (name: string) => ['schedules', 'detail', name] as const,
    /** The next times of a cron expression in a zone (the form's preview). */
    preview: (cron: string, tz: string) => ['schedules', 'preview', cron, tz] as const,
  },
}

/** The roots that job lifecycle events can change (everything but who you are). */
export const liveRoots = [
  queryKeys.jobs.all,
  queryKeys.dlq.all,
  queryKeys.flows.all,
  queryKeys.stats,
  queryKeys.queues,
  queryKeys.workers,
  queryKeys.schedules.all,
] as const
