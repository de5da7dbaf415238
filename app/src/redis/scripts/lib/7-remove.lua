--[[
  Part 7 of the prelude: removing a job outright (day-2 operations, docs/decisions/0020) -- the
  `delete_job` and `empty_queue` scripts.
]]
-- The fields remove_job needs, in this order (HMGET).
local REMOVE_FIELDS = { F_STATE, F_ENTRY, F_PRIORITY, F_TASK_TYPE, F_DLQ_ENTRY, F_IDEM_HASH, F_FLOW, F_FLOW_WATCH,
  F_CREATED_AT, F_DEDUP }

-- Job `id` read with REMOVE_FIELDS, its entry id whole (entry_of: a new job stores its sequence).
local function remove_fields(id)
  local h = redis.call('HMGET', k_job(id), unpack(REMOVE_FIELDS))
  h[2] = entry_of(h[2], h[9])
  return h
end

-- Whether a job read by remove_fields is a flow member that has not ended: its flow still
-- waits on it, so it is cancelled (its children follow their policies), never removed silently.
local function open_flow_member(h)
  local st = h[1]
  return (h[7] or h[8]) and st ~= 'completed' and st ~= 'failed' and st ~= 'cancelled'
end

-- Removes job `id` (read by remove_fields as `h`) and every trace of it: its ready-stream
-- entry (a running job's is acknowledged too: it leaves the pending list), its delayed-set
-- member, its DLQ entry, its state index entry, its logs, and its idempotency key and dedup key
-- while they still name it (a repeat of either makes a new job; a unique job's dedup key has no
-- expiry while its job lives, so left behind it would stay for ever). A running job's hash goes with the
-- rest, so its worker's completion, failure, progress and lease renewal all find no active job
-- under their epoch: they are rejected as stale. Emits `deleted`.
local function remove_job(id, h)
  local st, entry, prio, ttype = h[1], h[2], h[3], h[4]
  if st == 'queued' and entry then
    redis.call('XDEL', k_stream(prio), entry)
  elseif st == 'active' and entry then
    ack(prio, entry)
  elseif st == 'scheduled' or st == 'retrying' then
    redis.call('ZREM', k_delayed, id)
  end
  if h[5] then redis.call('XDEL', k_dlq, h[5]) end
  move_idx(id, st, nil)
  -- Gone for good: every flow-control slot it held goes to the next in line (ADR 0022); its
  -- place in a held list, if any, is skipped when reached.
  fc_moved(id, nil, 'cancelled')
  if h[6] then
    local ik = k_idem(h[6])
    local v = redis.call('GET', ik)
    if v and (v == id or string.sub(v, 1, #id + 1) == id .. ' ') then redis.call('DEL', ik) end
  end
  if h[10] then
    local _, _, hash = dedup_parse(h[10])
    local v = hash and redis.call('GET', k_dd(hash))
    if v and string.match(v, '^%S+') == id then redis.call('DEL', k_dd(hash)) end
  end
  redis.call('SREM', base .. K_FLOW_LATE, id)
  redis.call('DEL', k_job(id), k_logs(id))
  created_drop({ id })
  bump_typed('deleted', ttype)
  emit(id, 'deleted', ttype)
end
