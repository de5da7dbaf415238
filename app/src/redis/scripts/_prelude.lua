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
-- NOW is for arithmetic, NOW_S (the string as passed) for writing: a Lua number handed to
-- redis.call or cjson is formatted with printf("%.17g"), ~10 % of a drain's Redis CPU when
-- every timestamp, epoch and score went out that way.
local KEYS, ARGV, base, NOW, NOW_S, EVENTS_MAX, COMPLETED_TTL, FAILED_TTL, COMPLETED_TTL_S, FAILED_TTL_S
local k_delayed, k_dlq, k_events, k_stats
-- Counter increments and stream acknowledgements gathered during a call and written once at
-- its end by flush(): a batch of 100 jobs costs a few HINCRBY/XACK/XDEL, not hundreds.
local incr, typed, hist, tp_incr, acks, idx_ops, events
local GROUP = 'workers'
local PRIORITIES = { 'high', 'normal', 'low' }

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
  COMPLETED_TTL_S, FAILED_TTL_S = args[3], args[4]
  k_delayed = base .. ':delayed'
  k_dlq = base .. ':dlq'
  k_events = base .. ':events'
  k_stats = base .. ':stats'
  incr, typed, hist, tp_incr, acks, idx_ops, events = {}, {}, {}, {}, {}, {}, {}
end

-- ARGV[i] as an integer in [lo, hi], or the call is refused (NaN, infinities, 1e15 ... never
-- reach a ZADD or a HSET).
local function arg_int(i, lo, hi, what)
  local v = tonumber(ARGV[i])
  if not v or v ~= v or v < lo or v > hi or v ~= math.floor(v) then
    refuse(what .. ' must be an integer from ' .. lo .. ' to ' .. hi .. ', got ' .. tostring(ARGV[i]))
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

local function k_job(id) return base .. ':job:' .. id end
local function k_logs(id) return base .. ':logs:' .. id end
-- A job's priority is not stored when it is 'normal' (HMGET gives false): that stream.
local function k_stream(prio) return base .. ':stream:' .. (prio or 'normal') end
local function k_idx(state) return base .. ':idx:' .. state end
local function k_idem(h) return base .. ':idem:' .. h end

