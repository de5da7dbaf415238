--[[
  lead: the fleet-wide maintenance lease (one worker at a time runs the scheduler, the
  reclaimer and the janitor for every queue). KEYS[1] is the lease key itself, not a queue.
  ARGV[5]  token (the worker id)
  ARGV[6]  ttl ms
  ARGV[7]  'hold' (take it if free, renew it if ours) or 'release' (give it up if ours)
  Returns  1 when the caller holds the lease after the call, else 0
  Emits     nothing
]]
local key, token = KEYS[1], ARGV[5]
local ttl = arg_int(6, 100, 3600000, 'ttl')
local cur = redis.call('GET', key)
if ARGV[7] == 'release' then
  if cur == token then redis.call('DEL', key) end
  return 0
end
if cur == token then
  redis.call('PEXPIRE', key, ttl)
  return 1
end
if not cur then
  redis.call('SET', key, token, 'PX', ttl)
  return 1
end
return 0
