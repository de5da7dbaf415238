--[[
  alert_write: one alert transition (ADR 0025), fenced and compare-and-set, with the
  notification and the history entry it makes -- all or nothing, so a transition notifies
  exactly once however many evaluators race and whichever of them dies part-way.
  KEYS[1]  the alerts base key "<prefix>:{:alerts}" (not a queue: every key below derives from it)
  ARGV[5]  token of the caller's alerts lease ('' = an operator's write: no lease check)
  ARGV[6]  suffix of the hash the value lives in (':state', ':meta')
  ARGV[7]  field
  ARGV[8]  the value the caller read ('' = absent)
  ARGV[9]  the new value ('' = delete the field; a deleted ':state' field's ack goes with it)
  ARGV[10] notification for the outbox, JSON ('' = none)
  ARGV[11] history entry, JSON ('' = none)
  ARGV[12] approximate max length of the outbox
  ARGV[13] approximate max length of the history
  Returns  1 written; 0 the value had changed (nothing written); -1 the caller does not hold
           the lease (nothing written)
  Emits    nothing (the outbox and the history are the alerts' own streams)
]]
local token, suffix, field = ARGV[5], ARGV[6], ARGV[7]
if suffix ~= ':state' and suffix ~= ':meta' then refuse('suffix must be :state or :meta') end
if field == '' then refuse('field is empty') end
local outbox_max = arg_int(12, 10, 1000000, 'outbox max length')
local history_max = arg_int(13, 10, 1000000, 'history max length')
if token ~= '' and redis.call('GET', base .. ':leader') ~= token then return -1 end
local key = base .. suffix
local cur = redis.call('HGET', key, field) or ''
if cur ~= ARGV[8] then return 0 end
if ARGV[9] == '' then
  redis.call('HDEL', key, field)
  if suffix == ':state' then redis.call('HDEL', base .. ':acks', field) end
else
  redis.call('HSET', key, field, ARGV[9])
end
if ARGV[10] ~= '' then
  redis.call('XADD', base .. ':outbox', 'MAXLEN', '~', outbox_max, '*', 'n', ARGV[10])
end
if ARGV[11] ~= '' then
  redis.call('XADD', base .. ':history', 'MAXLEN', '~', history_max, '*', 'h', ARGV[11])
end
return 1
