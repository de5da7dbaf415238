--[[
  deliver: reads up to `count` ready jobs for one consumer, high priority first, and starts
  them (queued -> active) in the same step, so a delivered entry always has an active job
  with a fresh epoch (the fencing token of this delivery).
  ARGV[5]  consumer (worker id)
  ARGV[6]  count
  Returns  {jobs, tails}: jobs is a list of flat job hashes (HGETALL after the start);
           tails, when fewer than `count` jobs were found, is the last entry id of each
           priority stream ('0-0' if empty): XREAD BLOCK from there wakes on the next job.
]]
local consumer = ARGV[5]
local want = tonumber(ARGV[6])
local jobs = {}

local function read(s, n)
  local ok = redis.pcall('XREADGROUP', 'GROUP', GROUP, consumer, 'COUNT', n, 'STREAMS', s, '>')
  if type(ok) == 'table' and ok.err then
    -- NOGROUP: the group (or stream) does not exist yet; the group starts at 0 so no entry is skipped.
    redis.call('XGROUP', 'CREATE', s, GROUP, '0', 'MKSTREAM')
    ok = redis.call('XREADGROUP', 'GROUP', GROUP, consumer, 'COUNT', n, 'STREAMS', s, '>')
  end
  if not ok then return {} end
  return ok[1][2]
end

for _, prio in ipairs(PRIORITIES) do
  if want <= 0 then break end
  local s = k_stream(prio)
  for _, e in ipairs(read(s, want)) do
    local entry, fields = e[1], e[2]
    local id = fields[2]
    local jk = k_job(id)
    local st = redis.call('HMGET', jk, 'state', 'entry', 'queued_at', 'epoch', 'attempts', 'task_type')
    if st[1] ~= 'queued' or st[2] ~= entry then
      -- An entry whose job is gone or has moved on: drop it, and count it.
      redis.call('XACK', s, GROUP, entry)
      redis.call('XDEL', s, entry)
      bump('orphan_entries')
    else
      -- One HSET: the new epoch (this delivery's fencing token) and attempt count included.
      redis.call('HSET', jk, 'state', 'active', 'worker', consumer, 'started_at', NOW, 'updated_at', NOW,
        'epoch', (tonumber(st[4]) or 0) + 1, 'attempts', (tonumber(st[5]) or 0) + 1)
      local ttype = st[6]
      move_idx(id, 'queued', 'active')
      observe('wait', NOW - (tonumber(st[3]) or NOW))
      emit(id, 'active', ttype)
      jobs[#jobs + 1] = redis.call('HGETALL', jk)
      want = want - 1
    end
  end
end

local tails = {}
if want > 0 then
  for p, prio in ipairs(PRIORITIES) do
    local last = redis.call('XREVRANGE', k_stream(prio), '+', '-', 'COUNT', 1)
    tails[p] = last[1] and last[1][1] or '0-0'
  end
end
return { jobs, tails }
