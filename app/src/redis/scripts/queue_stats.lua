-- READ-ONLY: writes nothing (READ_ONLY_SCRIPTS in scripts.ts: flag no-writes).
-- A queue's numbers for GET /queues, /stats and /metrics in one call, so stats over many queues
-- are one pipelined round trip.
-- ARGV[5..] the states whose index zsets to count.
-- Returns { index counts (in ARGV order), stats hash (flat), delayed, DLQ length, paused (1/0),
-- per priority { length, pending, lag, oldest undelivered entry id ('' if none) } }.
-- lag is the group's own when Redis knows it; Redis reports none once entries after the group's
-- last-delivered id were deleted (cancel XDELs a waiting job's entry) -- then it is
-- length - pending: acknowledged entries are deleted, so every entry is pending or undelivered.
local counts = {}
for i = 5, #ARGV do counts[#counts + 1] = redis.call('ZCARD', k_idx(ARGV[i])) end
local streams = {}
for p, prio in ipairs(PRIORITIES) do
  local s = k_stream(prio)
  local length = redis.call('XLEN', s)
  local pending, lag, delivered = 0, nil, '0-0'
  local groups = redis.pcall('XINFO', 'GROUPS', s)
  if not groups.err then
    for _, g in ipairs(groups) do
      local f = {}
      for i = 1, #g, 2 do f[g[i]] = g[i + 1] end
      if f['name'] == GROUP then
        pending, delivered = f['pending'], f['last-delivered-id']
        if type(f['lag']) == 'number' then lag = f['lag'] end
      end
    end
  end
  lag = lag or math.max(0, length - pending)
  local oldest = ''
  if lag > 0 then
    local first = redis.call('XRANGE', s, '(' .. delivered, '+', 'COUNT', 1)[1]
    if first then oldest = first[1] end
  end
  streams[p] = { length, pending, lag, oldest }
end
local paused = redis.call('HGET', k_meta(), 'paused') == '1' and 1 or 0
local totals = redis.call('HGETALL', k_stats)
return { counts, totals, redis.call('ZCARD', k_delayed), redis.call('XLEN', k_dlq), paused, streams }
