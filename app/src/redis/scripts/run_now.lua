--[[
  run_now: a scheduled or retrying job becomes ready now -- scheduled|retrying -> queued (the
  one-job form of promote; the ZREM decides, so it races safely with the scheduler).
  ARGV[5]  id
  Returns  'queued' | 'cancelled' (a cancel had been requested) | 'not_found' | 'state:<state>'
  Emits     queued | cancelled
]]
local id = ARGV[5]
if not id or id == '' then refuse('id is required') end
local jk = k_job(id)
local h = redis.call('HMGET', jk, F_STATE, F_PRIORITY, F_TASK_TYPE, F_CANCEL_REQUESTED)
if not h[1] then return 'not_found' end
if h[1] ~= 'scheduled' and h[1] ~= 'retrying' then return 'state:' .. h[1] end
if redis.call('ZREM', k_delayed, id) == 0 then return 'state:' .. h[1] end
if h[4] == '1' then
  cancel_job(id, h[1], h[3])
  return 'cancelled'
end
local entry = push_ready(id, h[2])
redis.call('HSET', jk, F_STATE, 'queued', F_ENTRY, entry, F_RUN_AT, NOW_S, F_UPDATED_AT, NOW_S, F_QUEUED_AT, NOW_S)
move_idx(id, h[1], 'queued')
emit(id, 'queued', h[3])
return 'queued'
