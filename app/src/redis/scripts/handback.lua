--[[
  handback: a stopping worker returns jobs it could not finish -- active -> queued at once
  (no wait for the claim-idle window). Fenced: only jobs still held under the caller's epoch.
  ARGV[5]   number of jobs n
  ARGV[6..] n pairs: id, epoch
  Returns   per job: 1 handed back, 0 no longer owned
  Emits     handed_back | cancelled
]]
local n = arg_int(5, 0, 100000, 'number of jobs', 2)
local out = {}
for j = 1, n do
  local id, epoch = ARGV[4 + 2 * j], ARGV[5 + 2 * j]
  local h = redis.call('HMGET', k_job(id), F_STATE, F_EPOCH, F_ENTRY, F_PRIORITY, F_TASK_TYPE, F_CANCEL_REQUESTED)
  if h[1] ~= 'active' or h[2] ~= epoch then
    bump('stale_writes')
    out[j] = 0
  else
    ack(h[4], h[3])
    if h[6] == '1' then
      redis.call('HINCRBY', k_job(id), F_EPOCH, 1)
      cancel_job(id, 'active', h[5])
    else
      requeue(id, 'active', h[4], h[5], 'handed_back')
    end
    out[j] = 1
  end
end
return out
