--[[
  cancel: waiting, held, queued, scheduled and retrying jobs end cancelled at once; an active job gets a
  cancel request (its worker aborts the handler's signal and records the end).
  ARGV[5]  id
  ARGV[6]  pub/sub channel that tells workers about cancel requests
  ARGV[7]  queue name (in the published message)
  Returns  'cancelled' | 'requested' | 'not_found' | 'state:<state>' when the state does not allow it
  Emits     cancelled | cancel_requested
]]
local id, channel, queue = ARGV[5], ARGV[6], ARGV[7]
local h = redis.call('HMGET', k_job(id), F_STATE, F_ENTRY, F_PRIORITY, F_TASK_TYPE, F_CREATED_AT)
local st = h[1]
if not st then return 'not_found' end
if st == 'queued' then
  -- An entry of a queued job is undelivered (deliver starts what it reads): not in any PEL.
  redis.call('XDEL', k_stream(h[3]), entry_of(h[2], h[5]))
  cancel_job(id, 'queued', h[4])
  return 'cancelled'
elseif st == 'scheduled' or st == 'retrying' then
  redis.call('ZREM', k_delayed, id)
  cancel_job(id, st, h[4])
  return 'cancelled'
elseif st == 'waiting' or st == 'held' then
  -- A held job (flow control) has no entry; its place in the held list is skipped when reached.
  cancel_job(id, st, h[4])
  return 'cancelled'
elseif st == 'active' then
  redis.call('HSET', k_job(id), F_CANCEL_REQUESTED, '1', F_UPDATED_AT, NOW)
  emit(id, 'cancel_requested', h[4])
  redis.call('PUBLISH', channel, queue .. ' ' .. id)
  return 'requested'
end
return 'state:' .. st
