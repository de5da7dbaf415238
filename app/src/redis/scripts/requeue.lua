--[[
  requeue: runs a failed (dead-lettered) or cancelled job again -- failed|cancelled -> queued.
  The job leaves the DLQ, loses its expiry, and gets a fresh set of retries.
  ARGV[5]   number of jobs n
  ARGV[6..] n ids
  Returns   per job: 'queued', 'not_found', or 'state:<state>' when the state does not allow it
]]
local n = tonumber(ARGV[5])
local out = {}
for j = 1, n do
  local id = ARGV[5 + j]
  local jk = k_job(id)
  local h = redis.call('HMGET', jk, 'state', 'priority', 'task_type', 'dlq_entry')
  if not h[1] then
    out[j] = 'not_found'
  elseif h[1] ~= 'failed' and h[1] ~= 'cancelled' then
    out[j] = 'state:' .. h[1]
  else
    if h[4] then redis.call('XDEL', k_dlq, h[4]) end
    keep_job(id)
    redis.call('HSET', jk, 'failures', 0, 'stalls', 0)
    redis.call('HDEL', jk, 'dlq_entry', 'finished_at', 'cancel_requested', 'result')
    requeue(id, h[1], h[2], h[3], 'requeued')
    bump('requeued')
    out[j] = 'queued'
  end
end
return out
