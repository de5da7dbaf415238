--[[
  history_snapshot: records the queue's cumulative run and wait histograms (the stats hash's
  h|run|* and h|wait|* fields) as they are this minute, so latency percentiles over any past
  window are the difference of two snapshots (ADR 0026). Run once a minute per queue by the
  maintenance leader: nothing on the hot path. Written only when the histograms changed since
  the last snapshot, or that one is an hour old (so a window's start always finds one within an
  hour before it); kept 25 hours. Safe to run twice (a second call in a minute changes nothing).
  ARGV[5]  the minute (ms / 60000)
  Keys     <base>:hs:<minute> (string: run buckets, run sum, wait buckets, wait sum, space
           separated), <base>:hsi (zset of the snapshots' minutes), <base>:ts:<minute> (hash:
           completed|<type>, failed|<type> totals; ADR 0032)
  Returns  1 written, 0 not needed
  Emits    nothing
]]
local minute = arg_int(5, 0, 1e12, 'minute')
local KEEP_S, KEEP_MIN, REFRESH_MIN = 90000, 1500, 60
local fields = {}
for _, name in ipairs({ 'run', 'wait' }) do
  for b = 1, #BUCKETS_MS + 1 do fields[#fields + 1] = 'h|' .. name .. '|' .. b end
  fields[#fields + 1] = 'h|' .. name .. '|sum_ms'
end
local vals = redis.call('HMGET', k_stats, unpack(fields))
local any = false
for i = 1, #vals do
  vals[i] = vals[i] or '0'
  if vals[i] ~= '0' then any = true end
end
if not any then return 0 end
local value = table.concat(vals, ' ')
local idx = base .. K_HSI
local last = redis.call('ZREVRANGE', idx, 0, 0, 'WITHSCORES')
if last[1] then
  local at = tonumber(last[2])
  if at >= minute then return 0 end
  if minute - at < REFRESH_MIN and redis.call('GET', base .. K_HS .. last[1]) == value then return 0 end
end
local m = string.format('%d', minute)
redis.call('SET', base .. K_HS .. m, value, 'EX', KEEP_S)
-- Beside it, each task type's completed and failed totals (the charts' task type filter, ADR
-- 0032): at most the 200 types of <base>:types and _other, non-zero ones only.
local types = redis.call('SMEMBERS', base .. K_TYPES)
types[#types + 1] = '_other'
local tf = {}
for _, t in ipairs(types) do
  tf[#tf + 1] = 'completed|' .. t
  tf[#tf + 1] = 'failed|' .. t
end
local tv = redis.call('HMGET', k_stats, unpack(tf))
local pairs_ = {}
for i = 1, #tf do
  if tv[i] and tv[i] ~= '0' then
    pairs_[#pairs_ + 1] = tf[i]
    pairs_[#pairs_ + 1] = tv[i]
  end
end
if #pairs_ > 0 then
  redis.call('HSET', base .. K_TS .. m, unpack(pairs_))
  redis.call('EXPIRE', base .. K_TS .. m, KEEP_S)
end
redis.call('ZADD', idx, minute, m)
redis.call('ZREMRANGEBYSCORE', idx, '-inf', '(' .. string.format('%d', minute - KEEP_MIN))
redis.call('EXPIRE', idx, KEEP_S)
return 1
