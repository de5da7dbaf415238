--[[
  schedule_fire: the one write of a schedule's fire (ADR 0018). Compare-and-set: in mode
  'fire' the call does anything only when the schedule's stored next_fire is the one the
  caller planned from (every scheduler of every process may call it for the same time; one
  finds it, the others find the time moved on and write nothing). Then, per fire time, the
  overlap policy and the run limit, a job made from the stored template exactly as enqueue
  makes one (create_job, with the schedule's name in the job), a history line, and next_fire
  moved to the caller's next time. The cron and time-zone arithmetic is the caller's (JS).
  ARGV[5]   schedule name
  ARGV[6]   mode: 'fire' (compare-and-set, move next_fire) | 'trigger' (one job now,
            next_fire untouched, no policy applies)
  ARGV[7]   fire: the next_fire the caller found (the compare)
  ARGV[8]   fire: next_fire after the call ('': none, the schedule has ended)
  ARGV[9]   '1': the times were missed (downtime); with no fire time, a 'missed' line is kept
  ARGV[10]  number of fire times m (0 to 1000)
  ARGV[11..] m pairs: fire time (ms), id of the job to make for it
  Returns   {'fired', made ids, next_fire, registered} -- registered '1' when the queue had no
            registration mark (the caller adds it to the registry again);
            {'stale', stored next_fire} (the compare failed: another scheduler fired it, or it
            was changed), {'paused', next_fire}, {'gone'} (no such schedule) or
            {'taken', id} (a generated id names a live job: the id counter is behind) --
            these write nothing.
  Emits     queued (per job made)
]]
local name = ARGV[5]
local mode = ARGV[6]
local m = arg_int(10, 0, 1000, 'fire times')
if #ARGV ~= 10 + 2 * m or (mode ~= 'fire' and mode ~= 'trigger') then
  return redis.error_reply('DTQ_BAD_CALL schedule_fire: mode fire|trigger and 2 fields per fire time')
end
local sk, hk = base .. K_SCHED .. name, base .. K_SCHIST .. name
local s = redis.call('HMGET', sk, 'next', 'paused', 'tpl', 'overlap', 'max_runs', 'runs', 'last_job')
if not s[3] then return { 'gone' } end
if mode == 'fire' then
  if (s[1] or '') ~= ARGV[7] then return { 'stale', s[1] or '' } end
  if s[2] == '1' then return { 'paused', s[1] or '' } end
end
for k = 1, m do
  local id = ARGV[10 + 2 * k]
  if id == '' or #id > 128 then refuse('job ids must be 1-128 characters') end
  if redis.call('EXISTS', k_job(id)) == 1 then return { 'taken', id } end
end
local tpl = cjson.decode(s[3])
local runs = tonumber(s[6] or '0') or 0
local max_runs = tonumber(s[5] or '')
local last = s[7]

-- The overlap policy, from the schedule's latest job: skip while it is waiting or running;
-- queue_one while it is waiting (one may run and one wait).
local BUSY = {
  skip = { queued = true, scheduled = true, active = true, retrying = true },
  queue_one = { queued = true, scheduled = true, retrying = true },
}
local function blocked()
  local busy = BUSY[s[4] or 'allow']
  if not busy or not last then return false end
  local st = redis.call('HGET', k_job(last), F_STATE)
  return st and busy[st] or false
end

local unregistered = m > 0 and redis.call('HSETNX', k_meta(), 'registered', '1') == 1
local made = {}
-- Each job names its schedule and its fire time (a checker finds one job per time by them).
local more = { F_SCHEDULE, name, F_FIRED_AT, '' }
for x = 1, #tpl.x do more[#more + 1] = tpl.x[x] end
local line = {}
for k = 1, m do
  local at, id = ARGV[9 + 2 * k], ARGV[10 + 2 * k]
  local outcome
  if mode == 'trigger' then
    outcome = 'triggered'
  elseif max_runs and runs >= max_runs then
    outcome = 'ended'
  elseif blocked() then
    outcome = 'skipped_overlap'
  else
    outcome = ARGV[9] == '1' and 'missed_run' or 'job'
  end
  if outcome == 'triggered' or outcome == 'job' or outcome == 'missed_run' then
    more[4] = at
    create_job(id, tpl.ty, tpl.pl, tpl.pr, tpl.mr, tpl.to, 0, tpl.pk, more)
    made[#made + 1] = id
    last = id
    if mode == 'fire' then runs = runs + 1 end
  else
    id = '-'
  end
  line[#line + 1] = at .. ' ' .. id .. ' ' .. outcome
end
if m == 0 and ARGV[9] == '1' then line[1] = ARGV[7] .. ' - missed' end
if #line > 0 then
  redis.call('LPUSH', hk, unpack(line))
  redis.call('LTRIM', hk, 0, SCHEDULE_HISTORY - 1)
end
local next_fire = s[1] or ''
if mode == 'fire' then
  next_fire = ARGV[8]
  if max_runs and runs >= max_runs then next_fire = '' end
end
local f = { 'next', next_fire, 'runs', runs }
if last then
  f[#f + 1] = 'last_job'
  f[#f + 1] = last
end
if m > 0 then
  f[#f + 1] = 'last_fire'
  f[#f + 1] = ARGV[9 + 2 * m]
end
redis.call('HSET', sk, unpack(f))
return { 'fired', made, next_fire, unregistered and '1' or '0' }
