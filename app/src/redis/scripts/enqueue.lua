--[[
  enqueue: adds jobs (one or many) to a queue.
  ARGV[5]   number of jobs n
  ARGV[6..] n groups of 12 fields:
            id, task_type, payload, priority, max_retries, timeout_ms,
            due (0: now; a negative number -d: d ms after now; else ms since the epoch),
            idem_hash (''), idempotency_key (''), idem_ttl_s, partition_key (''), extra JSON
            hash fields ('' or a flat JSON array [k, v, ...]: trace, backoff)
  Returns   per job {id, 1} for a new job (the caller rebuilds what was stored from what it
            sent and now: storedFields() in app/src/redis/store.ts, kept in step with the HSET
            below), or {id, 0, hash} when the id or the idempotency key already names a live
            job (nothing is written; hash is that job's HGETALL, flat).
  Fails     with DTQ_ID_TAKEN <id>, writing nothing, when an id DTQ generated (all digits: a
            caller's own id never is) names a live job: the id counter is behind the data.
]]
local n = tonumber(ARGV[5])
local out = {}
-- Which ids name a live job, before anything is written.
local taken = {}
for j = 1, n do
  local id = ARGV[6 + (j - 1) * 12]
  taken[j] = redis.call('EXISTS', k_job(id)) == 1
  if taken[j] and string.find(id, '^%d+$') then return redis.error_reply('DTQ_ID_TAKEN ' .. id) end
end
local made = {}
local i = 6
for j = 1, n do
  local id, ttype, payload, prio = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local max_retries, timeout_ms, run_at = ARGV[i + 4], ARGV[i + 5], tonumber(ARGV[i + 6])
  if run_at < 0 then run_at = NOW - run_at end
  local idem_hash, idem_key, idem_ttl = ARGV[i + 7], ARGV[i + 8], ARGV[i + 9]
  local partition, extra = ARGV[i + 10], ARGV[i + 11]
  i = i + 12

  local existing = nil
  if idem_hash ~= '' then
    existing = redis.call('GET', k_idem(idem_hash))
    if existing and redis.call('EXISTS', k_job(existing)) == 0 then existing = nil end
  end
  if not existing and (taken[j] or made[id]) then existing = id end

  if existing then
    out[j] = { existing, 0, redis.call('HGETALL', k_job(existing)) }
  else
    local jk = k_job(id)
    -- One HSET with every field that says something. Not stored (memory per waiting job): the
    -- id (it is in the key), counters that start at 0 (attempts, failures, stalls, epoch; HINCRBY
    -- and the readers treat a missing field as 0), a zero timeout, priority 'normal', and
    -- updated_at / queued_at while they equal created_at (readers fall back to it).
    local f = { F_TASK_TYPE, ttype, F_PAYLOAD, payload, F_MAX_RETRIES, max_retries, F_CREATED_AT, NOW_S }
    local function add(k, v) f[#f + 1] = k; f[#f + 1] = v end
    if prio ~= 'normal' then add(F_PRIORITY, prio) end
    if timeout_ms ~= '0' then add(F_TIMEOUT_MS, timeout_ms) end
    if partition ~= '' then add(F_PARTITION_KEY, partition) end
    if extra ~= '' then
      local kv = cjson.decode(extra)
      for x = 1, #kv, 2 do add(kv[x], kv[x + 1]) end
    end
    if idem_hash ~= '' then
      add(F_IDEMPOTENCY_KEY, idem_key)
      redis.call('SET', k_idem(idem_hash), id, 'EX', idem_ttl)
    end
    local event
    if run_at > NOW then
      add(F_STATE, 'scheduled')
      add(F_RUN_AT, run_at)
      redis.call('ZADD', k_delayed, run_at, id)
      event = 'scheduled'
    else
      add(F_STATE, 'queued')
      add(F_ENTRY, push_ready(id, prio))
      event = 'queued'
    end
    redis.call('HSET', jk, unpack(f))
    move_idx(id, nil, event)
    emit(id, event, ttype)
    bump_typed('created', ttype)
    made[id] = true
    out[j] = { id, 1 }
  end
end
return out
