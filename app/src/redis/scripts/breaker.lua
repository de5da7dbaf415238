--[[
  breaker: an operator's hand on a task type's circuit breaker (ADR 0022).
  ARGV[5]  task type
  ARGV[6]  open | close | reset
  ARGV[7]  for open: how long, ms (0: the breaker's configured cool-down, else 60 s)
  open: its jobs wait (deferred) until then, then one probe runs; close: jobs run again (the
  failure count restarts); reset: the breaker's state is forgotten (closed).
  Returns  the breaker's state after: closed | open
]]
local ttype, action = ARGV[5], ARGV[6]
if ttype == '' then refuse('task type must be given') end
if action ~= 'open' and action ~= 'close' and action ~= 'reset' then refuse('action must be open, close or reset') end
local ms = arg_int(7, 0, 7 * 86400000, 'open for (ms)')
local k = base .. K_FC .. 'cb:' .. ttype
if action ~= 'open' then
  -- Closing also ends a pause (an upstream's 429, or an open without a configured breaker).
  redis.call('HDEL', base .. K_LIMITS, 't:' .. ttype .. ':pause')
  if action == 'reset' then
    redis.call('DEL', k)
  else
    redis.call('HSET', k, 's', 'closed', 'f', '0')
    redis.call('HDEL', k, 'u', 'p')
  end
  return 'closed'
end
if ms == 0 then
  local _, cooldown = fc_breaker_conf(fc_conf(), ttype)
  ms = cooldown or 60000
end
redis.call('HSET', k, 's', 'open', 'u', NOW + ms)
redis.call('HDEL', k, 'p')
-- A breaker only acts in a queue with limits: an opened one makes sure there is a record.
if not fc_conf() or not fc_breaker_conf(fc_conf(), ttype) then
  redis.call('HSET', base .. K_LIMITS, 't:' .. ttype .. ':pause', int_s(NOW + ms))
end
return 'open'
