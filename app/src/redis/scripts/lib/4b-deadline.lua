--[[
  Part 4b of the prelude: deadlines (docs/decisions/0021). A job added with a start deadline
  carries F_START_BY (ms since the epoch) and is in the queue's `deadlines` zset (score: the
  deadline). A start after it never happens: the delivery that finds it late ends the job
  `cancelled`, its error "expired: not started by <time>" and F_EXPIRED set, without counting
  an attempt; the promote call's sweep (expire_due) ends those still waiting, queued,
  scheduled or retrying once the deadline passes, so they do not linger until a worker reads them.
]]
-- ms since the epoch -> "YYYY-MM-DDTHH:MM:SS.mmmZ" (no os.date in Redis's Lua): days to a civil
-- date by Howard Hinnant's algorithm.
local function iso_time(ms)
  local s = math.floor(ms / 1000)
  local days = math.floor(s / 86400)
  local sod = s - days * 86400
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400 + (m <= 2 and 1 or 0)
  return string.format('%04d-%02d-%02dT%02d:%02d:%02d.%03dZ', y, m, d, math.floor(sod / 3600),
    math.floor(sod % 3600 / 60), sod % 60, ms % 1000)
end

local function k_deadlines() return base .. K_DEADLINES end

-- Ends a job that was not started by its deadline `start_by` (a string, as stored): it is
-- leaving `from` (its entry or delayed member already removed by the caller). The reason is
-- written before cancel_job, which may delete the hash (a retention of 0).
local function expire_unstarted(id, from, ttype, start_by)
  redis.call('HSET', k_job(id), F_ERROR, 'expired: not started by ' .. iso_time(tonumber(start_by)), F_EXPIRED, '1')
  bump_typed('expired', ttype)
  cancel_job(id, from, ttype)
end

-- The promote call's sweep: up to `limit` deadlines passed; a job still waiting to start (waiting,
-- held, queued, scheduled, retrying) ends
-- expired, any other (running, ended, gone) just leaves the set -- a later start (a retry, a
-- snooze) is checked at its delivery.
local function expire_due(limit)
  local k = k_deadlines()
  local due = redis.call('ZRANGE', k, '-inf', '(' .. NOW_S, 'BYSCORE', 'LIMIT', 0, limit)
  if #due == 0 then return 0 end
  call_many('ZREM', k, due, 1000)
  local n = 0
  for _, id in ipairs(due) do
    local h = redis.call('HMGET', k_job(id), F_STATE, F_ENTRY, F_PRIORITY, F_TASK_TYPE, F_START_BY, F_CREATED_AT)
    local st, sb = h[1], tonumber(h[5])
    if sb and sb < NOW then
      if st == 'queued' then
        redis.call('XDEL', k_stream(h[3]), entry_of(h[2], h[6]))
      elseif st == 'scheduled' or st == 'retrying' then
        redis.call('ZREM', k_delayed, id)
      elseif st ~= 'waiting' and st ~= 'held' then
        -- (held: parked by flow control's limits, in no stream or set -- like waiting)
        st = nil
      end
      if st then
        expire_unstarted(id, st, h[4], h[5])
        n = n + 1
      end
    end
  end
  return n
end

-- enqueue: a job with a deadline is entered in the deadlines set.
local function deadline_created(kv, id)
  if not kv then return end
  for x = 1, #kv, 2 do
    if kv[x] == F_START_BY then redis.call('ZADD', k_deadlines(), kv[x + 1], id) end
  end
end

-- enqueue's check of the flow-control fields among a job's extra fields: a reason, or nil.
local function flow_control_bad(k, v)
  if k == F_DEDUP and not dedup_parse(v) then
    return 'dedup must be "<unique|throttle|debounce> <ttl_ms> <hash>" (ttl_ms from 1, 0 for unique, to a year)'
  end
  if k == F_START_BY and (#v > 15 or not string.find(v, '^[1-9]%d*$')) then
    return 'start_by must be ms since the epoch'
  end
end
