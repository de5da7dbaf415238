--[[
  register_queue: adds a queue to the registry, unless that would take the registry past its
  limit (MAX_QUEUES). KEYS[1] is the registry set itself, not a queue: one key, so the check and
  the add are one step however many processes add new queues at once.
  ARGV[5]  queue name
  ARGV[6]  the most queues the registry may hold
  Returns  1 when the queue is in the registry after the call (it was, or it was added), 0 when
           it was refused (nothing written)
  Emits     nothing
]]
local key, queue = KEYS[1], ARGV[5]
local max = arg_int(6, 1, 1e9, 'max queues')
if redis.call('SISMEMBER', key, queue) == 1 then return 1 end
if redis.call('SCARD', key) >= max then return 0 end
redis.call('SADD', key, queue)
return 1
