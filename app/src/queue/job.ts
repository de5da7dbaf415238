/** The job record as the library and the API see it (snake_case, as stored and served). */
export const PRIORITIES = ['high', 'normal', 'low'] as const
export type Priority = (typeof PRIORITIES)[number]

export const STATES = [
  'waiting',
  'held',
  'queued',
  'scheduled',
  'active',
  'retrying',
  'completed',
  'failed',
  'cancelled',
] as const
export type JobState = (typeof STATES)[number]

export interface AttemptError {
  attempt: number
  message: string
  /** The error's class (errorClass() in errors.ts; absent on older records). */
  class?: string
  stack?: string
  worker: string
  /** When the failed attempt started (absent on older records). */
  started_at?: number
  /** When it failed. */
  at: number
}

export const DEDUP_MODES = ['unique', 'throttle', 'debounce'] as const
export type DedupMode = (typeof DEDUP_MODES)[number]

/** A job's deduplication as stored (ADR 0021). */
export interface JobDedup {
  mode: DedupMode
  ttl_ms: number
  /** SHA-256 (base64url) of the task type and payload, or of the caller's key. */
  key_hash: string
}

/** F.dedup's stored value "<mode> <ttl_ms> <hash>" -> JobDedup. */
function decodeDedup(v: string | undefined): JobDedup | null {
  if (!v) return null
  const [mode, ttl, hash] = v.split(' ')
  return { mode: mode as DedupMode, ttl_ms: Number(ttl), key_hash: hash ?? '' }
}

/** The record of a job's payload edits (ADR 0020). */
export interface JobEdits {
  count: number
  by: string
  at: number
  previous_sha1: string
}

export interface Backoff {
  initial_ms?: number
  multiplier?: number
  max_ms?: number
}

export interface Job {
  id: string
  queue: string
  task_type: string
  payload: unknown
  state: JobState
  priority: Priority
  attempts: number
  failures: number
  stalls: number
  max_retries: number
  timeout_ms: number
  epoch: number
  created_at: number
  updated_at: number
  /** When the job last became ready (entered a stream). */
  queued_at: number | null
  run_at: number | null
  started_at: number | null
  finished_at: number | null
  worker: string | null
  result: unknown
  error: string | null
  /** The last failure's error class (the error's name or code, errorClass()); null before a failure. */
  error_class: string | null
  errors: AttemptError[]
  progress: number | null
  idempotency_key: string | null
  partition_key: string | null
  trace: string | null
  backoff: Backoff | null
  cancel_requested: boolean
  /** The schedule that made this job, if one did. */
  schedule: string | null
  /** The fire time it was made for (a triggered job: when it was triggered). */
  fired_at: number | null
  /** The flow the job is a node of (docs/decisions/0019), and its node key there. */
  flow_id: string | null
  flow_node: string | null
  /** A flow node's completed parents' results, by parent node key ({} for a job without parents). */
  parent_results: Record<string, unknown>
  /** Deduplication (ADR 0021): the mode, the window and the key's hash; null without. */
  dedup: JobDedup | null
  /** The start deadline (ms since the epoch): a job not started by then ends cancelled, `expired`. */
  start_by: number | null
  /** True when the job ended because its start deadline passed (its error says when). */
  expired: boolean
  /** How many times its handler snoozed it (SnoozeJob / ctx.snooze: no attempt used). */
  snoozes: number
  /** Set (true) on the answer to an add that an earlier job's dedup answered: this is that job. */
  deduplicated?: boolean
  /**
   * Present once its payload was edited (ADR 0020): how many times, the last edit's author and
   * time, and the SHA-1 of the payload that edit replaced.
   */
  edits?: JobEdits
  /**
   * Set (true) on the answer to a repeated idempotency key whose job has finished and been
   * removed after its retention: only its id, final state and finished_at are still known.
   */
  removed?: boolean
  /** A replay (ADR 0028): the job it re-runs, `<queue>/<id>`; null for a job that is none. */
  replay_of: string | null
  /** Present once the job was replayed: how many times, and its latest replays (at most 10, newest first). */
  replays?: JobReplays
}

/** The record of a job's replays (ADR 0028), kept on the original. */
export interface JobReplays {
  count: number
  /** The latest replays, newest first: `<queue>/<id>` and when it was made. */
  last: Array<{ job: string; at: number }>
}

