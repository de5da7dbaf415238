--[[
  created_sweep: removes members of the created-time index (docs/decisions/0035) whose job
  hash is gone -- a failed or cancelled job's hash expires by TTL, which no call sees.
  ARGV[5]  'ids': ARGV[6..] members a listing found without a hash (each checked again here: an
           id used again since has a hash and stays)
           'walk': ARGV[6] how many members to examine, from the rank where the last walk
           stopped (meta `created_sweep`; oldest first, starting again from the oldest once it
           reaches the newest)
  Returns  how many members it removed
  Emits    nothing
]]
local key, meta = k_created(), k_meta()
local function drop_gone(ids)
  local gone = {}
  for _, id in ipairs(ids) do
    if redis.call('EXISTS', k_job(id)) == 0 then gone[#gone + 1] = id end
  end
  if #gone > 0 then redis.call('ZREM', key, unpack(gone)) end
  return #gone
end
if ARGV[5] == 'ids' then return drop_gone({ unpack(ARGV, 6) }) end
if ARGV[5] ~= 'walk' then refuse("mode must be 'ids' or 'walk'") end
local most = arg_int(6, 1, 10000, 'limit')
-- Off (or the queue forgotten): nothing to walk, and meta is not written again.
if not redis.call('HGET', meta, 'created_index') then return 0 end
local rank = tonumber(redis.call('HGET', meta, 'created_sweep')) or 0
local ids = redis.call('ZRANGE', key, rank, rank + most - 1)
local removed = drop_gone(ids)
if #ids < most then
  redis.call('HDEL', meta, 'created_sweep')
else
  redis.call('HSET', meta, 'created_sweep', rank + #ids - removed)
end
return removed
