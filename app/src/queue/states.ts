/**
 * The job state machine: the one table of allowed transitions. The Lua scripts implement
 * these moves; the tests check every script against this table, and docs/architecture.md
 * draws it.
 */
import type { JobState } from './job.ts'

export type Transition =
  | 'enqueue'
  | 'schedule'
  | 'promote'
  | 'deliver'
  | 'complete'
  | 'retry_later'
  | 'dead_letter'
  | 'cancel'
  | 'hand_back'
  | 'reclaim'
  | 'requeue'
  | 'wait'
  | 'release'
  | 'reopen'
  | 'hold'
  | 'grant'
  | 'defer'

/** from → transition → to. `null` as from means "a new job". */
export const TRANSITIONS: ReadonlyArray<{ from: JobState | null; via: Transition; to: JobState }> = [
  { from: null, via: 'enqueue', to: 'queued' },
  { from: null, via: 'schedule', to: 'scheduled' },
  { from: 'scheduled', via: 'promote', to: 'queued' },
  { from: 'retrying', via: 'promote', to: 'queued' },
  { from: 'queued', via: 'deliver', to: 'active' },
  { from: 'active', via: 'complete', to: 'completed' },
  { from: 'active', via: 'retry_later', to: 'retrying' },
  { from: 'active', via: 'dead_letter', to: 'failed' },
  { from: 'active', via: 'cancel', to: 'cancelled' },
  { from: 'active', via: 'hand_back', to: 'queued' },
  { from: 'active', via: 'reclaim', to: 'queued' },
  { from: 'active', via: 'reclaim', to: 'failed' },
  { from: 'active', via: 'reclaim', to: 'cancelled' },
  { from: 'queued', via: 'cancel', to: 'cancelled' },
  { from: 'scheduled', via: 'cancel', to: 'cancelled' },
  { from: 'retrying', via: 'cancel', to: 'cancelled' },
  { from: 'failed', via: 'requeue', to: 'queued' },
  { from: 'cancelled', via: 'requeue', to: 'queued' },
  // Flows (ADR 0019): a node with parents waits until they release it (flow_release).
  { from: null, via: 'wait', to: 'waiting' },
  { from: 'waiting', via: 'release', to: 'queued' },
  { from: 'waiting', via: 'dead_letter', to: 'failed' },
  { from: 'waiting', via: 'cancel', to: 'cancelled' },
  { from: 'failed', via: 'reopen', to: 'waiting' },
  { from: 'failed', via: 'reopen', to: 'queued' },
  { from: 'cancelled', via: 'reopen', to: 'waiting' },
  { from: 'cancelled', via: 'reopen', to: 'queued' },
  // Flow control (ADR 0022): over a slot limit a job waits held until granted a slot; over a
  // rate limit, or while its type's breaker is open or paused, it is deferred (scheduled).
  { from: 'queued', via: 'hold', to: 'held' },
  { from: 'held', via: 'grant', to: 'queued' },
  { from: 'held', via: 'cancel', to: 'cancelled' },
  { from: 'queued', via: 'defer', to: 'scheduled' },
  { from: 'active', via: 'defer', to: 'scheduled' },
]

export function canTransition(from: JobState | null, via: Transition, to?: JobState): boolean {
  return TRANSITIONS.some((t) => t.from === from && t.via === via && (to === undefined || t.to === to))
}

export const TERMINAL_STATES: ReadonlySet<JobState> = new Set(['completed', 'failed', 'cancelled'])
export const CANCELLABLE_STATES: ReadonlySet<JobState> = new Set([
  'waiting',
  'held',
  'queued',
  'scheduled',
  'retrying',
  'active',
])
export const RETRYABLE_STATES: ReadonlySet<JobState> = new Set(['failed', 'cancelled'])
