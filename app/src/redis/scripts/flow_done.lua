--[[
  flow_done: marks a flow's record created once every node exists (KEYS[1] = its record).
  Returns  1 when it was creating, 0 otherwise (nothing written)
]]
if redis.call('HGET', base, 'st') ~= 'creating' then return 0 end
redis.call('HSET', base, 'st', 'created')
return 1
