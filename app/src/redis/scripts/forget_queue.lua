--[[
  forget_queue: bounds the queue registry. A queue that holds nothing (no ready, pending,
  delayed, waiting, finished or dead-lettered job, no flow outbox or archive entry) and is not paused is marked empty; once it has been
  empty for ARGV[5] ms its remaining keys (streams with their group, events, stats, types,
  meta, the created-time index with its switch: ADR 0035) are deleted and the caller removes it from the registry. Anything in it clears the mark.
  ARGV[5]  how long a queue must stay empty, ms
  Returns  1 forgotten, 0 kept
  Emits     nothing
]]
local idle_ms = arg_int(5, 0, 1e12, 'idle ms')
local meta_key = k_meta()
local meta = redis.call('HMGET', meta_key, 'paused', 'empty_since')
local empty = meta[1] ~= '1' and redis.call('ZCARD', k_delayed) == 0 and redis.call('XLEN', k_dlq) == 0
  and redis.call('XLEN', base .. K_FLOW_OUT) == 0 and redis.call('XLEN', base .. K_ARCHIVE) == 0
for _, prio in ipairs(PRIORITIES) do
  if empty and redis.call('XLEN', k_stream(prio)) > 0 then empty = false end
end
for _, st in ipairs({ 'waiting', 'scheduled', 'retrying', 'completed', 'failed', 'cancelled' }) do
  if empty and redis.call('ZCARD', k_idx(st)) > 0 then empty = false end
end
if not empty then
  if meta[2] then redis.call('HDEL', meta_key, 'empty_since') end
  return 0
end
if not meta[2] then
  redis.call('HSET', meta_key, 'empty_since', NOW_S)
  return 0
end
if NOW - tonumber(meta[2]) < idle_ms then return 0 end
local dels = { k_events, k_stats, base .. K_TYPES, base .. K_CLASSES, meta_key, base .. K_DEADLINES,
  base .. K_ARCHIVE, base .. K_ARCHIVE_ON, base .. K_ARCHIVE_AT, k_created() }
for _, prio in ipairs(PRIORITIES) do dels[#dels + 1] = k_stream(prio) end
redis.call('DEL', unpack(dels))
return 1
