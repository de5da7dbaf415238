--[[
  set_priority: changes the priority of a job that has not started -- waiting, queued,
  scheduled or retrying. A queued job moves to its new priority's stream in the same call: its
  old entry (undelivered: in no pending list) is deleted and a new one added at the tail of the
  new stream, and the job's entry field names the new one.
  ARGV[5]  id
  ARGV[6]  priority: high | normal | low
  Returns  'changed' | 'unchanged' | 'not_found' | 'state:<state>'
  Emits     priority
]]
local id, prio = ARGV[5], ARGV[6]
if not id or id == '' then refuse('id is required') end
if prio ~= 'high' and prio ~= 'normal' and prio ~= 'low' then refuse('priority must be high, normal or low') end
local jk = k_job(id)
local h = redis.call('HMGET', jk, F_STATE, F_PRIORITY, F_ENTRY, F_TASK_TYPE, F_CREATED_AT)
local st, old = h[1], h[2] or 'normal'
if not st then return 'not_found' end
if st ~= 'waiting' and st ~= 'held' and st ~= 'queued' and st ~= 'scheduled' and st ~= 'retrying' then
  return 'state:' .. st
end
if old == prio then return 'unchanged' end
if st == 'queued' then
  if h[3] then redis.call('XDEL', k_stream(old), entry_of(h[3], h[5])) end
  redis.call('HSET', jk, F_ENTRY, push_ready(id, prio))
end
-- 'normal' is not stored (readers default to it).
if prio == 'normal' then
  redis.call('HDEL', jk, F_PRIORITY)
else
  redis.call('HSET', jk, F_PRIORITY, prio)
end
redis.call('HSET', jk, F_UPDATED_AT, NOW_S)
emit(id, 'priority', h[4])
return 'changed'
