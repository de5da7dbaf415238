-- READ-ONLY: writes nothing (READ_ONLY_SCRIPTS in scripts.ts: flag no-writes).
-- A queue's history for the charts (GET /stats/history), aggregated here so a 24-hour read is one
-- call per queue: completed and failed per interval from the per-minute throughput buckets
-- (tp:<minute>, kept 25 hours), and the run/wait histogram snapshot in force at each interval
-- boundary (history_snapshot: the newest at or before it).
-- ARGV[5]  the first interval's first minute (ms / 60000); ARGV[6] minutes per interval (1..60);
-- ARGV[7]  intervals (1..1440)
-- ARGV[8]  a task type ('' = none): its completed and failed totals at each boundary's snapshot
--          too (ts:<minute>, ADR 0032)
-- Returns { throughput flat (completed, failed) per interval, snapshots: one per boundary
-- (intervals + 1 of them), each the snapshot string or '' when there is none, and with a task
-- type: flat (completed, failed) totals per boundary, -1 where there is no snapshot }.
local from = arg_int(5, 0, 1e12, 'from minute')
local step = arg_int(6, 1, 60, 'step')
local n = arg_int(7, 1, 1440, 'intervals')
local tp = {}
for k = 0, n - 1 do
  local c, f = 0, 0
  for m = from + k * step, from + (k + 1) * step - 1 do
    local h = redis.call('HMGET', base .. K_TP .. string.format('%d', m), 'completed', 'failed')
    c = c + (tonumber(h[1]) or 0)
    f = f + (tonumber(h[2]) or 0)
  end
  tp[#tp + 1], tp[#tp + 2] = c, f
end
local ttype = ARGV[8] or ''
local snaps, typed = {}, {}
local idx = base .. K_HSI
for k = 0, n do
  local at = redis.call('ZREVRANGEBYSCORE', idx, string.format('%d', from + k * step), '-inf', 'LIMIT', 0, 1)[1]
  snaps[#snaps + 1] = at and (redis.call('GET', base .. K_HS .. at) or '') or ''
  if ttype ~= '' then
    if at then
      local h = redis.call('HMGET', base .. K_TS .. at, 'completed|' .. ttype, 'failed|' .. ttype)
      typed[#typed + 1], typed[#typed + 2] = tonumber(h[1]) or 0, tonumber(h[2]) or 0
    else
      typed[#typed + 1], typed[#typed + 2] = -1, -1
    end
  end
end
return { tp, snaps, typed }
