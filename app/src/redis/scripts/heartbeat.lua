--[[
  heartbeat: renews the leases of a worker's running jobs. For each job still active under
  the caller's epoch and owned by the caller, XCLAIM ... JUSTID resets the entry's idle time
  (without raising its delivery count), so XAUTOCLAIM leaves it alone. XCLAIM answers nothing
  when the entry is no longer in the stream (deleted or trimmed behind DTQ's back): that job
  would stay active for ever, so it is dead-lettered here, with an error that says why.
  ARGV[5]   consumer
  ARGV[6]   number of jobs n
  ARGV[7..] n pairs: id, epoch
  Returns   per job: 1 renewed, 2 renewed but a cancel was requested, 0 lease lost
  Emits     failed (a job whose stream entry is gone); nothing otherwise
]]
local consumer = ARGV[5]
local n = arg_int(6, 0, 100000, 'number of jobs', 2)
local out = {}
for j = 1, n do
  local id, epoch = ARGV[5 + 2 * j], ARGV[6 + 2 * j]
  local h = redis.call('HMGET', k_job(id), F_STATE, F_EPOCH, F_WORKER, F_ENTRY, F_PRIORITY, F_CANCEL_REQUESTED,
    F_TASK_TYPE, F_ATTEMPTS)
  if h[1] == 'active' and h[2] == epoch and h[3] == consumer then
    local claimed = redis.call('XCLAIM', k_stream(h[5]), GROUP, consumer, 0, h[4], 'JUSTID')
    if #claimed == 0 then
      redis.call('HINCRBY', k_job(id), F_EPOCH, 1) -- fences the running handler out
      dead_letter(id, 'active', h[7], 'lost: its stream entry was deleted outside DTQ while it ran', h[8],
        'LostEntry')
      bump('lost_entries')
      out[j] = 0
    else
      out[j] = (h[6] == '1') and 2 or 1
    end
  else
    -- Someone else's delivery now (another epoch or owner) is a stale write; the caller's own
    -- delivery that has just finished (same epoch, no longer active) is not.
    if h[1] == 'active' or (h[2] and h[2] ~= epoch) then bump('stale_writes') end
    out[j] = 0
  end
end
return out
