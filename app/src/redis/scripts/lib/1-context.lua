--[[
  Part 1 of the prelude of the DTQ function library (app/src/redis/scripts.ts joins
  scripts/lib/*.lua in name order, after the generated constants -- the job hash fields F_*,
  the key spellings K_*, GROUP, PRIORITIES, BUCKETS_MS, MAX_DELAY_MS -- then wraps each
  script's body in a function registered as dtq_<version>_<name>). Helpers are defined once
  when the library loads, not on every call.

  Every function is called with:
  KEYS[1]  base key "<prefix>:{<queue>}" -- every key a script touches derives from it, so a
           script never leaves its queue's cluster slot (see docs/decisions/0003).
  ARGV[1]  now, ms since the epoch (time is passed in, never read inside a script)
  ARGV[2]  approximate max length of the events stream
  ARGV[3]  retention of completed/cancelled jobs, seconds (0: delete at once)
  ARGV[4]  retention of failed (dead-lettered) jobs, seconds
  Script-specific arguments start at ARGV[5].

  This part: the per-call context (setup), argument checks, key builders.
]]
-- Per-call context, set by setup() at the start of every function (one runs at a time).
-- NOW is for arithmetic, NOW_S (the string as passed) for writing: a Lua number handed to
-- redis.call or cjson is formatted with printf("%.17g"), ~10 % of a drain's Redis CPU when
-- every timestamp, epoch and score went out that way.
local KEYS, ARGV, base, NOW, NOW_S, EVENTS_MAX, COMPLETED_TTL, FAILED_TTL, COMPLETED_TTL_S, FAILED_TTL_S
local k_delayed, k_dlq, k_events, k_stats
-- Counter increments and stream acknowledgements gathered during a call and written once at
-- its end by flush(): a batch of 100 jobs costs a few HINCRBY/XACK/XDEL, not hundreds.
local incr, typed, hist, tp_incr, acks, idx_ops, events
-- The queue's flow-control limits (2c-limits.lua), read once per call when first needed:
-- nil (not read yet), false (none), or the table of them.
local FC_CONF
-- Flow control's per-call state (2c-limits.lua), nil until first needed: FC_TAT, each rate
-- scope's GCRA time as this call moved it ({tat, window}: read once, written once at flush);
-- FC_EMPTY, the held lists this call found empty (until it pushes onto one).
local FC_TAT, FC_EMPTY
-- Whether the queue is archived (arch_on() in 2-batch.lua): nil (not read yet), true or false.
local ARCH
-- The created-time index (1b-created.lua): whether new jobs join it, whether its key exists --
-- nil (not read yet), true or false.
local CREATED, CREATED_KEY
-- Ready-stream entry ids (push_ready in 2-batch.lua, ADR 0037), nil until the call's first:
-- { '<now>-*', '<now>-', [stream] = true for each stream whose top this call found later than now }.
local READY

-- A refused call: raised before the script's first write (Redis keeps a script's earlier
-- writes when it fails midway, so every script reads and checks its arguments first).
local function refuse(msg)
  error({ err = 'DTQ_BAD_ARG ' .. msg })
end

local function setup(keys, args)
  KEYS, ARGV = keys, args
  base = keys[1]
  NOW = tonumber(args[1])
  NOW_S = args[1]
  if not NOW or NOW ~= NOW or NOW < 0 or NOW >= 1e15 then refuse('now must be ms since the epoch') end
  EVENTS_MAX = tonumber(args[2])
  COMPLETED_TTL = tonumber(args[3])
  FAILED_TTL = tonumber(args[4])
  if not (EVENTS_MAX and COMPLETED_TTL and FAILED_TTL) then refuse('events max length and retentions must be numbers') end
  COMPLETED_TTL_S, FAILED_TTL_S = args[3], args[4]
  k_delayed = base .. K_DELAYED
  k_dlq = base .. K_DLQ
  k_events = base .. K_EVENTS
  k_stats = base .. K_STATS
  incr, typed, hist, tp_incr, acks, idx_ops, events = {}, {}, {}, {}, {}, {}, {}
  FC_CONF = nil
  FC_TAT, FC_EMPTY = nil, nil
  ARCH = nil
  CREATED, CREATED_KEY = nil, nil
  READY = nil
end

-- ARGV[i] as an integer in [lo, hi], or the call is refused (NaN, infinities, 1e15 ... never
-- reach a ZADD or a HSET). With `per`, ARGV[i] counts groups of `per` values that end the
-- arguments: a call with more or fewer values than it announces is refused too, before any
-- group is read (one that ran out of values midway would have left its first jobs written).
local function arg_int(i, lo, hi, what, per)
  local v = tonumber(ARGV[i])
  if not v or v ~= v or v < lo or v > hi or v ~= math.floor(v) then
    refuse(what .. ' must be an integer from ' .. lo .. ' to ' .. hi .. ', got ' .. tostring(ARGV[i]))
  end
  if per and #ARGV ~= i + v * per then
    refuse(what .. ' is ' .. v .. ' (groups of ' .. per .. ') but ' .. (#ARGV - i) .. ' values follow')
  end
  return v
end

-- Small counts (epochs, attempts, TTLs) as strings, each formatted once per library load.
local INT_S = {}
local function int_s(n)
  local s = INT_S[n]
  if not s then
    s = string.format('%d', n)
    if n >= 0 and n <= 10000 then INT_S[n] = s end
  end
  return s
end

local function k_job(id) return base .. K_JOB .. id end
local function k_logs(id) return base .. K_LOGS .. id end
-- A job's priority is not stored when it is 'normal' (HMGET gives false): that stream.
local function k_stream(prio) return base .. K_STREAM .. (prio or 'normal') end
local function k_idx(state) return base .. K_IDX .. state end
local function k_idem(h) return base .. K_IDEM .. h end
local function k_meta() return base .. K_META end
