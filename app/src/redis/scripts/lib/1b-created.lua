--[[
  Part 1b of the prelude: the created-time index (docs/decisions/0035), opt-in per queue. While
  the queue's meta field `created_index` is set ('building' while created_index's backfill
  runs, then 'on'), every new job is added to `<base>:created` (score: its created_at, member:
  its id) by the call that creates it, and every call that deletes a job hash removes its
  member in the same call. A failed or cancelled job whose hash expires by TTL leaves its
  member behind: listings skip it, created_sweep removes it.
]]
-- CREATED (whether new jobs are indexed) is read at most once per call; enqueue reads it with
-- its registration mark (created_known). CREATED_KEY: whether the index key exists.
local function k_created() return base .. K_CREATED end

-- What enqueue read from meta: the switch's value (nil when off). CREATED_WHILE_BUILDING is
-- false only in the negative control (DTQ_UNSAFE=no-created-building-index).
local function created_known(v)
  CREATED = v == 'on' or (v == 'building' and CREATED_WHILE_BUILDING)
end

local function created_on()
  if CREATED == nil then created_known(redis.call('HGET', k_meta(), 'created_index')) end
  return CREATED
end

-- A new job (created at NOW) joins the index when it is on.
local function created_add(id)
  if created_on() then redis.call('ZADD', k_created(), NOW_S, id) end
end

-- Jobs whose hashes this call deletes leave the index (one ZREM per 1000 ids).
local function created_drop(ids)
  if CREATED_KEY == nil then CREATED_KEY = redis.call('EXISTS', k_created()) == 1 end
  if not CREATED_KEY or #ids == 0 then return end
  for i = 1, #ids, 1000 do redis.call('ZREM', k_created(), unpack(ids, i, math.min(i + 999, #ids))) end
end
