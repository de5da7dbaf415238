-- READ-ONLY: writes nothing (READ_ONLY_SCRIPTS in scripts.ts: flag no-writes).
-- A queue's numbers for GET /queues, /stats and /metrics in one call, so stats over many queues
-- are one pipelined round trip.
-- ARGV[5..] the states whose index zsets to count.
-- Returns { index counts (in ARGV order), stats hash (flat), delayed, DLQ length, paused (1/0),
-- per priority { length, pending, lag, oldest undelivered entry id ('' if none) }, the
-- created-time index's switch ('' off, 'building', 'on': ADR 0035) }.
-- lag is the group's own when Redis knows it (XINFO GROUPS). Redis reports it as nil when an
-- entry at or after the group's last-delivered id was deleted (cancel and delete XDEL a waiting
-- job's entry; a job completed before an older one XDELs its entry, often the last-delivered
-- one) or when the group's read counter is unknown (a group created or moved by XGROUP
-- CREATE/SETID at an id inside the stream). Then it is counted, exactly: the entries after the
-- last-delivered id (at most LAG_SCAN read), or else the length less the entries up to it (at
-- most LAG_SCAN read); with more than LAG_SCAN on both sides it is unknown: -1 (null in the API).
local LAG_SCAN = 1000
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
  local oldest = ''
  if lag == nil then
    local after = redis.call('XRANGE', s, '(' .. delivered, '+', 'COUNT', LAG_SCAN)
    if after[1] then oldest = after[1][1] end
    if #after < LAG_SCAN then
      lag = #after
    else
      local upto = #redis.call('XRANGE', s, '-', delivered, 'COUNT', LAG_SCAN)
      lag = upto < LAG_SCAN and length - upto or -1
    end
  elseif lag > 0 then
    local first = redis.call('XRANGE', s, '(' .. delivered, '+', 'COUNT', 1)[1]
    if first then oldest = first[1] end
  end
  streams[p] = { length, pending, lag, oldest }
end
local meta = redis.call('HMGET', k_meta(), 'paused', 'created_index')
local paused = meta[1] == '1' and 1 or 0
local totals = redis.call('HGETALL', k_stats)
return { counts, totals, redis.call('ZCARD', k_delayed), redis.call('XLEN', k_dlq), paused, streams, meta[2] or '' }
