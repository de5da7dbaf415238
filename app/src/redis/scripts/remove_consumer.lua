--[[
  remove_consumer: deletes a consumer from the group of every priority stream of the queue,
  but only where it holds no pending entry (XGROUP DELCONSUMER would orphan them for good).
  ARGV[5]  consumer
  Returns  number of streams it was removed from
  Emits     nothing
]]
local consumer = ARGV[5]
local removed = 0
for _, prio in ipairs(PRIORITIES) do
  local s = k_stream(prio)
  local pending = redis.pcall('XPENDING', s, GROUP, '-', '+', 1, consumer)
  if type(pending) == 'table' and not pending.err and #pending == 0 then
    redis.call('XGROUP', 'DELCONSUMER', s, GROUP, consumer)
    removed = removed + 1
  end
end
return removed
