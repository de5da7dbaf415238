--[[
  reclaim: takes back jobs whose lease lapsed (their worker died or stalled) from one
  priority stream, one XAUTOCLAIM page per call (the caller iterates the cursor).
  Each reclaimed job is fenced (epoch + 1) and then: cancelled if a cancel was requested,
  dead-lettered as poison once it has stalled more than max-deliveries times, else requeued
  at the tail of its stream for immediate redelivery.
  ARGV[5]  consumer doing the reclaim
  ARGV[6]  min idle ms (the crash-detection window)
  ARGV[7]  cursor
  ARGV[8]  page size
  ARGV[9]  priority
  ARGV[10] max deliveries by crash before a job is poison
  Returns  {next cursor, requeued, poisoned, cancelled, lost}; lost counts entries that
           were pending but deleted from the stream (a job lost outside DTQ's scripts: alarm).
           Redis reports a deleted entry once, so the repair it calls for is recorded here, in
           the same step: the queue's meta field `repair_due` counts the reports not yet
           repaired (the janitor reads it, repairs, then clears what it read -- `repair`), and a
           leader that dies before repairing leaves it to the next one.
  Emits     stalled (requeued) | failed (poison) | cancelled
]]
local consumer, min_idle, cursor, page = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local prio = ARGV[9]
local max_deliveries = arg_int(10, 1, 100000, 'max deliveries')
arg_int(6, 0, 1e13, 'min idle')
arg_int(8, 1, 10000, 'page size')
if prio ~= 'high' and prio ~= 'normal' and prio ~= 'low' then refuse('priority must be high, normal or low') end
local s = k_stream(prio)
local r = redis.pcall('XAUTOCLAIM', s, GROUP, consumer, min_idle, cursor, 'COUNT', page)
if type(r) == 'table' and r.err then return { '0-0', 0, 0, 0, 0 } end

local requeued, poisoned, cancelled = 0, 0, 0
local lost = r[3] and #r[3] or 0
for _, e in ipairs(r[2]) do
  local entry, fields = e[1], e[2]
  if not fields then
    -- Redis < 7 reports a deleted entry inline.
    redis.call('XACK', s, GROUP, entry)
    lost = lost + 1
  else
    local id = fields[2]
    local h = redis.call('HMGET', k_job(id), F_STATE, F_ENTRY, F_TASK_TYPE, F_CANCEL_REQUESTED, F_ATTEMPTS)
    redis.call('XACK', s, GROUP, entry)
    redis.call('XDEL', s, entry)
    if h[1] ~= 'active' or h[2] ~= entry then
      bump('orphan_entries')
    else
      local stalls = redis.call('HINCRBY', k_job(id), F_STALLS, 1)
      bump('stalled')
      if h[4] == '1' then
        redis.call('HINCRBY', k_job(id), F_EPOCH, 1) -- fences the old owner out
        cancel_job(id, 'active', h[3])
        cancelled = cancelled + 1
      elseif stalls > max_deliveries then
        redis.call('HINCRBY', k_job(id), F_EPOCH, 1)
        dead_letter(id, 'active', h[3], 'poison: lease lapsed ' .. stalls .. ' times (worker crashed or stalled)', h[5],
          'Poison')
        poisoned = poisoned + 1
      else
        requeue(id, 'active', prio, h[3], 'stalled') -- bumps the epoch
        requeued = requeued + 1
      end
    end
  end
end
if lost > 0 then
  bump('lost_entries', lost)
  redis.call('HINCRBY', k_meta(), 'repair_due', lost)
end
return { r[1], requeued, poisoned, cancelled, lost }
