--[[
  Prelude of the DTQ function library (app/src/redis/scripts.ts builds the library: this
  prelude, then each script's body wrapped in a function registered as dtq_<version>_<name>).
  Helpers are defined once when the library loads, not on every call.

  KEYS[1]  base key "<prefix>:{<queue>}" -- every key a script touches derives from it, so a
           script never leaves its queue's cluster slot (see docs/decisions/0003).
  ARGV[1]  now, ms since the epoch (time is passed in, never read inside a script)
  ARGV[2]  approximate max length of the events stream
  ARGV[3]  retention of completed/cancelled jobs, seconds (0: delete at once)
  ARGV[4]  retention of failed (dead-lettered) jobs, seconds
  Script-specific arguments start at ARGV[5].

  Must agree with app/src/redis/keys.ts (checked by a test).
]]
-- Per-call context, set by setup() at the start of every function (one runs at a time).
local KEYS, ARGV, base, NOW, EVENTS_MAX, COMPLETED_TTL, FAILED_TTL
local k_delayed, k_dlq, k_events, k_stats
-- Counter increments and stream acknowledgements gathered during a call and written once at
-- its end by flush(): a batch of 100 jobs costs a few HINCRBY/XACK/XDEL, not hundreds.
local incr, tp_incr, acks
local GROUP = 'workers'
local PRIORITIES = { 'high', 'normal', 'low' }

local function setup(keys, args)
  KEYS, ARGV = keys, args
  base = keys[1]
  NOW = tonumber(args[1])
  EVENTS_MAX = args[2]
  COMPLETED_TTL = tonumber(args[3])
  FAILED_TTL = tonumber(args[4])
  k_delayed = base .. ':delayed'
  k_dlq = base .. ':dlq'
  k_events = base .. ':events'
  k_stats = base .. ':stats'
  incr, tp_incr, acks = {}, {}, {}
end

local function k_job(id) return base .. ':job:' .. id end
local function k_logs(id) return base .. ':logs:' .. id end
local function k_stream(prio) return base .. ':stream:' .. prio end
local function k_idx(state) return base .. ':idx:' .. state end
local function k_idem(h) return base .. ':idem:' .. h end

-- One lifecycle event: ids and states only (lean: it is written on every transition).
local function emit(id, event, ttype)
  redis.call('XADD', k_events, 'MAXLEN', '~', EVENTS_MAX, '*', 'job', id, 'event', event, 'type', ttype or '')
end

-- Moves a job between per-state index zsets (score: when it entered the state).
local function move_idx(id, from, to)
  if from then redis.call('ZREM', k_idx(from), id) end
  if to then redis.call('ZADD', k_idx(to), NOW, id) end
end

local function bump(field, n)
  incr[field] = (incr[field] or 0) + (n or 1)
end

-- A total, and the same total for the task type ("<field>|<type>"), for per-type metrics.
local function bump_typed(field, ttype)
  bump(field)
  if ttype and ttype ~= '' then bump(field .. '|' .. ttype) end
end

-- Histogram of durations per queue ("h|<name>|<bucket>", "h|<name>|sum_ms"). Bucket bounds
-- in ms; must match HISTOGRAM_BUCKETS_MS in app/src/redis/keys.ts.
local BUCKETS_MS = { 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000 }
local function observe(name, ms)
  if not ms or ms < 0 then ms = 0 end
  local b = #BUCKETS_MS + 1
  for i, le in ipairs(BUCKETS_MS) do
    if ms <= le then
      b = i
      break
    end
  end
  bump('h|' .. name .. '|' .. b)
  bump('h|' .. name .. '|sum_ms', math.floor(ms))
end

-- Per-minute throughput bucket, kept two hours.
local function throughput(field)
  local key = base .. ':tp:' .. math.floor(NOW / 60000)
  local t = tp_incr[key]
  if not t then
    t = {}
    tp_incr[key] = t
  end
  t[field] = (t[field] or 0) + 1
end

-- A finished job lives `ttl` more seconds (0: removed now). Its index entry is swept by the janitor.
local function expire_job(id, ttl)
  if ttl > 0 then
    redis.call('EXPIRE', k_job(id), ttl)
    redis.call('EXPIRE', k_logs(id), ttl)
  else
    redis.call('DEL', k_job(id), k_logs(id))
  end
end

local function keep_job(id)
  redis.call('PERSIST', k_job(id))
  redis.call('PERSIST', k_logs(id))
end

-- Makes a job ready: a fresh entry at the tail of its priority stream.
local function push_ready(id, prio)
  return redis.call('XADD', k_stream(prio), '*', 'id', id)
end

-- Acknowledges and deletes a delivered entry (at flush). XACK checks no ownership: callers fence first.
local function ack(prio, entry)
  local t = acks[prio]
  if not t then
    t = {}
    acks[prio] = t
  end
  t[#t + 1] = entry
end

-- Writes what the call gathered: counters, throughput buckets (kept two hours), acks.
local function flush()
  for field, n in pairs(incr) do redis.call('HINCRBY', k_stats, field, n) end
  for key, fields in pairs(tp_incr) do
    for field, n in pairs(fields) do
      if redis.call('HINCRBY', key, field, n) == n then redis.call('EXPIRE', key, 7200) end
    end
  end
  for prio, ids in pairs(acks) do
    local s = k_stream(prio)
    redis.call('XACK', s, GROUP, unpack(ids))
    redis.call('XDEL', s, unpack(ids))
  end
end

-- Dead-letters a job that is leaving `from` (its stream entry already handled by the caller).
local function dead_letter(id, from, ttype, message, attempts)
  local jk = k_job(id)
  -- The entry id carries the (passed-in) failure time, so purging by age is an XRANGE by id.
  local last = redis.call('XREVRANGE', k_dlq, '+', '-', 'COUNT', 1)[1]
  local entry_id = '*'
  if not last or tonumber(string.match(last[1], '^(%d+)')) < NOW then entry_id = NOW .. '-*' end
  local dlq_entry = redis.call('XADD', k_dlq, entry_id, 'id', id, 'type', ttype or '', 'error', message,
    'attempts', attempts or '0', 'failed_at', NOW)
  redis.call('HSET', jk, 'state', 'failed', 'error', message, 'finished_at', NOW, 'updated_at', NOW, 'dlq_entry', dlq_entry)
  move_idx(id, from, 'failed')
  bump_typed('failed', ttype)
  throughput('failed')
  emit(id, 'failed', ttype)
  expire_job(id, FAILED_TTL)
end

local function cancel_job(id, from, ttype)
  redis.call('HSET', k_job(id), 'state', 'cancelled', 'finished_at', NOW, 'updated_at', NOW)
  redis.call('HDEL', k_job(id), 'cancel_requested')
  move_idx(id, from, 'cancelled')
  bump_typed('cancelled', ttype)
  emit(id, 'cancelled', ttype)
  expire_job(id, COMPLETED_TTL)
end

-- Back to the ready stream (hand-back, reclaim, retry from the DLQ). Bumping the epoch fences
-- out whoever held the job before.
local function requeue(id, from, prio, ttype, event)
  local entry = push_ready(id, prio)
  redis.call('HINCRBY', k_job(id), 'epoch', 1)
  redis.call('HSET', k_job(id), 'state', 'queued', 'entry', entry, 'updated_at', NOW, 'queued_at', NOW)
  move_idx(id, from, 'queued')
  emit(id, event or 'queued', ttype)
  return entry
end
