--[[
  pause_type: a handler reported that its upstream refused it (an HTTP 429): its task type is
  paused in this queue until then, and the job waits for it without losing the attempt
  (ADR 0022). Fenced like every owner's write. A job whose cancel was requested while it ran
  ends cancelled (the type's pause still holds: it is what the upstream said).
  ARGV[5]  id
  ARGV[6]  epoch (the caller's delivery)
  ARGV[7]  pause, ms
  ARGV[8]  optional: the delivery's entry id (the fence's other half, as in fail)
  Returns  'paused' | 'cancelled' | 'stale'
  Emits    scheduled | cancelled
]]
local id, epoch = ARGV[5], ARGV[6]
local ms = arg_int(7, 1, 86400000, 'pause (ms)')
local jk = k_job(id)
local h = redis.call('HMGET', jk, F_STATE, F_EPOCH, F_ENTRY, F_PRIORITY, F_TASK_TYPE, F_ATTEMPTS, F_STARTED_AT,
  F_CANCEL_REQUESTED)
local own_entry = ARGV[8]
if h[1] ~= 'active' or h[2] ~= epoch or (own_entry and own_entry ~= '' and h[3] ~= own_entry) then
  bump('stale_writes')
  return 'stale'
end
local ttype, due = h[5], NOW + ms
local lk = base .. K_LIMITS
local field = 't:' .. ttype .. ':pause'
if due > (tonumber(redis.call('HGET', lk, field)) or 0) then redis.call('HSET', lk, field, int_s(due)) end
FC_CONF = nil
ack(h[4], h[3])
observe('run', NOW - (tonumber(h[7]) or NOW), ttype)
if h[8] == '1' then
  cancel_job(id, 'active', ttype)
  return 'cancelled'
end
redis.call('HSET', jk, F_STATE, 'scheduled', F_RUN_AT, due, F_FC_HELD, 'paused', F_UPDATED_AT, NOW_S,
  F_ATTEMPTS, int_s(math.max(0, (tonumber(h[6]) or 1) - 1)))
redis.call('HDEL', jk, F_ENTRY)
redis.call('ZADD', k_delayed, due, id)
move_idx(id, 'active', 'scheduled')
bump_typed('paused', ttype)
emit(id, 'scheduled', ttype)
return 'paused'
