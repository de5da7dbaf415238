-- READ-ONLY: writes nothing (READ_ONLY_SCRIPTS in scripts.ts: flag no-writes).
-- One page of a queue's DLQ counted by task type x priority x error class (GET /dlq/stats):
-- exact over the whole DLQ, at a bounded cost per call -- the caller walks the stream in pages.
-- An entry counts when its job is still failed and this is still its DLQ entry (not retried,
-- expired or replaced since), as the listing shows it.
-- ARGV[5]  the entry after which to start ('' = from the oldest)
-- ARGV[6]  how many entries to examine at most
-- ARGV[7]  task type ('' = any); ARGV[8] priority ('' = any; a job without one is normal)
-- The class is error_class() of the prelude (8-dlq.lua): the one place it is derived.
-- Returns { groups flat (task type, priority, error class, count, newest failure ms), last entry
-- examined ('' when the stream is exhausted), examined }.
local from = ARGV[5] == '' and '-' or '(' .. ARGV[5]
local count = arg_int(6, 1, 100000, 'count')
local ttype, prio = ARGV[7], ARGV[8]

local entries = redis.call('XRANGE', k_dlq, from, '+', 'COUNT', count)
local groups, order = {}, {}
for _, e in ipairs(entries) do
  local f = e[2]
  local id, etype = f[2], ''
  for i = 1, #f, 2 do
    if f[i] == 'type' then etype = f[i + 1] end
  end
  local h = redis.call('HMGET', k_job(id), F_STATE, F_DLQ_ENTRY, F_PRIORITY, F_ERROR_CLASS)
  local pr = h[3] or 'normal'
  if h[1] == 'failed' and h[2] == e[1] and (ttype == '' or etype == ttype) and (prio == '' or pr == prio) then
    -- The message (possibly long) is read only for a job without a recorded class.
    local class = error_class(h[4], (not h[4] or h[4] == '') and redis.call('HGET', k_job(id), F_ERROR) or '')
    local key = etype .. '\0' .. pr .. '\0' .. class
    if not groups[key] then
      groups[key] = { etype, pr, class, 0, 0 }
      order[#order + 1] = key
    end
    local g = groups[key]
    g[4] = g[4] + 1
    -- Entries come oldest first and their ids carry the failure time: the last seen is the newest.
    g[5] = tonumber(string.match(e[1], '^(%d+)'))
  end
end
local flat = {}
for _, key in ipairs(order) do
  for _, v in ipairs(groups[key]) do flat[#flat + 1] = v end
end
local last = #entries < count and '' or entries[#entries][1]
return { flat, last, #entries }
