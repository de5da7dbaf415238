-- READ-ONLY: writes nothing (READ_ONLY_SCRIPTS in scripts.ts: flag no-writes).
-- One queue's share of a job or DLQ listing, filtered here so that jobs that do not match never
-- leave Redis (GET /jobs?task_type=, GET /dlq?error=). Walks the queue's sources newest first
-- in the listing's order -- score desc, then job id desc (bytewise) -- from just after a
-- position, reads only the fields its checks need (HMGET), and returns the matching candidates
-- (positions, not hashes: the caller reads the hashes of those that make its page) and the last
-- candidate it examined. Bounded: at most `budget` candidates examined per call; the caller
-- continues after that candidate.
--
-- Sources. jobs: each ready stream (score: the entry's ms; the entries up to the group's
-- last-delivered id are the active jobs, those after it the queued ones) and the index zset of
-- every other state (score: when the job entered it); dlq: the DLQ stream (score: entry ms).
--
-- ARGV[5]  'jobs' | 'jobs_asc' (the same walk oldest first: ascending score, then id -- ADR 0033)
--          | 'dlq' | 'created' | 'created_asc' (the created-time index, ADR 0035)
-- ARGV[6]  want: stop once this many candidates matched
-- ARGV[7]  budget: stop once this many candidates were examined
-- ARGV[8]  position score ('' = from the newest); ARGV[9] position job id; ARGV[10] '1' when a
--          candidate at exactly (score, id) still comes after the position (it is another
--          queue's, and that queue sorts after this one)
-- ARGV[11] task type ('' = any)
-- jobs: ARGV[12] which ready-stream entries: 'all', 'queued' (undelivered), 'active'
--       (delivered) or 'none'; ARGV[13..] the states whose index zsets to walk
-- created: ARGV[12] the states a job must be in, comma-separated ('' = any)
-- dlq:  ARGV[12] lower-cased text the error must contain ('' = any); ARGV[13] failed at or
--       before this ms ('' = any time); ARGV[14] priority ('' = any; a job without one is normal);
--       ARGV[15] error class ('' = any; error_class() of the prelude)
-- Returns { matches, done, last score, last id, examined }: matches flat (score, id, entry,
-- failed_at) -- entry is the ready-stream or DLQ entry id ('' from an index), failed_at the DLQ
-- entry's ('' otherwise); done is 1 when every source is exhausted. created: a sixth element,
-- the members examined whose job hash is gone (expired by TTL): the caller has them removed
-- (created_sweep 'ids'; this function writes nothing).
local kind, want, budget = ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7])
local asc = kind == 'jobs_asc' or kind == 'created_asc'
if kind == 'jobs_asc' then kind = 'jobs' elseif kind == 'created_asc' then kind = 'created' end
local pos_s, pos_id, incl = ARGV[8], ARGV[9], ARGV[10] == '1'
local pos = tonumber(pos_s)
local ttype = ARGV[11]
local streams, needle, max_s = ARGV[12], ARGV[12], ARGV[13]
local max_ms = tonumber(max_s)
local prio_want = ARGV[14] or ''
local class_want = ARGV[15] or ''
local BATCH = 256
local MAX_SEQ = '18446744073709551615'

-- Bytewise order of ids, like Redis's own order of zset ties. Lua's `<` follows the server's
-- collation locale: it is used when that orders the ids' alphabet by bytes (locale C), and a
-- byte loop otherwise.
local BYTES = 'B' < 'a' and '-' < '.' and '.' < '0' and '9' < 'A' and 'Z' < '_' and '_' < 'a'
local function str_lt(a, b)
  if BYTES or a == b then return a < b end
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

-- Whether candidate a comes before b (newer first; older first when asc).
local function first(a, b)
  if asc then
    if a.score ~= b.score then return a.score < b.score end
    return str_lt(a.id, b.id)
  end
  if a.score ~= b.score then return a.score > b.score end
  return str_lt(b.id, a.id)
end

-- Whether a candidate comes after the position (not yet listed).
local function after(c)
  if not pos then return true end
  if asc then
    if c.score > pos then return true end
    if c.score < pos then return false end
    return str_lt(pos_id, c.id) or (incl and c.id == pos_id)
  end
  if c.score < pos then return true end
  if c.score > pos then return false end
  return str_lt(c.id, pos_id) or (incl and c.id == pos_id)
end

local function field(fields, name)
  for i = 1, #fields, 2 do
    if fields[i] == name then return fields[i + 1] end
  end
end

