--[[
  complete: records the results of finished jobs (batched) -- active -> completed.
  Fenced: a job is completed only if it is still active under the caller's epoch; a stale
  owner's write (the job was reclaimed, handed back or cancelled since) is rejected and
  counted, never applied.
  ARGV[5]   number of jobs n
  ARGV[6..] n triples: id, epoch, result JSON
  Returns   per job: 1 completed, 0 rejected (stale)
]]
local n = tonumber(ARGV[5])
local out = {}
for j = 1, n do
  local i = 6 + (j - 1) * 3
  local id, epoch, result = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local jk = k_job(id)
  local h = redis.call('HMGET', jk, 'state', 'epoch', 'entry', 'priority', 'task_type', 'started_at', 'cancel_requested')
  if h[1] ~= 'active' or h[2] ~= epoch then
    bump('stale_writes')
    out[j] = 0
  else
    ack(h[4], h[3])
    redis.call('HSET', jk, 'state', 'completed', 'result', result, 'finished_at', NOW, 'updated_at', NOW)
    if h[7] then redis.call('HDEL', jk, 'cancel_requested') end
    move_idx(id, 'active', 'completed')
    bump_typed('completed', h[5])
    observe('run', NOW - (tonumber(h[6]) or NOW))
    throughput('completed')
    emit(id, 'completed', h[5])
    expire_job(id, COMPLETED_TTL)
    out[j] = 1
  end
end
return out
