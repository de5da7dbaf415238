--[[
  requeue: runs a failed (dead-lettered) or cancelled job again -- failed|cancelled -> queued.
  The job leaves the DLQ, loses its expiry, and gets a fresh set of retries; a start deadline
  is dropped (an operator's retry of an expired job means: run it now, ADR 0021).
  ARGV[5]   number of jobs n
  ARGV[6..] n ids
  Returns   per job: 'queued', 'not_found', or 'state:<state>' when the state does not allow it
  Emits     requeued
]]
local n = arg_int(5, 0, 100000, 'number of jobs', 1)
local out = {}
for j = 1, n do
  local id = ARGV[5 + j]
  local jk = k_job(id)
  local h = redis.call('HMGET', jk, F_STATE, F_PRIORITY, F_TASK_TYPE, F_DLQ_ENTRY)
  if not h[1] then
    out[j] = 'not_found'
  elseif h[1] ~= 'failed' and h[1] ~= 'cancelled' then
    out[j] = 'state:' .. h[1]
  else
    if h[4] then redis.call('XDEL', k_dlq, h[4]) end
    keep_job(id)
    redis.call('HSET', jk, F_FAILURES, 0, F_STALLS, 0)
    redis.call('HDEL', jk, F_DLQ_ENTRY, F_FINISHED_AT, F_CANCEL_REQUESTED, F_RESULT, F_START_BY, F_EXPIRED)
    requeue(id, h[1], h[2], h[3], 'requeued')
    bump('requeued')
    out[j] = 'queued'
  end
end
return out