-- A stream's entries between hi and lo (XREVRANGE bounds) as candidates, newest first (XRANGE,
-- oldest first, when asc). Entries
-- of one millisecond share a score and are ordered by job id, so each millisecond is gathered
-- whole before any of it is handed out.
local function stream_source(key, hi, lo, check, dlq)
  local src = { ready = {}, at = 1, check = check }
  local carry, carry_ms, exhausted = {}, nil, false
  local function push_group()
    -- Usually in order already (an enqueue's entries carry rising ids); sorted only if not.
    for i = 2, #carry do
      if first(carry[i], carry[i - 1]) then
        table.sort(carry, first)
        break
      end
    end
    for _, c in ipairs(carry) do
      if after(c) then src.ready[#src.ready + 1] = c end
    end
    carry = {}
  end
  function src.fill()
    while #src.ready < src.at and not exhausted do
      local rows
      if asc then
        rows = redis.call('XRANGE', key, lo, hi, 'COUNT', BATCH)
      else
        rows = redis.call('XREVRANGE', key, hi, lo, 'COUNT', BATCH)
      end
      if #rows < BATCH then exhausted = true end
      for _, row in ipairs(rows) do
        local ms_s = string.match(row[1], '^(%d+)')
        local ms = tonumber(ms_s)
        if carry_ms and ms ~= carry_ms then push_group() end
        carry_ms = ms
        local c = { score = ms, score_s = ms_s, entry = row[1] }
        local fields = row[2]
        if dlq then
          c.id, c.failed_at = field(fields, 'id') or '', field(fields, 'failed_at')
        else
          c.id = fields[2] -- a ready entry is `id <job id>`
        end
        carry[#carry + 1] = c
      end
      if #rows > 0 then
        if asc then lo = '(' .. rows[#rows][1] else hi = '(' .. rows[#rows][1] end
      end
      if exhausted then push_group() end
    end
  end
  return src
end

-- An index zset's members as candidates, newest first (rank order of ZRANGE ... REV).
local function index_source(key, check)
  local src = { ready = {}, at = 1, check = check }
  local rank = 0
  if pos and asc then
    -- Oldest first: past the lower scores, then the members tied at the position's (ascending).
    rank = redis.call('ZCOUNT', key, '-inf', '(' .. pos_s)
    local hi = rank + redis.call('ZCOUNT', key, pos_s, pos_s)
    while rank < hi do
      local mid = math.floor((rank + hi) / 2)
      local m = redis.call('ZRANGE', key, mid, mid)[1]
      if str_lt(pos_id, m) or (incl and m == pos_id) then hi = mid else rank = mid + 1 end
    end
  elseif pos then
    -- First rank after the position: past the higher scores, then a binary search through the
    -- members tied at the position's score (ordered by member, descending).
    rank = redis.call('ZCOUNT', key, '(' .. pos_s, '+inf')
    local hi = rank + redis.call('ZCOUNT', key, pos_s, pos_s)
    while rank < hi do
      local mid = math.floor((rank + hi) / 2)
      local m = redis.call('ZRANGE', key, mid, mid, 'REV')[1]
      if str_lt(m, pos_id) or (incl and m == pos_id) then hi = mid else rank = mid + 1 end
    end
  end
  local exhausted = false
  function src.fill()
    if exhausted then return end
    local rows
    if asc then
      rows = redis.call('ZRANGE', key, rank, rank + BATCH - 1, 'WITHSCORES')
    else
      rows = redis.call('ZRANGE', key, rank, rank + BATCH - 1, 'REV', 'WITHSCORES')
    end
    if #rows < 2 * BATCH then exhausted = true end
    rank = rank + #rows / 2
    for i = 1, #rows, 2 do
      src.ready[#src.ready + 1] = { score = tonumber(rows[i + 1]), score_s = rows[i + 1], id = rows[i] }
    end
  end
  return src
end

-- The highest XREVRANGE bound at or below the position: '<pos>-<max seq>' (or '+').
local function below_pos()
  if pos then return pos_s .. '-' .. MAX_SEQ end
  return '+'
end
-- The lowest XRANGE bound at or above the position: '<pos>-0' (or '-').
local function above_pos()
  if pos then return pos_s .. '-0' end
  return '-'
end
-- The lower of an entry id and a '<ms>-<max seq>' bound (or '+').
local function min_bound(entry, bound)
  if bound == '+' then return entry end
  local bms = tonumber(string.match(bound, '^(%d+)'))
  if tonumber(string.match(entry, '^(%d+)')) <= bms then return entry end
  return bound
end

local function type_ok(t)
  return ttype == '' or t == ttype
end

local sources = {}
local gone = {}
if kind == 'created' then
  local want_state = ARGV[12] ~= '' and (',' .. ARGV[12] .. ',') or nil
  sources[1] = index_source(k_created(), function(c)
    local h = redis.call('HMGET', k_job(c.id), F_STATE, F_TASK_TYPE)
    if not h[1] then
      gone[#gone + 1] = c.id
      return false
    end
    if want_state and not string.find(want_state, ',' .. h[1] .. ',', 1, true) then return false end
    return type_ok(h[2])
  end)
elseif kind == 'dlq' then
  local hi = below_pos()
  if max_ms then hi = min_bound(max_s .. '-' .. MAX_SEQ, hi) end
  sources[1] = stream_source(k_dlq, hi, '-', function(c)
    local h = redis.call('HMGET', k_job(c.id), F_STATE, F_TASK_TYPE, F_ERROR, F_PRIORITY, F_ERROR_CLASS)
    if h[1] ~= 'failed' or not type_ok(h[2]) then return false end
    if prio_want ~= '' and (h[4] or 'normal') ~= prio_want then return false end
    if class_want ~= '' and error_class(h[5], h[3]) ~= class_want then return false end
    if needle ~= '' and not string.find(string.lower(h[3] or ''), needle, 1, true) then return false end
    local fa = tonumber(c.failed_at)
    return not (max_ms and fa and fa > max_ms)
  end, true)
else
  if streams ~= 'none' then
    local function check(c)
      local h = redis.call('HMGET', k_job(c.id), F_STATE, F_TASK_TYPE, F_ENTRY, F_CREATED_AT)
      -- Only an entry that is still its job's (an entry whose job moved on is dropped).
      if entry_of(h[3], h[4]) ~= c.entry or not type_ok(h[2]) then return false end
      if streams == 'all' then return h[1] == 'queued' or h[1] == 'active' end
      return h[1] == streams
    end
    for _, prio in ipairs(PRIORITIES) do
      local s = k_stream(prio)
      local hi, lo = below_pos(), '-'
      if asc then hi, lo = '+', above_pos() end
      if streams ~= 'all' then
        local delivered = '0-0'
        local groups = redis.pcall('XINFO', 'GROUPS', s)
        if not groups.err then
          for _, g in ipairs(groups) do
            if field(g, 'name') == GROUP then delivered = field(g, 'last-delivered-id') end
          end
        end
        if asc then
          -- Oldest first: active = up to the last-delivered id, queued = after it (and from the
          -- position; XRANGE answers nothing when the bounds cross).
          if streams == 'active' then
            hi = delivered ~= '0-0' and delivered or nil
          elseif not pos or tonumber(string.match(delivered, '^(%d+)')) >= pos then
            lo = '(' .. delivered
          end
        elseif streams == 'active' then
          hi = delivered ~= '0-0' and min_bound(delivered, hi) or nil
        else
          lo = '(' .. delivered
        end
      end
      if hi then sources[#sources + 1] = stream_source(s, hi, lo, check) end
    end
  end
  for i = 13, #ARGV do
    local st = ARGV[i]
    sources[#sources + 1] = index_source(k_idx(st), function(c)
      local h = redis.call('HMGET', k_job(c.id), F_STATE, F_TASK_TYPE)
      return h[1] == st and type_ok(h[2])
    end)
  end
end

local function head(src)
  if src.at > #src.ready then
    src.ready, src.at = {}, 1
    src.fill()
  end
  return src.ready[src.at]
end

-- The newest head among the sources; exhausted sources are dropped as they are met.
local function newest()
  local best, from
  local k = 1
  while k <= #sources do
    local c = head(sources[k])
    if not c then
      table.remove(sources, k)
    else
      if not best or first(c, best) then best, from = c, sources[k] end
      k = k + 1
    end
  end
  return best, from
end

local matches, found, examined, last = {}, 0, 0, nil
while found < want and examined < budget do
  local c, from = newest()
  if not c then break end
  from.at = from.at + 1
  examined = examined + 1
  last = c
  if from.check(c) then
    found = found + 1
    local n = #matches
    matches[n + 1], matches[n + 2] = c.score_s, c.id
    matches[n + 3], matches[n + 4] = c.entry or '', c.failed_at or ''
  end
end
local done = newest() and 0 or 1
return { matches, done, last and last.score_s or '', last and last.id or '', examined, gone }
