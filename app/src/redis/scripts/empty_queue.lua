--[[
  empty_queue: removes up to ARGV[5] of a queue's jobs waiting to run -- queued (undelivered
  entries of the ready streams), scheduled and retrying (the delayed set), held (a limit's
  line, ADR 0022) -- as delete_job
  removes one. A flow member among them is cancelled instead (its flow waits on it; its children
  follow their policies). Running, waiting (flow) and finished jobs are left alone. Call it
  again while `more` is 1: each call is bounded.
  ARGV[5]  most jobs to remove in this call (1-10000)
  Returns  {removed, cancelled, more (1: jobs waiting to run are left)}
  Emits     deleted | cancelled
]]
local limit = arg_int(5, 1, 10000, 'limit')
local removed, cancelled, left = 0, 0, limit

-- The first undelivered entry id of a stream is after the group's last-delivered id.
local function delivered_upto(s)
  local groups = redis.pcall('XINFO', 'GROUPS', s)
  if type(groups) == 'table' and not groups.err then
    for _, g in ipairs(groups) do
      local f = {}
      for i = 1, #g, 2 do f[g[i]] = g[i + 1] end
      if f['name'] == GROUP then return '(' .. f['last-delivered-id'] end
    end
  end
  return '-'
end

local function take(id, h)
  if open_flow_member(h) then
    if h[1] == 'queued' and h[2] then redis.call('XDEL', k_stream(h[3]), h[2]) end
    if h[1] == 'scheduled' or h[1] == 'retrying' then redis.call('ZREM', k_delayed, id) end
    cancel_job(id, h[1], h[4])
    cancelled = cancelled + 1
  else
    remove_job(id, h)
    removed = removed + 1
  end
  left = left - 1
end

local more = 0
for _, prio in ipairs(PRIORITIES) do
  local s = k_stream(prio)
  local from = delivered_upto(s)
  if left > 0 then
    for _, e in ipairs(redis.call('XRANGE', s, from, '+', 'COUNT', left)) do
      local id = e[2][2]
      local h = remove_fields(id)
      if h[1] == 'queued' and h[2] == e[1] then
        take(id, h)
      else
        -- An entry whose job is gone or has moved on: dropped, as deliver would drop it.
        redis.call('XDEL', s, e[1])
        bump('orphan_entries')
        left = left - 1
      end
    end
  end
  if #redis.call('XRANGE', s, from, '+', 'COUNT', 1) > 0 then more = 1 end
end
if left > 0 then
  for _, id in ipairs(redis.call('ZRANGE', k_delayed, 0, left - 1)) do
    local h = remove_fields(id)
    if h[1] == 'scheduled' or h[1] == 'retrying' then
      take(id, h)
    else
      redis.call('ZREM', k_delayed, id)
      bump('orphan_delayed')
      left = left - 1
    end
  end
end
if redis.call('ZCARD', k_delayed) > 0 then more = 1 end
-- Held by a concurrency or per-key limit (ADR 0022): waiting to run too.
if left > 0 then
  for _, id in ipairs(redis.call('ZRANGE', k_idx('held'), 0, left - 1)) do
    local h = remove_fields(id)
    if h[1] == 'held' then take(id, h) else
      redis.call('ZREM', k_idx('held'), id)
      left = left - 1
    end
  end
end
if redis.call('ZCARD', k_idx('held')) > 0 then more = 1 end
return { removed, cancelled, more }
