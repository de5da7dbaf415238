--[[
  fail: records a failed attempt -- active -> retrying | failed (DLQ) | cancelled. Fenced like
  complete. A job whose cancel was requested ends cancelled whatever the mode.
  ARGV[5]  id
  ARGV[6]  epoch
  ARGV[7]  mode: 'retry' (retry after ARGV[9] ms if retries remain, else DLQ),
           'permanent' (straight to the DLQ), 'cancel' (the job was cancelled while running)
  ARGV[8]  error JSON {message, class?, stack?, worker, at, attempt}; class: the error's class
           (errorClass() in app/src/errors.ts; 1 to 64 of [A-Za-z0-9_.:-]; when absent, error_class()
           in lib/8-dlq.lua derives it from the message, as the DLQ's reads do),
           kept on the job (F_ERROR_CLASS) and counted per task type (`ef|<type>|<class>`)
  ARGV[9]  retry delay, ms: an integer from 0 to MAX_DELAY_MS (else the call is refused)
  ARGV[10] how many attempt errors to keep on the job
  ARGV[11] optional: the delivery's entry id -- the fence's other half, as in complete (epochs
           start again at 1 in a job made anew under a deleted one's id; entries never repeat)
  Returns  'retrying' | 'failed' | 'cancelled', or 'stale' when the caller no longer owns it
  Emits     retrying | failed | cancelled
]]
-- Everything is read and checked before the first write.
local id, epoch, mode, err_json = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local delay = arg_int(9, 0, MAX_DELAY_MS, 'retry delay')
local keep = arg_int(10, 1, 1000, 'errors kept')
if mode ~= 'retry' and mode ~= 'permanent' and mode ~= 'cancel' then refuse('mode must be retry, permanent or cancel') end
local parsed, err = pcall(cjson.decode, err_json)
if not parsed or type(err) ~= 'table' or type(err.message) ~= 'string' then refuse('error must be JSON with a message') end
local class = err.class
if class == nil then
  class = error_class(nil, err.message) -- an older worker: "TypeError: x" -> TypeError, else Error
elseif type(class) ~= 'string' or #class > 64 or not string.find(class, '^[%w_.:%-]+$') then
  refuse('error class must be 1 to 64 of [A-Za-z0-9_.:-]')
end

local jk = k_job(id)
local h = redis.call('HMGET', jk, F_STATE, F_EPOCH, F_ENTRY, F_PRIORITY, F_TASK_TYPE, F_MAX_RETRIES, F_ERRORS, F_ATTEMPTS,
  F_STARTED_AT, F_CANCEL_REQUESTED, F_FAILURES)
local own_entry = ARGV[11]
if h[1] ~= 'active' or h[2] ~= epoch or (own_entry and own_entry ~= '' and h[3] ~= own_entry) then
  bump('stale_writes')
  return 'stale'
end
local ttype = h[5]
local history = {}
if h[7] then
  local ok, old = pcall(cjson.decode, h[7])
  if ok and type(old) == 'table' then history = old end
end

ack(h[4], h[3])
observe('run', NOW - (tonumber(h[9]) or NOW), ttype)

if mode == 'cancel' then
  cancel_job(id, 'active', ttype)
  return 'cancelled'
end

history[#history + 1] = err
while #history > keep do table.remove(history, 1) end
local failures = (tonumber(h[11]) or 0) + 1
redis.call('HSET', jk, F_FAILURES, failures, F_ERRORS, cjson.encode(history), F_ERROR, err.message, F_ERROR_CLASS,
  class, F_UPDATED_AT, NOW_S)

if h[10] == '1' then
  -- Cancelled while it ran: the attempt's error is kept, and the job ends cancelled.
  cancel_job(id, 'active', ttype)
  return 'cancelled'
end
if mode == 'retry' and failures <= (tonumber(h[6] or MAX_RETRIES_UNSTORED_S) or 0) then
  local due = NOW + delay
  redis.call('HSET', jk, F_STATE, 'retrying', F_RUN_AT, due)
  redis.call('ZADD', k_delayed, due, id)
  move_idx(id, 'active', 'retrying')
  bump_typed('retried', ttype)
  bump_typed2('ef', ttype, class)
  emit(id, 'retrying', ttype)
  return 'retrying'
end
dead_letter(id, 'active', ttype, err.message, h[8], class)
return 'failed'
