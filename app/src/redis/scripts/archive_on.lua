--[[
  archive_on: switches archiving on in the queue (docs/decisions/0027): the archive stream with
  its group `archiver` (from the start), then the switch every finishing call reads. When it was
  off, the finished jobs still in the queue's indexes (at most ARGV[5] of each state, oldest
  first) are put in the archive stream too (entries scored by their oldest end in the
  watermark's set; failed and cancelled jobs marked and held), so a queue the archiver found
  late loses nothing that retention had not already removed.
  ARGV[5]  most finished jobs of each state to add (0: none)
  Returns  1 switched on now, 0 it was on
  Emits     nothing
]]
local most = arg_int(5, 0, 100000, 'backfill limit')
local stream = base .. K_ARCHIVE
local made = redis.pcall('XGROUP', 'CREATE', stream, 'archiver', '0', 'MKSTREAM')
if type(made) == 'table' and made.err and not string.find(made.err, 'BUSYGROUP', 1, true) then
  return redis.error_reply(made.err)
end
if redis.call('SET', base .. K_ARCHIVE_ON, '1', 'NX') == false then return 0 end
if most == 0 then return 1 end
for _, st in ipairs({ 'completed', 'failed', 'cancelled' }) do
  local ids = redis.call('ZRANGE', k_idx(st), 0, most - 1, 'WITHSCORES')
  local batch, ends = {}, {}
  for i = 1, #ids, 2 do
    local id = ids[i]
    local jk = k_job(id)
    local state, fi = unpack(redis.call('HMGET', jk, F_STATE, F_FINISHED_AT))
    if state == st and fi then
      if st ~= 'completed' then
        redis.call('HSET', jk, F_ARCHIVE, fi)
        redis.call('PERSIST', jk)
      end
      batch[#batch + 1] = id
      ends[#ends + 1] = math.min(tonumber(fi) or 0, tonumber(ids[i + 1]) or 0)
    end
  end
  for i = 1, #batch, 100 do
    local last = math.min(i + 99, #batch)
    local low = math.huge
    for j = i, last do low = math.min(low, ends[j]) end
    local entry = redis.call('XADD', stream, '*', 'job', table.concat(batch, ' ', i, last), 'event', st)
    redis.call('ZADD', base .. K_ARCHIVE_AT, low, entry)
  end
end
return 1
