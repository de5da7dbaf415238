--[[
  repair: dead-letters jobs left `active` whose stream entry is no longer pending -- deleted or
  trimmed behind DTQ's back while their owner was gone (XAUTOCLAIM reported the entry as
  deleted, so nobody else will ever take the job back). An active job's entry is pending by
  construction (deliver makes both true in one step), so such a job can only be lost.
  ARGV[5]   number of ids n
  ARGV[6..] n ids (candidates: the caller scans the queue's job keys)
  ARGV[6+n] optional: the `repair_due` count the caller read before its scan; given once the
            scan is over, it clears the queue's trigger unless a reclaim has added to it since
            (reclaim.lua: a report made during the scan is repaired at the next pass)
  Returns   how many it dead-lettered
  Emits     failed
]]
local n = arg_int(5, 0, 100000, 'number of ids')
if #ARGV ~= 5 + n and #ARGV ~= 6 + n then
  refuse('number of ids is ' .. n .. ' but ' .. (#ARGV - 5) .. ' values follow')
end
if #ARGV == 6 + n then arg_int(6 + n, 1, 1e15, 'repair_due') end
local repaired = 0
for j = 1, n do
  local id = ARGV[5 + j]
  local h = redis.call('HMGET', k_job(id), F_STATE, F_ENTRY, F_PRIORITY, F_TASK_TYPE, F_ATTEMPTS)
  if h[1] == 'active' and h[2] then
    local pel = redis.pcall('XPENDING', k_stream(h[3]), GROUP, h[2], h[2], 1)
    if type(pel) ~= 'table' or pel.err or #pel == 0 then
      redis.call('HINCRBY', k_job(id), F_EPOCH, 1) -- fences out any run still going
      dead_letter(id, 'active', h[4], 'lost: its stream entry was deleted outside DTQ', h[5], 'LostEntry')
      repaired = repaired + 1
    end
  end
end
local due = ARGV[6 + n]
if due ~= nil and redis.call('HGET', k_meta(), 'repair_due') == due then
  redis.call('HDEL', k_meta(), 'repair_due')
end
return repaired