/**
 * The job hash's field names: two letters each, since a field name is stored in every job's
 * hash (the six fields of a waiting job took 47 of its 119 bytes with the long names: a
 * jemalloc size class, docs/decisions/0011). This map is the one place they are spelled: the
 * Lua library gets them as constants (F_STATE = 'st', ...: app/src/redis/scripts.ts) and
 * decodeJob reads through it. Never reuse a code for another meaning (stored data keeps it).
 */
export const F = {
  task_type: 'ty',
  payload: 'pl',
  state: 'st',
  priority: 'pr',
  attempts: 'at',
  failures: 'fa',
  stalls: 'sl',
  max_retries: 'mr',
  timeout_ms: 'to',
  epoch: 'ep',
  created_at: 'ca',
  updated_at: 'ua',
  queued_at: 'qa',
  run_at: 'ra',
  started_at: 'sa',
  finished_at: 'fi',
  worker: 'wk',
  result: 're',
  error: 'er',
  errors: 'es',
  progress: 'pg',
  idempotency_key: 'ik',
  /** The idempotency key's hash (its key name): the finishing scripts record the outcome there. */
  idem_hash: 'ih',
  partition_key: 'pk',
  trace: 'tr',
  backoff: 'bo',
  cancel_requested: 'cr',
  /** The job's current ready-stream entry id (while queued or active). */
  entry: 'en',
  /** Its dead-letter stream entry id (while failed). */
  dlq_entry: 'de',
  /** '1' once the job has written log lines (its logs key exists). */
  logs: 'lg',
  /** The schedule that made the job (ADR 0018). */
  schedule: 'sc',
  /** The fire time of the schedule that made the job (ADR 0018). */
  fired_at: 'sf',
  // Flow members (docs/decisions/0019).
  /** The flow id. */
  flow: 'fl',
  /** The node key within the flow. */
  flow_node: 'fn',
  /** How many parents have not yet released it (a `waiting` job waits while this is above 0). */
  flow_pending: 'fp',
  /** What each parent released it with, JSON {node: c|i|f|x}: a replay of a release changes nothing. */
  flow_released: 'fr',
  /** The completed parents' results, JSON {node: result}. */
  parent_results: 'pq',
  /** '1' while the job is failed or cancelled because of a parent (a parent's retry re-opens it). */
  flow_ended: 'fx',
  /**
   * The further flows it is a parent in, JSON [[flow, node], ...]: an existing job named in a
   * later job's depends_on while it was already a member of another flow (ADR 0019).
   */
  flow_watch: 'fw',
  /**
   * Its children in its flow, JSON (the record's `c:<node>` list), written by flow_attach: its
   * end's outbox entry carries them, so the release never needs the flow's record (ADR 0019).
   */
  flow_children: 'fk',
  // Flow control (ADR 0022).
  /** The slot sets the job holds, JSON [suffix, ...]: concurrency slots while it runs, a key's until it ends. */
  fc_slots: 'hs',
  /** Why it waits: the held list it is in (state `held`), or rate | breaker | paused (state `scheduled`). */
  fc_held: 'hd',
  /** The start time a rate limit reserved for it (it starts then without taking another token). */
  fc_rate_at: 'rr',
  // Dedup, deadlines, snooze (docs/decisions/0021).
  /** The job's dedup: "<mode> <ttl_ms> <key hash>" (its queue's key `dd:<hash>` names the job holding the place). */
  dedup: 'dd',
  /** Its start deadline, ms since the epoch: not started by then, it ends cancelled (expired). */
  start_by: 'sb',
  /** '1' once the job ended because its start deadline passed. */
  expired: 'xp',
  /** While the job's end awaits the archiver (ADR 0027), that end's finished_at: retention keeps the job until then. */
  archive: 'ar',
  /** How many times its handler snoozed it (each without using an attempt). */
  snoozes: 'sn',
  /** Payload edits (day-2 operations, ADR 0020): JSON {count, by, at, previous_sha1}. */
  edits: 'ed',
  /** The last failure's error class (errorClass() in errors.ts): a bounded label, not a message. */
  error_class: 'ec',
  // Replays (docs/decisions/0028).
  /** The job this one replays: `<queue>/<id>` (written at its creation, never changed). */
  replay_of: 'rp',
  /** Its replays: JSON {count, last: [{job, at}, ...]} (at most 10, newest first), note_replay. */
  replays: 'rx',
} as const

/**
 * The max_retries a job hash does not store (ADR 0037): absent means this, a format constant
 * (not the configured default, which may change while jobs wait). With the entry id stored as
 * a sequence, a waiting job's hash fits the 64 B size class instead of 96.
 */
