--[[
  progress: a running job reports progress and/or a log line. Fenced like complete.
  ARGV[5]  id
  ARGV[6]  epoch
  ARGV[7]  progress ('' to leave unchanged)
  ARGV[8]  log line ('' for none)
  ARGV[9]  log lines kept
  Returns  1 written, 0 the caller no longer owns the job
  Emits     progress (a log line emits nothing)
]]
local id, epoch, progress, line = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local keep = arg_int(9, 1, 100000, 'log lines kept')
if progress ~= '' then
  local p = tonumber(progress)
  if not p or p ~= p or p == math.huge or p == -math.huge then refuse('progress must be a finite number') end
end
local h = redis.call('HMGET', k_job(id), F_STATE, F_EPOCH, F_TASK_TYPE)
if h[1] ~= 'active' or h[2] ~= epoch then
  bump('stale_writes')
  return 0
end
if progress ~= '' then
  redis.call('HSET', k_job(id), F_PROGRESS, progress, F_UPDATED_AT, NOW_S)
  emit(id, 'progress', h[3])
end
if line ~= '' then
  -- 'logs' on the job tells complete there is a logs key to expire along with it.
  if redis.call('RPUSH', k_logs(id), line) == 1 then redis.call('HSET', k_job(id), F_LOGS, '1') end
  redis.call('LTRIM', k_logs(id), -keep, -1)
end
return 1
