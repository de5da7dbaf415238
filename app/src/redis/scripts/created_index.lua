--[[
  created_index: switches the queue's created-time index (docs/decisions/0035) and writes its
  backfill. The switch is the meta field `created_index`: 'building' from 'on' mode (new jobs
  are indexed by the call that creates them from then on), 'on' once the backfill has covered
  every job that existed before. The backfill walks the queue's job hashes with SCAN (from the
  caller: a key that exists throughout a SCAN is returned by it, whatever state its job moves
  through -- a walk of the state indexes would miss a job that moved into a part already
  walked), one page per call; the page's cursor is kept in meta (`created_scan`), so whoever
  continues it (the API, the janitor) starts where it stopped, and a page written from a cursor
  that is no longer the current one is refused (two runners never both advance it).
  ARGV[5]  'on' | 'page' | 'off'
  page: ARGV[6] the SCAN cursor the page was read from, ARGV[7] the cursor SCAN answered
        ('0': done), ARGV[8..] the ids of the job hashes it found: each is indexed by the
        created_at its hash holds now (a hash deleted since is skipped: its delete already ran)
  Returns  'on' | 'building' | 'off' (the state after the call); page: 'moved' when ARGV[6] is
           not the current cursor (nothing written)
  Emits    nothing
]]
local mode, meta = ARGV[5], k_meta()
if mode == 'on' then
  local st = redis.call('HGET', meta, 'created_index')
  if st then return st end
  redis.call('HSET', meta, 'created_index', 'building', 'created_scan', '0')
  return 'building'
elseif mode == 'off' then
  redis.call('HDEL', meta, 'created_index', 'created_scan', 'created_sweep')
  -- UNLINK: the members are freed off Redis's main thread, whatever their number.
  redis.call('UNLINK', k_created())
  return 'off'
elseif mode ~= 'page' then
  refuse("mode must be 'on', 'page' or 'off'")
end
local st, at = unpack(redis.call('HMGET', meta, 'created_index', 'created_scan'))
if st ~= 'building' or at ~= ARGV[6] then return st == 'building' and 'moved' or (st or 'off') end
local key = k_created()
for i = 8, #ARGV do
  local created = redis.call('HGET', k_job(ARGV[i]), F_CREATED_AT)
  if created then redis.call('ZADD', key, created, ARGV[i]) end
end
if ARGV[7] == '0' then
  redis.call('HSET', meta, 'created_index', 'on')
  redis.call('HDEL', meta, 'created_scan')
  return 'on'
end
redis.call('HSET', meta, 'created_scan', ARGV[7])
return 'building'
