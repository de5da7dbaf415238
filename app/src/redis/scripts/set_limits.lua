--[[
  set_limits: replaces a queue's flow-control limits (ADR 0022; the fields are listed in
  scripts/lib/2c-limits.lua) and hands out what the change frees: every held list is granted
  up to its set's new limit (all of it when its limit is gone). A type's pause (t:<type>:pause)
  is state, not a limit: kept.
  ARGV[5]   the limits, JSON {field: value, ...} with values "N", "N W" or "F C" (checked by the
            caller; here only their shape)
  Returns   the number of held jobs granted a slot
  Emits     queued
]]
local ok, limits = pcall(cjson.decode, ARGV[5])
if not ok or type(limits) ~= 'table' then refuse('limits must be a JSON object') end
local fields = {}
for k, v in pairs(limits) do
  if type(k) ~= 'string' or type(v) ~= 'string' then refuse('limits are strings by field') end
  local shape = string.match(k, ':pause$') and '^%d+$' or (
    (k == 'conc' or k == 'key' or string.match(k, '^t:.+:conc$')) and '^%d+$' or
    ((k == 'rate' or string.match(k, '^t:.+:rate$') or string.match(k, '^t:.+:cb$')) and '^%d+ %d+$'))
  if not shape then refuse('unknown limit ' .. k) end
  if not string.match(v, shape) then refuse('limit ' .. k .. ' must match ' .. shape) end
  fields[#fields + 1] = k
  fields[#fields + 1] = v
end

local lk = base .. K_LIMITS
local keep = {}
local h = redis.call('HGETALL', lk)
for i = 1, #h, 2 do
  if string.match(h[i], ':pause$') and not limits[h[i]] then
    keep[#keep + 1] = h[i]
    keep[#keep + 1] = h[i + 1]
  end
end
redis.call('DEL', lk)
if #fields > 0 then redis.call('HSET', lk, unpack(fields)) end
if #keep > 0 then redis.call('HSET', lk, unpack(keep)) end
FC_CONF = nil

local before = 0
local lists = redis.call('SMEMBERS', base .. K_FC .. 'lists')
for _, list in ipairs(lists) do before = before + redis.call('LLEN', base .. K_FC .. list) end
for _, list in ipairs(lists) do fc_grant(fc_set_of(list)) end
local after = 0
for _, list in ipairs(lists) do after = after + redis.call('LLEN', base .. K_FC .. list) end
return before - after
