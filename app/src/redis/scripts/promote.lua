--[[
  promote: moves due jobs from the delayed zset to their ready stream -- scheduled|retrying
  -> queued. Safe with any number of schedulers: the ZREM decides who moves a job.
  ARGV[5]  max jobs to move
  Returns  {moved, next due ms or -1}
  Emits     queued; cancelled (a cancel had been requested, or a start deadline passed: the
           sweep of the deadlines set, expire_due)
]]
local limit = arg_int(5, 1, 100000, 'limit')
local due = redis.call('ZRANGE', k_delayed, '-inf', NOW_S, 'BYSCORE', 'LIMIT', 0, limit)
local moved = 0
for _, id in ipairs(due) do
  if redis.call('ZREM', k_delayed, id) == 1 then
    local h = redis.call('HMGET', k_job(id), F_STATE, F_PRIORITY, F_TASK_TYPE, F_CANCEL_REQUESTED)
    if (h[1] == 'scheduled' or h[1] == 'retrying') and h[4] == '1' then
      cancel_job(id, h[1], h[3])
    elseif h[1] == 'scheduled' or h[1] == 'retrying' then
      local entry = push_ready(id, h[2])
      redis.call('HSET', k_job(id), F_STATE, 'queued', F_ENTRY, entry, F_UPDATED_AT, NOW_S, F_QUEUED_AT, NOW_S)
      move_idx(id, h[1], 'queued')
      emit(id, 'queued', h[3])
      moved = moved + 1
    else
      bump('orphan_delayed')
    end
  end
end
expire_due(limit) -- deadlines passed (ADR 0021)
local nxt = redis.call('ZRANGE', k_delayed, 0, 0, 'WITHSCORES')
return { moved, nxt[2] and tonumber(nxt[2]) or -1 }
