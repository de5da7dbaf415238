--[[
  Part 2 of the prelude: what a call gathers -- events, index moves, counters, histograms,
  throughput, stream acknowledgements -- and flush(), which writes it all once at the end of
  the call (the registration wrapper calls it after every script body).
]]
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

-- Flow control's hook on every move (defined in 2c-limits.lua: slots released when a job
-- leaves `active` or ends, the breaker told of outcomes); a no-op in a queue without limits.
local fc_moved

local function move_idx(id, from, to)
  if from then idx_op(from, id, false) end
  if to then idx_op(to, id, true) end
  fc_moved(id, from, to)
end

local function bump(field, n)
  incr[field] = (incr[field] or 0) + (n or 1)
end

-- Names with totals of their own in `stats` are capped per queue, so the stats hash cannot grow
-- without bound: task types at 200 (the `types` set), error classes at 50 (the `classes` set:
-- bounded labels already -- errorClass() in app/src/errors.ts gives a code or a name, never a
-- message -- the cap bounds a handler that makes names up). Later ones count as '_other'.
-- KNOWN remembers, for one call, the names already in a set (a call names few: one SISMEMBER
-- each). Kept for the library's life it grew with every queue and type ever seen, and went on
-- vouching for names whose set was deleted with its queue, so the cap no longer counted them.
local capped_name
do
  local KNOWN, KNOWN_CALL = {}, nil
  capped_name = function(set, max, name)
    if KNOWN_CALL ~= incr then KNOWN, KNOWN_CALL = {}, incr end -- incr: the call's own table (setup)
    local memo = base .. set .. ' ' .. name
    if KNOWN[memo] then return name end
    local k = base .. set
    if redis.call('SISMEMBER', k, name) == 0 then
      if redis.call('SCARD', k) >= max then return '_other' end
      redis.call('SADD', k, name)
    end
    KNOWN[memo] = true
    return name
  end
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

-- A count per task type and a second label ("<field>|<type>|<label>", no plain total): jobs
-- created at priority high or low (`cp`; normal ones are the rest of `created|<type>`), failed
-- attempts by error class (`ef`, classes capped at flush), dead letters by priority (`dp`).
-- Gathered under "<type>\0<label>" (neither holds a NUL), named at flush.
local function bump_typed2(field, ttype, label)
  if not ttype or ttype == '' then return end
  local t = typed[field]
  if not t then
    t = {}
    typed[field] = t
  end
  local k = ttype .. '\0' .. label
  t[k] = (t[k] or 0) + 1
end

-- Histogram of durations per queue ("h|<name>|<bucket>", "h|<name>|sum_ms") and, given a task
-- type, per type too ("hr|<type>|<bucket>", "hr|<type>|sum_ms": the run time per type, its
-- types capped like every per-type total). Bucket bounds in ms: BUCKETS_MS, from
-- HISTOGRAM_BUCKETS_MS in app/src/redis/keys.ts. Counted per call by bucket number; the fields
-- are named once, at flush.
local N_BUCKETS = #BUCKETS_MS
local function observe(name, ms, ttype)
  if not ms or ms < 0 then ms = 0 end
  local b = N_BUCKETS + 1
  for i = 1, N_BUCKETS do
    if ms <= BUCKETS_MS[i] then
      b = i
      break
    end
  end
  ms = math.floor(ms)
  for k = 1, (ttype and ttype ~= '') and 2 or 1 do
    local key = k == 1 and name or ('\0' .. ttype)
    local h = hist[key]
    if not h then
      h = { sum = 0 }
      hist[key] = h
    end
    h[b] = (h[b] or 0) + 1
    h.sum = h.sum + ms
  end
end