export const MAX_RETRIES_UNSTORED = 3

/**
 * A job's ready-stream entry id from its hash (ADR 0037): stored whole, or — a new job's — as
 * the sequence after its created_at (`<created_at>-<seq>`). undefined when it has none.
 */
export function jobEntry(h: Record<string, string | undefined>): string | undefined {
  const en = h[F.entry]
  const ca = h[F.created_at]
  return en !== undefined && ca !== undefined && !en.includes('-') ? `${ca}-${en}` : en
}

/** Lua constants for the function library: `local F_TASK_TYPE, ... = 'ty', ...`. */
export function luaFieldConstants(): string {
  const names = Object.keys(F).map((k) => `F_${k.toUpperCase()}`)
  const codes = Object.values(F).map((c) => `'${c}'`)
  return `local ${names.join(', ')} = ${codes.join(', ')}`
}

const num = (v: string | undefined): number | null => (v === undefined || v === '' ? null : Number(v))

function parseJson(v: string | undefined): unknown {
  if (v === undefined || v === '') return null
  try {
    return JSON.parse(v)
  } catch {
    return v
  }
}

/**
 * Decodes a job hash (HGETALL reply) into a Job. The id is not stored in the hash (it is in
 * the key); queued_at is not stored while it equals created_at; updated_at is the latest of
 * the stored times (a start or a completion does not write it: fewer values per job).
 */
export function decodeJob(queue: string, h: Record<string, string>, id = h.id ?? ''): Job {
  const created = num(h[F.created_at]) ?? 0
  return {
    id,
    queue,
    task_type: h[F.task_type] ?? '',
    payload: parseJson(h[F.payload]),
    state: (h[F.state] ?? 'queued') as JobState,
    priority: (h[F.priority] ?? 'normal') as Priority,
    attempts: num(h[F.attempts]) ?? 0,
    failures: num(h[F.failures]) ?? 0,
    stalls: num(h[F.stalls]) ?? 0,
    max_retries: num(h[F.max_retries]) ?? MAX_RETRIES_UNSTORED,
    timeout_ms: num(h[F.timeout_ms]) ?? 0,
    epoch: num(h[F.epoch]) ?? 0,
    created_at: created,
    // Not written by every transition (start and completion leave it out): the latest time.
    updated_at: Math.max(
      created,
      num(h[F.updated_at]) ?? 0,
      num(h[F.queued_at]) ?? 0,
      num(h[F.started_at]) ?? 0,
      num(h[F.finished_at]) ?? 0,
    ),
    // A job that was never scheduled became ready when it was created.
    queued_at:
      num(h[F.queued_at]) ?? (h[F.run_at] === undefined && h[F.created_at] !== undefined ? created : null),
    run_at: num(h[F.run_at]),
    started_at: num(h[F.started_at]),
    finished_at: num(h[F.finished_at]),
    worker: h[F.worker] || null,
    result: parseJson(h[F.result]),
    error: h[F.error] || null,
    error_class: h[F.error_class] || null,
    errors: (parseJson(h[F.errors]) as AttemptError[] | null) ?? [],
    progress: num(h[F.progress]),
    idempotency_key: h[F.idempotency_key] || null,
    partition_key: h[F.partition_key] || null,
    trace: h[F.trace] || null,
    backoff: (parseJson(h[F.backoff]) as Backoff | null) ?? null,
    cancel_requested: h[F.cancel_requested] === '1',
    schedule: h[F.schedule] || null,
    fired_at: num(h[F.fired_at]),
    flow_id: h[F.flow] || null,
    flow_node: h[F.flow_node] || null,
    parent_results: (parseJson(h[F.parent_results]) as Record<string, unknown> | null) ?? {},
    dedup: decodeDedup(h[F.dedup]),
    start_by: num(h[F.start_by]),
    expired: h[F.expired] === '1',
    snoozes: num(h[F.snoozes]) ?? 0,
    ...(h[F.edits] ? { edits: parseJson(h[F.edits]) as JobEdits } : {}),
    ...(h._removed === '1' ? { removed: true } : {}),
    replay_of: h[F.replay_of] || null,
    ...(h[F.replays] ? { replays: parseJson(h[F.replays]) as JobReplays } : {}),
  }
}

/** Flat [k, v, k, v] array (what a script returns for HGETALL) → record. */
export function pairsToRecord(flat: string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i]!] = flat[i + 1]!
  return out
}
