--[[
  Part 6 of the prelude: writing a new job -- shared by enqueue and schedule_fire, so a
  scheduled fire makes a job exactly as an enqueue does.
]]
-- Writes job `id` (checked values only) as waiting (a flow node with parents to finish),
-- scheduled (run_at after NOW) or queued; `more` is a
-- flat list of further hash fields (nil for none). Returns the event it emitted.
-- One HSET with every field that says something. Not stored (memory per waiting job): the
-- id (it is in the key), counters that start at 0 (attempts, failures, stalls, epoch; HINCRBY
-- and the readers treat a missing field as 0), a zero timeout, priority 'normal', max_retries
-- when it is MAX_RETRIES_UNSTORED (3, the default), and updated_at / queued_at while they
-- equal created_at (readers fall back to it); the entry id is stored as its sequence when it
-- starts with created_at (both: ADR 0037, a waiting job's hash in 64 B, not 96).
local function create_job(id, ttype, payload, prio, max_retries, timeout_ms, run_at, partition, more)
  -- (Appended in place, no closure or table per job beyond `f`: this runs once per new job.)
  local f, n = { F_TASK_TYPE, ttype, F_PAYLOAD, payload, F_CREATED_AT, NOW_S }, 6
  if max_retries ~= MAX_RETRIES_UNSTORED_S then f[n + 1], f[n + 2], n = F_MAX_RETRIES, max_retries, n + 2 end
  if prio ~= 'normal' then f[n + 1], f[n + 2], n = F_PRIORITY, prio, n + 2 end
  if timeout_ms ~= '0' then f[n + 1], f[n + 2], n = F_TIMEOUT_MS, timeout_ms, n + 2 end
  if partition ~= '' then f[n + 1], f[n + 2], n = F_PARTITION_KEY, partition, n + 2 end
  -- A flow node with parents still to finish waits (docs/decisions/0019): in no stream or set.
  local waiting = false
  if more then
    for x = 1, #more, 2 do
      f[n + 1], f[n + 2], n = more[x], more[x + 1], n + 2
      if more[x] == F_FLOW_PENDING and more[x + 1] ~= '0' then waiting = true end
    end
  end
  local event
  if waiting then
    f[n + 1], f[n + 2] = F_STATE, 'waiting'
    event = 'waiting'
  elseif run_at > NOW then
    f[n + 1], f[n + 2], f[n + 3], f[n + 4] = F_STATE, 'scheduled', F_RUN_AT, run_at
    redis.call('ZADD', k_delayed, run_at, id)
    event = 'scheduled'
  else
    -- The entry id's sequence alone when it is '<now>-<seq>' (now is created_at here; ADR 0037).
    local e, pfx = push_ready(id, prio), READY[2]
    f[n + 1], f[n + 2] = F_STATE, 'queued'
    f[n + 3], f[n + 4] = F_ENTRY, string.find(e, pfx, 1, true) == 1 and string.sub(e, #pfx + 1) or e
    event = 'queued'
  end
  redis.call('HSET', k_job(id), unpack(f))
  created_add(id)
  -- A queued job has no index (the ready stream is it) and flow control has nothing to do on
  -- its way in: move_idx would do nothing for it.
  if event ~= 'queued' then move_idx(id, nil, event) end
  emit(id, event, ttype)
  bump_typed('created', ttype)
  -- By priority only when not 'normal' (the plain path pays nothing): /metrics derives the
  -- normal count from `created|<type>`.
  if prio ~= 'normal' then bump_typed2('cp', ttype, prio) end
  return event
end
