-- READ-ONLY: writes nothing (READ_ONLY_SCRIPTS in scripts.ts: flag no-writes).
-- A queue's completed and failed counts per minute (the tp:<minute> buckets), so the chart over
-- many queues is one pipelined round trip.
-- ARGV[5] the first minute (ms / 60000), ARGV[6] how many minutes.
-- Returns flat { completed, failed } per minute, oldest first (0 where no bucket).
local from, n = tonumber(ARGV[5]), tonumber(ARGV[6])
local out = {}
for m = from, from + n - 1 do
  local h = redis.call('HMGET', base .. K_TP .. string.format('%d', m), 'completed', 'failed')
  out[#out + 1] = tonumber(h[1]) or 0
  out[#out + 1] = tonumber(h[2]) or 0
end
return out
