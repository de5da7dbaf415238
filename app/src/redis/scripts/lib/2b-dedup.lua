--[[
  Part 2b of the prelude: deduplication beyond caller keys (docs/decisions/0021). A job added
  with `dedup` carries F_DEDUP = "<mode> <ttl_ms> <hash>" (mode unique | throttle | debounce;
  hash: the SHA-256, base64url, of its task type and payload or of the caller's key) and its
  queue's key `dd:<hash>` names the job that holds the place, "<id> <until ms>":
    unique    "<id>" alone while the job lives (no expiry); when it ends (dedup_release),
              until = its creation + ttl_ms (deleted at once if that has passed);
    throttle  until = the first add + ttl_ms (the window);
    debounce  until = the latest add + ttl_ms (each add pushes it and the job's run time).
  The key's `until` is what counts (compared with the call's now: the fleet's time, ADR 0012);
  its Redis expiry (PX, the same duration) only removes it afterwards. A key past its until, or
  whose job no longer exists (removed by retention, deleted), holds nothing: the next add takes
  it. The enqueue function's part is here too, so enqueue.lua only calls it.
]]
local DEDUP_MODES = { unique = true, throttle = true, debounce = true }

local function k_dd(h) return base .. K_DEDUP .. h end

-- The job holding key `hash` now, or nil.
local function dedup_holder(hash)
  local v = redis.call('GET', k_dd(hash))
  if not v then return nil end
  local id, until_ms = string.match(v, '^(%S+) ?(%d*)$')
  if not id or (until_ms ~= '' and tonumber(until_ms) <= NOW) then return nil end
  return id
end

-- Points key `hash` at job `id` until now + ttl_ms.
local function dedup_hold(hash, id, ttl)
  redis.call('SET', k_dd(hash), id .. ' ' .. string.format('%d', NOW + ttl), 'PX', ttl)
end

-- "<mode> <ttl_ms> <hash>" -> mode, ttl (number), hash; nil when malformed.
local function dedup_parse(v)
  local mode, ttl, h = string.match(v, '^(%a+) (%d+) ([A-Za-z0-9_-]+)$')
  if not mode or not DEDUP_MODES[mode] or #h > 64 then return nil end
  ttl = tonumber(ttl)
  if ttl > MAX_DELAY_MS or (ttl < 1 and mode ~= 'unique') then return nil end
  return mode, ttl, h
end

-- An ended unique job lets go of its key: it expires ttl_ms after the job's creation. Only if
-- the key still names this job (a later job may hold it: the earlier one was removed).
local function dedup_release(id)
  local h = redis.call('HMGET', k_job(id), F_DEDUP, F_CREATED_AT)
  if not h[1] then return end
  local mode, ttl, hash = dedup_parse(h[1])
  if mode ~= 'unique' then return end
  local k = k_dd(hash)
  if redis.call('GET', k) ~= id then return end
  local left = (tonumber(h[2]) or NOW) + ttl - NOW
  if left <= 0 then
    redis.call('DEL', k)
  else
    dedup_hold(hash, id, left)
  end
end

-- The dedup spec among a job's extra fields (a flat {k, v, ...} list), or nil.
local function dedup_of(kv)
  if not kv then return nil end
  for x = 1, #kv, 2 do
    if kv[x] == F_DEDUP then return kv[x + 1] end
  end
end

-- enqueue, pass 1 (no writes): a reason when the key, or the job it names, holds a foreign value.
local function dedup_probe(kv)
  local spec = dedup_of(kv)
  if not spec then return nil end
  local _, _, hash = dedup_parse(spec)
  local v = redis.pcall('GET', k_dd(hash))
  if type(v) == 'table' then return 'its dedup key holds a foreign value' end
  local id = v and string.match(v, '^(%S+)')
  if id and type(redis.pcall('HGET', k_job(id), F_STATE)) == 'table' then
    return 'the key of job ' .. id .. ' holds a foreign value'
  end
end

-- enqueue, pass 2: what a new job with extra fields `kv` becomes. Returns the id of the job
-- that answers it and the mode (the job is not created), or nil and the run time to create it
-- with (a debounced job waits at least ttl_ms). A debounce that finds its job still pending
-- (queued or scheduled) gives it this payload and pushes it back to now + ttl_ms.
local function dedup_enqueue(kv, payload, run_at)
  local spec = dedup_of(kv)
  if not spec then return nil, run_at end
  local mode, ttl, hash = dedup_parse(spec)
  local other = dedup_holder(hash)
  local st = other and redis.call('HMGET', k_job(other), F_STATE, F_ENTRY, F_PRIORITY, F_TASK_TYPE, F_CREATED_AT)
  if mode ~= 'debounce' then
    if st and st[1] then return other, mode end
    return nil, run_at
  end
  local due = NOW + ttl
  if not (st and (st[1] == 'scheduled' or st[1] == 'queued')) then return nil, math.max(run_at, due) end
  local jk = k_job(other)
  if st[1] == 'queued' then
    -- Its entry is undelivered (deliver starts what it reads): back to the delayed set.
    redis.call('XDEL', k_stream(st[3]), entry_of(st[2], st[5]))
    redis.call('HDEL', jk, F_ENTRY)
    move_idx(other, 'queued', 'scheduled')
  end
  local due_s = string.format('%d', due)
  redis.call('HSET', jk, F_PAYLOAD, payload, F_STATE, 'scheduled', F_RUN_AT, due_s, F_UPDATED_AT, NOW_S)
  redis.call('ZADD', k_delayed, due_s, other)
  dedup_hold(hash, other, ttl)
  emit(other, 'scheduled', st[4])
  bump('debounced')
  return other, mode
end

-- enqueue, pass 2, after job `id` was created: it takes its dedup key.
local function dedup_created(kv, id)
  local spec = dedup_of(kv)
  if not spec then return end
  local mode, ttl, hash = dedup_parse(spec)
  if mode == 'unique' then
    redis.call('SET', k_dd(hash), id)
  else
    dedup_hold(hash, id, ttl)
  end
end
