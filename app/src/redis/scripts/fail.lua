--[[
  fail: records a failed attempt -- active -> retrying | failed (DLQ) | cancelled. Fenced like
  complete.
  ARGV[5]  id
  ARGV[6]  epoch
  ARGV[7]  mode: 'retry' (retry after ARGV[9] ms if retries remain, else DLQ),
           'permanent' (straight to the DLQ), 'cancel' (the job was cancelled while running)
  ARGV[8]  error JSON {message, stack?, worker, at, attempt}
  ARGV[9]  retry delay, ms
  ARGV[10] how many attempt errors to keep on the job
  Returns  'retrying' | 'failed' | 'cancelled', or 'stale' when the caller no longer owns it
]]
local id, epoch, mode, err_json = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local delay, keep = tonumber(ARGV[9]), tonumber(ARGV[10])
local jk = k_job(id)
local h = redis.call('HMGET', jk, F_STATE, F_EPOCH, F_ENTRY, F_PRIORITY, F_TASK_TYPE, F_MAX_RETRIES, F_ERRORS, F_ATTEMPTS,
  F_STARTED_AT)
if h[1] ~= 'active' or h[2] ~= epoch then
  bump('stale_writes')
  return 'stale'
end
ack(h[4], h[3])
local ttype = h[5]
observe('run', NOW - (tonumber(h[9]) or NOW))

if mode == 'cancel' then
  cancel_job(id, 'active', ttype)
  return 'cancelled'
end

local err = cjson.decode(err_json)
local history = h[7] and cjson.decode(h[7]) or {}
history[#history + 1] = err
while #history > keep do table.remove(history, 1) end
local failures = redis.call('HINCRBY', jk, F_FAILURES, 1)
redis.call('HSET', jk, F_ERRORS, cjson.encode(history), F_ERROR, err.message, F_UPDATED_AT, NOW)

if mode == 'retry' and failures <= tonumber(h[6]) then
  local due = NOW + delay
  redis.call('HSET', jk, F_STATE, 'retrying', F_RUN_AT, due)
  redis.call('ZADD', k_delayed, due, id)
  move_idx(id, 'active', 'retrying')
  bump_typed('retried', ttype)
  emit(id, 'retrying', ttype)
  return 'retrying'
end
dead_letter(id, 'active', ttype, err.message, h[8])
return 'failed'
