--[[
  heartbeat: renews the leases of a worker's running jobs. For each job still active under
  the caller's epoch and owned by the caller, XCLAIM ... JUSTID resets the entry's idle time
  (without raising its delivery count), so XAUTOCLAIM leaves it alone.
  ARGV[5]   consumer
  ARGV[6]   number of jobs n
  ARGV[7..] n pairs: id, epoch
  Returns   per job: 1 renewed, 2 renewed but a cancel was requested, 0 lease lost
]]
local consumer, n = ARGV[5], tonumber(ARGV[6])
local out = {}
for j = 1, n do
  local id, epoch = ARGV[5 + 2 * j], ARGV[6 + 2 * j]
  local h = redis.call('HMGET', k_job(id), F_STATE, F_EPOCH, F_WORKER, F_ENTRY, F_PRIORITY, F_CANCEL_REQUESTED)
  if h[1] == 'active' and h[2] == epoch and h[3] == consumer then
    redis.call('XCLAIM', k_stream(h[5]), GROUP, consumer, 0, h[4], 'JUSTID')
    out[j] = (h[6] == '1') and 2 or 1
  else
    out[j] = 0
  end
end
return out
