--[[
  flow_done: marks a flow's record created once every node exists (KEYS[1] = its record), and
  drops the record's copy of each node's job: only a roll-forward of a `creating` flow reads it
  (memory: a record holds every node of its flow).
  Returns  1 when it was creating, 0 otherwise (nothing written)
]]
if redis.call('HGET', base, 'st') ~= 'creating' then return 0 end
local h = redis.call('HGETALL', base)
local slim = {}
for i = 1, #h, 2 do
  if string.sub(h[i], 1, 2) == 'n:' then
    local ok, n = pcall(cjson.decode, h[i + 1])
    if ok and type(n) == 'table' and n.r then
      n.r = nil
      slim[#slim + 1] = h[i]
      slim[#slim + 1] = cjson.encode(n)
    end
  end
end
for i = 1, #slim, 200 do redis.call('HSET', base, unpack(slim, i, math.min(i + 199, #slim))) end
redis.call('HSET', base, 'st', 'created')
return 1