-- Per-minute throughput bucket (NOW's minute: one per call), kept 25 hours (the 24-hour charts).
local function throughput(field)
  tp_incr[field] = (tp_incr[field] or 0) + 1
end

-- Archiving (docs/decisions/0027, 0031): on in a queue while `<base>:archive:on` exists (the
-- archiver sets it). Read at most once per call, by calls that finish jobs or prune. While it is
-- on, each finishing call's ids go to the archive stream at flush, that entry scored in
-- `<base>:archive:at` by the time its jobs ended (NOW), and the jobs are held until the archiver
-- has written them to PostgreSQL (archive_ack): a completed job by the watermark -- pruning
-- stops below the lowest score of `archive:at` (arch_low), no per-job mark --, a failed or
-- cancelled one by its mark (F_ARCHIVE = its finished_at) and no TTL.
-- ARCHIVE_HOLD is false only in the negative control (DTQ_UNSAFE=no-archive-hold).
local function arch_on()
  if ARCH == nil then ARCH = redis.call('EXISTS', base .. K_ARCHIVE_ON) == 1 end
  return ARCH
end

-- The watermark: when the oldest unarchived end happened (ms), nil when everything is archived.
local function arch_low()
  local r = redis.call('ZRANGE', base .. K_ARCHIVE_AT, 0, 0, 'WITHSCORES')
  return r[2] and tonumber(r[2])
end

-- A failed or cancelled job's HSET (every caller sets F_FINISHED_AT to NOW): with the archive
-- mark when archiving is on (no extra call). The mark is the end's time: archive_ack releases
-- only that end. (A completed job is held by the watermark instead: no mark.)
local function finish_hset(jk, ...)
  if arch_on() then return redis.call('HSET', jk, F_ARCHIVE, NOW_S, ...) end
  return redis.call('HSET', jk, ...)
end

-- A failed or cancelled job lives `ttl` more seconds (0: removed now); its index entry is
-- swept by the janitor. (Completed jobs are removed through their index: prune_completed.)
-- While the queue is archived the expiry waits for the archiver (`release`: arch_release's call).
local function expire_job(id, ttl, ttl_s, release)
  if not release and ARCHIVE_HOLD and arch_on() then return end
  local jk = k_job(id)
  if ttl > 0 then
    redis.call('EXPIRE', jk, ttl_s)
    redis.call('EXPIRE', k_logs(id), ttl_s)
  else
    redis.call('DEL', jk, k_logs(id))
    created_drop({ id })
  end
end

local function keep_job(id)
  redis.call('PERSIST', k_job(id))
  redis.call('PERSIST', k_logs(id))
end

-- Makes a job ready: a fresh entry at the tail of its priority stream. The entry's id carries
-- the caller's clock, '<now>-<seq>' (Redis picks the sequence), so a new job's entry is its
-- created_at and a small number, and its hash stores the number alone (create_job, ADR 0037).
-- A stream whose top is already later than now (a caller with a clock ahead, or a later now
-- already written) takes '*' for the rest of the call: ids always increase whatever the
-- clocks; only the saving is lost. Any other error is raised by the '*' XADD.
local function push_ready(id, prio)
  local s = k_stream(prio)
  if not READY then READY = { NOW_S .. '-*', NOW_S .. '-' } end
  if not READY[s] then
    local e = redis.pcall('XADD', s, READY[1], 'id', id)
    if type(e) == 'string' then return e end
    READY[s] = true
  end
  return redis.call('XADD', s, '*', 'id', id)
end

-- A job's ready-stream entry id from its hash's `en` and `ca` (ADR 0037): stored whole, or as
-- the sequence after its created_at. nil when the job has no entry.
local function entry_of(en, ca)
  if en and ca and not string.find(en, '-', 1, true) then return ca .. '-' .. en end
  return en
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
-- Whether id a >= id b, compared as strings, nothing parsed (ids have no leading zeros): a
-- longer ms part is larger; with ms parts of one length, equal lengths compare character by
-- character; otherwise the ms parts decide where they differ, and the longer seq where they
-- are equal. `bp`: b's "<ms>-" prefix, when the caller has it. (flush() compares every
-- acknowledged id: parsing each with string.match and two tonumber was ~4 % of a fetch call.)
local function id_ge(a, b, bp)
  local da, db = string.find(a, '-', 1, true), string.find(b, '-', 1, true)
  if da ~= db then return da > db end
  if #a == #b then return a >= b end
  if string.find(a, bp or string.sub(b, 1, db), 1, true) == 1 then return #a > #b end
  return a > b
end
local function next_id(id)
  local ms, seq = split_id(id)
  return string.format('%.0f-%.0f', ms, seq + 1)
end

-- Writes what the call gathered: index moves, counters, throughput buckets (kept 25 hours),
-- acks, events.
local function flush()
  if FC_TAT then
    -- Each rate scope's theoretical arrival time, once per call however many jobs it started.
    for k, v in pairs(FC_TAT) do
      redis.call('SET', k, string.format('%.3f', v[1]), 'PX', v[2] * 2 + math.ceil(v[1] - NOW))
    end
  end
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
    for key, n in pairs(t) do
      local z = string.find(key, '\0', 1, true)
      if z then
        local label = string.sub(key, z + 1)
        if field == 'ef' then label = capped_name(K_CLASSES, 50, label) end
        bump(field .. '|' .. capped_name(K_TYPES, 200, string.sub(key, 1, z - 1)) .. '|' .. label, n)
      else
        bump(field .. '|' .. capped_name(K_TYPES, 200, key), n)
      end
    end
  end
  for name, h in pairs(hist) do
    local pre = string.byte(name) == 0 and ('hr|' .. capped_name(K_TYPES, 200, string.sub(name, 2)) .. '|')
      or ('h|' .. name .. '|')
    for b = 1, N_BUCKETS + 1 do
      if h[b] then bump(pre .. b, h[b]) end
    end
    bump(pre .. 'sum_ms', h.sum)
  end
  for field, n in pairs(incr) do redis.call('HINCRBY', k_stats, field, n) end
  local tp_key = base .. K_TP .. math.floor(NOW / 60000)
  for field, n in pairs(tp_incr) do
    if redis.call('HINCRBY', tp_key, field, n) == n then redis.call('EXPIRE', tp_key, 90000) end
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
        if not id_ge(newest, ids[i]) then newest = ids[i] end
      end
      minid = next_id(newest)
    end
    redis.call('XTRIM', s, 'MINID', minid)
    local rest = {}
    local mp = string.sub(minid, 1, string.find(minid, '-', 1, true))
    for _, id in ipairs(ids) do
      if id_ge(id, minid, mp) then rest[#rest + 1] = id end
    end
    if #rest > 0 then call_many('XDEL', s, rest, 1000) end
  end
  -- The events stream is trimmed to about EVENTS_MAX events: an entry of n events trims it to
  -- EVENTS_MAX / n entries (uniform batches keep EVENTS_MAX events; mixed sizes at most ~2x).
  for _, g in ipairs(events) do
    local n = #g - 2
    local jobs = table.concat(g, ' ', 3)
    redis.call('XADD', k_events, 'MAXLEN', '~', math.max(1, math.floor(EVENTS_MAX / n)), '*',
      'job', jobs, 'event', g[1], 'type', g[2])
    -- Finished jobs, for the archiver: never trimmed, each entry deleted when it acknowledges it;
    -- scored by their end in the watermark's set (ADR 0031).
    local ev = g[1]
    if (ev == 'completed' or ev == 'failed' or ev == 'cancelled') and arch_on() then
      redis.call('ZADD', base .. K_ARCHIVE_AT, NOW, redis.call('XADD', base .. K_ARCHIVE, '*', 'job', jobs, 'event', ev))
    end
  end
end