-- Lifecycle events: ids and states only. Gathered during a call and written at flush(): a run
-- of consecutive events of one kind and task type is one stream entry whose `job` field holds
-- the ids, space-separated (ids have none), so a call that starts or finishes 30 jobs writes
-- one entry, not 30. Readers expand an entry into one event per id (app/src/http/events.ts).
local function emit(id, event, ttype)
  ttype = ttype or ''
  local g = events[#events]
  if not g or g[1] ~= event or g[2] ~= ttype then
    g = { event, ttype }
    events[#events + 1] = g
  end
  g[#g + 1] = id
end

-- Moves a job between per-state index zsets (score: when it entered the state). Gathered and
-- written at flush() as one ZREM and one ZADD per state (a move costs an element, not a call);
-- the last move of an id in a call wins. Queued and active jobs have no index: the ready
-- streams are it (undelivered entries are queued jobs, pending entries active ones).
local function idx_op(state, id, add)
  if state == 'queued' or state == 'active' then return end
  local t = idx_ops[state]
  if not t then
    t = {}
    idx_ops[state] = t
  end
  t[id] = add
end

local function move_idx(id, from, to)
  if from then idx_op(from, id, false) end
  if to then idx_op(to, id, true) end
end

local function bump(field, n)
  incr[field] = (incr[field] or 0) + (n or 1)
end

-- Per-type totals are kept for at most MAX_TYPES task types per queue (the types set holds
-- their names); later types count under '_other', so the stats hash cannot grow without bound.
-- TYPE_KNOWN remembers, for the life of the loaded library, the types already in a set.
local MAX_TYPES = 200
local TYPE_KNOWN = {}
local function typed_name(ttype)
  local memo = base .. ' ' .. ttype
  if TYPE_KNOWN[memo] then return ttype end
  local k_types = base .. ':types'
  if redis.call('SISMEMBER', k_types, ttype) == 0 then
    if redis.call('SCARD', k_types) >= MAX_TYPES then return '_other' end
    redis.call('SADD', k_types, ttype)
  end
  TYPE_KNOWN[memo] = true
  return ttype
end

-- A total, and the same total for the task type ("<field>|<type>", named at flush), for
-- per-type metrics.
local function bump_typed(field, ttype)
  bump(field)
  if ttype and ttype ~= '' then
    local t = typed[field]
    if not t then
      t = {}
      typed[field] = t
    end
    t[ttype] = (t[ttype] or 0) + 1
  end
end

-- Histogram of durations per queue ("h|<name>|<bucket>", "h|<name>|sum_ms"). Bucket bounds
-- in ms; must match HISTOGRAM_BUCKETS_MS in app/src/redis/keys.ts.
local BUCKETS_MS = { 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000 }
-- Counted per call by bucket number; the fields are named once, at flush.
local N_BUCKETS = #BUCKETS_MS
local function observe(name, ms)
  if not ms or ms < 0 then ms = 0 end
  local b = N_BUCKETS + 1
  for i = 1, N_BUCKETS do
    if ms <= BUCKETS_MS[i] then
      b = i
      break
    end
  end
  local h = hist[name]
  if not h then
    h = { sum = 0 }
    hist[name] = h
  end
  h[b] = (h[b] or 0) + 1
  h.sum = h.sum + math.floor(ms)
end

-- Per-minute throughput bucket (NOW's minute: one per call), kept two hours.
local function throughput(field)
  tp_incr[field] = (tp_incr[field] or 0) + 1
end

-- A failed or cancelled job lives `ttl` more seconds (0: removed now); its index entry is
-- swept by the janitor. (Completed jobs are removed through their index: prune_completed.)
local function expire_job(id, ttl, ttl_s)
  local jk = k_job(id)
  if ttl > 0 then
    redis.call('EXPIRE', jk, ttl_s)
    redis.call('EXPIRE', k_logs(id), ttl_s)
  else
    redis.call('DEL', jk, k_logs(id))
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
  prio = prio or 'normal'
  local t = acks[prio]
  if not t then
    t = {}
    acks[prio] = t
  end
  t[#t + 1] = entry
end

-- Calls a command with a fixed head and a long tail of arguments, in slices (Lua's unpack has a limit).
local function call_many(cmd, key, args, step)
  for i = 1, #args, step do
    redis.call(cmd, key, unpack(args, i, math.min(i + step - 1, #args)))
  end
end

local function call_many_after(cmd, key, arg, args)
  for i = 1, #args, 1000 do
    redis.call(cmd, key, arg, unpack(args, i, math.min(i + 999, #args)))
  end
end

-- Stream entry ids "<ms>-<seq>": order, and the smallest id after one.
local function split_id(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function id_lt(a, b)
  local am, as = split_id(a)
  local bm, bs = split_id(b)
  return am < bm or (am == bm and as < bs)
end
local function next_id(id)
  local ms, seq = split_id(id)
  return string.format('%.0f-%.0f', ms, seq + 1)
end

-- Writes what the call gathered: index moves, counters, throughput buckets (kept two hours),
-- acks, events.
local function flush()
  for state, ops in pairs(idx_ops) do
    local add, rem = {}, {}
    for id, is_add in pairs(ops) do
      if is_add then
        add[#add + 1] = NOW_S
        add[#add + 1] = id
      else
        rem[#rem + 1] = id
      end
    end
    if #rem > 0 then call_many('ZREM', k_idx(state), rem, 1000) end
    if #add > 0 then call_many('ZADD', k_idx(state), add, 1000) end
  end
  for field, t in pairs(typed) do
    for ttype, n in pairs(t) do bump(field .. '|' .. typed_name(ttype), n) end
  end
  for name, h in pairs(hist) do
    for b = 1, N_BUCKETS + 1 do
      if h[b] then bump('h|' .. name .. '|' .. b, h[b]) end
    end
    bump('h|' .. name .. '|sum_ms', h.sum)
  end
  for field, n in pairs(incr) do redis.call('HINCRBY', k_stats, field, n) end
  local tp_key = base .. ':tp:' .. math.floor(NOW / 60000)
  for field, n in pairs(tp_incr) do
    if redis.call('HINCRBY', tp_key, field, n) == n then redis.call('EXPIRE', tp_key, 7200) end
  end
  for prio, ids in pairs(acks) do
    local s = k_stream(prio)
    call_many_after('XACK', s, GROUP, ids)
    -- Acknowledged entries are deleted: in bulk by trimming the stream's head below the oldest
    -- entry still pending (every entry before it was delivered and acknowledged; undelivered
    -- entries all come after it), and one by one (XDEL) only for those the trim cannot reach
    -- because an older entry is still pending (a long job). With none pending, the head up to
    -- the newest acknowledged entry goes.
    -- The oldest pending entry: the extended form with COUNT 1 reads the head of the group's
    -- pending list (O(log n)); the summary form would count entries per consumer, a cost
    -- that grows with the fleet.
    local oldest = redis.call('XPENDING', s, GROUP, '-', '+', 1)[1]
    local minid
    if oldest then
      minid = oldest[1]
    else
      local newest = ids[1]
      for i = 2, #ids do
        if id_lt(newest, ids[i]) then newest = ids[i] end
      end
      minid = next_id(newest)
    end
    redis.call('XTRIM', s, 'MINID', minid)
    local rest = {}
    local mm, ms = split_id(minid)
    for _, id in ipairs(ids) do
      local im, is = split_id(id)
      if im > mm or (im == mm and is >= ms) then rest[#rest + 1] = id end
    end
    if #rest > 0 then call_many('XDEL', s, rest, 1000) end
  end
  -- The events stream is trimmed to about EVENTS_MAX events: an entry of n events trims it to
  -- EVENTS_MAX / n entries (uniform batches keep EVENTS_MAX events; mixed sizes at most ~2x).
  for _, g in ipairs(events) do
    local n = #g - 2
    redis.call('XADD', k_events, 'MAXLEN', '~', math.max(1, math.floor(EVENTS_MAX / n)), '*',
      'job', table.concat(g, ' ', 3), 'event', g[1], 'type', g[2])
  end
end

-- Completed jobs carry no TTL (no EXPIRE call per completion, no expires-dict entry): the
-- completed index, scored by finish time, is their expiry list (docs/decisions/0010). Removes
-- up to `limit` jobs completed more than the retention ago -- hash, logs, index entry --
-- deleting a hash only if it still holds a completed job (an id can be reused once its job is
-- gone). Every call that completes jobs runs it first (for up to twice as many as it completes,
-- so removal keeps pace with completion); the janitor runs it for queues gone quiet.
local function prune_completed(limit)
  if COMPLETED_TTL <= 0 or limit <= 0 then return 0 end
  local idx = k_idx('completed')
  local old = redis.call('ZRANGE', idx, '-inf', string.format('(%d', NOW - COMPLETED_TTL * 1000), 'BYSCORE',
    'LIMIT', 0, limit)
  if #old == 0 then return 0 end
  local dels = {}
  for _, id in ipairs(old) do
    local jk = k_job(id)
    if redis.call('HGET', jk, F_STATE) == 'completed' then
      dels[#dels + 1] = jk
      dels[#dels + 1] = k_logs(id)
    end
  end
  for i = 1, #dels, 1000 do redis.call('DEL', unpack(dels, i, math.min(i + 999, #dels))) end
  call_many('ZREM', idx, old, 1000)
  return #old
end

-- A job with an idempotency key leaves its outcome in that key when it finishes ("<id>
-- <state> <finished at>", the key's TTL kept; XX: never recreate an expired key), so a repeat
-- within IDEMPOTENCY_TTL_S is answered with the original job even after retention removed it.
local function idem_final(id, ih, state)
  if ih then redis.call('SET', k_idem(ih), id .. ' ' .. state .. ' ' .. NOW_S, 'XX', 'KEEPTTL') end
end

-- Dead-letters a job that is leaving `from` (its stream entry already handled by the caller).
local function dead_letter(id, from, ttype, message, attempts)
  local jk = k_job(id)
  -- The entry id carries the (passed-in) failure time, so purging by age is an XRANGE by id.
  -- Ids only grow: a NOW behind the stream's top id (that of an entry since deleted, too) gets
  -- the next id after it instead (an XADD below the top fails).
  local fields = { 'id', id, 'type', ttype or '', 'error', message, 'attempts', attempts or '0', 'failed_at', NOW_S }
  local dlq_entry = redis.pcall('XADD', k_dlq, NOW_S .. '-*', unpack(fields))
  if type(dlq_entry) == 'table' then dlq_entry = redis.call('XADD', k_dlq, '*', unpack(fields)) end
  redis.call('HSET', jk, F_STATE, 'failed', F_ERROR, message, F_FINISHED_AT, NOW_S, F_UPDATED_AT, NOW_S, F_DLQ_ENTRY, dlq_entry)
  move_idx(id, from, 'failed')
  bump_typed('failed', ttype)
  throughput('failed')
  emit(id, 'failed', ttype)
  idem_final(id, redis.call('HGET', jk, F_IDEM_HASH), 'failed')
  expire_job(id, FAILED_TTL, FAILED_TTL_S)
end

local function cancel_job(id, from, ttype)
  local jk = k_job(id)
  redis.call('HSET', jk, F_STATE, 'cancelled', F_FINISHED_AT, NOW_S, F_UPDATED_AT, NOW_S)
  redis.call('HDEL', jk, F_CANCEL_REQUESTED)
  move_idx(id, from, 'cancelled')
  bump_typed('cancelled', ttype)
  emit(id, 'cancelled', ttype)
  idem_final(id, redis.call('HGET', jk, F_IDEM_HASH), 'cancelled')
  expire_job(id, COMPLETED_TTL, COMPLETED_TTL_S)
end

-- Back to the ready stream (hand-back, reclaim, retry from the DLQ). Bumping the epoch fences
-- out whoever held the job before.
local function requeue(id, from, prio, ttype, event)
  local entry = push_ready(id, prio)
  redis.call('HINCRBY', k_job(id), F_EPOCH, 1)
  redis.call('HSET', k_job(id), F_STATE, 'queued', F_ENTRY, entry, F_UPDATED_AT, NOW_S, F_QUEUED_AT, NOW_S)
  move_idx(id, from, 'queued')
  emit(id, event or 'queued', ttype)
  return entry
end

-- Records finished jobs (active -> completed), fenced: a job is completed only if it is still
-- active under the caller's epoch; a stale owner's write (reclaimed, handed back or cancelled
-- since) is rejected and counted, never applied. ARGV[at] = n, then n quadruples
-- (id, epoch, result JSON, idempotency key hash or ''): the owner passes the key's hash of a
-- keyed job (it has the job), so the hot HMGET below never looks for a field most jobs lack
-- (a missing field costs a scan of the whole hash). Returns per job 1 (completed), 2 (cancelled: a cancel had been
-- requested) or 0 (stale).
-- A completed job is kept COMPLETED_RETENTION_S through the completed index (no TTL), or
-- deleted at once when that is 0.
local function complete_jobs(at)
  local n = arg_int(at, 0, 100000, 'number of finished jobs')
  local out = {}
  -- First, so a stale index entry of a reused id is gone before the id completes again.
  if n > 0 then prune_completed(2 * n) end
  for j = 1, n do
    local i = at + 1 + (j - 1) * 4
    local id, epoch, result, ih = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
    local jk = k_job(id)
    local h = redis.call('HMGET', jk, F_STATE, F_EPOCH, F_ENTRY, F_PRIORITY, F_TASK_TYPE, F_STARTED_AT,
      F_CANCEL_REQUESTED)
    if h[1] ~= 'active' or h[2] ~= epoch then
      bump('stale_writes')
      out[j] = 0
    elseif h[7] == '1' then
      -- A cancel request is final: the job ends cancelled whatever its handler did after it
      -- (the result it returned is kept on the job).
      ack(h[4], h[3])
      redis.call('HSET', jk, F_RESULT, result)
      observe('run', NOW - (tonumber(h[6]) or NOW))
      cancel_job(id, 'active', h[5])
      out[j] = 2
    else
      ack(h[4], h[3])
      -- No updated_at on the hot transitions: readers take the latest of the job's times.
      redis.call('HSET', jk, F_STATE, 'completed', F_RESULT, result, F_FINISHED_AT, NOW_S)
      if ih ~= '' then idem_final(id, ih, 'completed') end
      if COMPLETED_TTL > 0 then
        move_idx(id, 'active', 'completed')
      else
        redis.call('DEL', jk, k_logs(id))
      end
      bump_typed('completed', h[5])
      observe('run', NOW - (tonumber(h[6]) or NOW))
      throughput('completed')
      emit(id, 'completed', h[5])
      out[j] = 1
    end
  end
  return out
end

-- Reads up to `want` ready jobs for `consumer`, high priority first, and starts them
-- (queued -> active) in the same step, so a delivered entry always has an active job with a
-- fresh epoch (the fencing token of this delivery). Returns {jobs, tails}: jobs is one JSON
-- array per started job (its hash's field/value pairs as stored, then the pairs the start
-- changed and the id); tails, when fewer than `want` were found, is the last entry id of
-- each priority stream ('0-0' if empty): XREAD BLOCK from there wakes on the next job.
local function read_group(s, consumer, n)
  local ok = redis.pcall('XREADGROUP', 'GROUP', GROUP, consumer, 'COUNT', n, 'STREAMS', s, '>')
  if type(ok) == 'table' and ok.err then
    -- NOGROUP: the group (or stream) does not exist yet; the group starts at 0 so no entry is skipped.
    redis.call('XGROUP', 'CREATE', s, GROUP, '0', 'MKSTREAM')
    ok = redis.call('XREADGROUP', 'GROUP', GROUP, consumer, 'COUNT', n, 'STREAMS', s, '>')
  end
  if not ok then return {} end
  return ok[1][2]
end

local function deliver_jobs(consumer, want)
  local jobs = {}
  for _, prio in ipairs(PRIORITIES) do
    if want <= 0 then break end
    local s = k_stream(prio)
    for _, e in ipairs(read_group(s, consumer, want)) do
      local entry, fields = e[1], e[2]
      local id = fields[2]
      local jk = k_job(id)
      -- The whole hash, flat (a waiting job holds only the fields that say something: fewer
      -- values cross into Lua than with an HMGET of every field a job may have).
      local h = redis.call('HGETALL', jk)
      -- The few fields this start needs, by a scan (no table built per job).
      local state, jentry, epoch, attempts, ttype, queued_at, created_at, cancel
      for x = 1, #h, 2 do
        local f = h[x]
        if f == F_STATE then state = h[x + 1]
        elseif f == F_ENTRY then jentry = h[x + 1]
        elseif f == F_TASK_TYPE then ttype = h[x + 1]
        elseif f == F_CREATED_AT then created_at = h[x + 1]
        elseif f == F_EPOCH then epoch = h[x + 1]
        elseif f == F_ATTEMPTS then attempts = h[x + 1]
        elseif f == F_QUEUED_AT then queued_at = h[x + 1]
        elseif f == F_CANCEL_REQUESTED then cancel = h[x + 1]
        end
      end
      if state ~= 'queued' or jentry ~= entry then
        -- An entry whose job is gone or has moved on: drop it, and count it.
        ack(prio, entry)
        bump('orphan_entries')
      elseif cancel == '1' then
        -- A cancel request outlives whatever path brought the job back: it never runs again.
        ack(prio, entry)
        cancel_job(id, 'queued', ttype)
      else
        -- One HSET: the new epoch (this delivery's fencing token) and attempt count included.
        epoch = int_s((tonumber(epoch) or 0) + 1)
        attempts = int_s((tonumber(attempts) or 0) + 1)
        redis.call('HSET', jk, F_STATE, 'active', F_WORKER, consumer, F_STARTED_AT, NOW_S, F_EPOCH, epoch,
          F_ATTEMPTS, attempts)
        observe('wait', NOW - (tonumber(queued_at or created_at) or NOW))
        emit(id, 'active', ttype)
        -- The job as stored now: its fields as read, then what this start changed (later pairs
        -- win), packed into one JSON string -- every value returned from a function on its own
        -- costs ~0.5 µs of conversion, cjson packs them in C.
        local n = #h
        h[n + 1], h[n + 2] = F_STATE, 'active'
        h[n + 3], h[n + 4] = F_WORKER, consumer
        h[n + 5], h[n + 6] = F_STARTED_AT, NOW_S
        h[n + 7], h[n + 8] = F_EPOCH, epoch
        h[n + 9], h[n + 10] = F_ATTEMPTS, attempts
        h[n + 11], h[n + 12] = 'id', id
        jobs[#jobs + 1] = cjson.encode(h)
        want = want - 1
      end
    end
  end
  local tails = {}
  if want > 0 then
    for p, prio in ipairs(PRIORITIES) do
      local last = redis.call('XREVRANGE', k_stream(prio), '+', '-', 'COUNT', 1)
      tails[p] = last[1] and last[1][1] or '0-0'
    end
  end
  return { jobs, tails }
end
