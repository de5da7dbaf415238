--[[
  snooze: a handler puts its job off without using an attempt (docs/decisions/0021) -- active ->
  scheduled. Fenced like fail: only the delivery that holds the job (state active, its epoch).
  The start this delivery counted is taken back (attempts - 1) and the job's snooze count goes
  up; past the limit it is dead-lettered instead. A requested cancel wins.
  ARGV[5]  id
  ARGV[6]  epoch
  ARGV[7]  delay, ms: an integer from 0 to MAX_DELAY_MS
  ARGV[8]  most snoozes a job may take (0: no limit)
  ARGV[9]  optional: the delivery's entry id (the fence's other half, as in fail)
  Returns  'snoozed' | 'failed' (over the limit) | 'cancelled', or 'stale' when the caller no longer owns it
  Emits     scheduled | failed | cancelled
]]
local id, epoch = ARGV[5], ARGV[6]
local delay = arg_int(7, 0, MAX_DELAY_MS, 'snooze delay')
local max = arg_int(8, 0, 1000000, 'most snoozes')
if not string.find(epoch, '^%d+$') then refuse('epoch must be a whole number') end

local jk = k_job(id)
local h = redis.call('HMGET', jk, F_STATE, F_EPOCH, F_ENTRY, F_PRIORITY, F_TASK_TYPE, F_ATTEMPTS, F_STARTED_AT,
  F_CANCEL_REQUESTED, F_SNOOZES)
local own_entry = ARGV[9]
if h[1] ~= 'active' or h[2] ~= epoch or (own_entry and own_entry ~= '' and h[3] ~= own_entry) then
  bump('stale_writes')
  return 'stale'
end
local ttype = h[5]
ack(h[4], h[3])
observe('run', NOW - (tonumber(h[7]) or NOW), ttype)
if h[8] == '1' then
  cancel_job(id, 'active', ttype)
  return 'cancelled'
end
local snoozes = (tonumber(h[9]) or 0) + 1
local attempts = math.max(0, (tonumber(h[6]) or 1) - 1)
if max > 0 and snoozes > max then
  dead_letter(id, 'active', ttype, 'snoozed more than ' .. max .. ' times', h[6], 'SnoozeLimit')
  return 'failed'
end
local due = string.format('%d', NOW + delay)
redis.call('HSET', jk, F_STATE, 'scheduled', F_RUN_AT, due, F_SNOOZES, snoozes, F_ATTEMPTS, attempts,
  F_UPDATED_AT, NOW_S)
redis.call('ZADD', k_delayed, due, id)
move_idx(id, 'active', 'scheduled')
bump_typed('snoozed', ttype)
emit(id, 'scheduled', ttype)
return 'snoozed'
