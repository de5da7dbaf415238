--[[
  archive_off: switches archiving off in the queue (docs/decisions/0027, 0031): the switch goes
  first (retention no longer stops at the watermark), then every failed or cancelled job still
  held for the archiver lets go of its hold as archive_ack would (its history is not written),
  and the archive stream and the watermark's set are deleted; with a completed retention of 0,
  the completed jobs the watermark kept are deleted. Up to ARGV[5] entries (and jobs) per call:
  the caller repeats while it returns 1.
  ARGV[5]  most archive entries to release in this call
  Returns  1 when entries remain, 0 done
  Emits     nothing
]]
local most = arg_int(5, 1, 100000, 'limit')
local stream = base .. K_ARCHIVE
redis.call('DEL', base .. K_ARCHIVE_ON)
local page = redis.call('XRANGE', stream, '-', '+', 'COUNT', most)
for _, entry in ipairs(page) do
  local f = entry[2]
  local jobs
  for i = 1, #f, 2 do
    if f[i] == 'job' then jobs = f[i + 1] end
  end
  for id in string.gmatch(jobs or '', '%S+') do arch_release(id, nil) end
  redis.call('XDEL', stream, entry[1])
end
if #page == most then return 1 end
if COMPLETED_TTL <= 0 then
  local idx = k_idx('completed')
  local ids = redis.call('ZRANGE', idx, 0, most - 1)
  local gone = {}
  for _, id in ipairs(ids) do
    if redis.call('HGET', k_job(id), F_STATE) == 'completed' then
      redis.call('DEL', k_job(id), k_logs(id))
      gone[#gone + 1] = id
    end
  end
  created_drop(gone)
  if #ids > 0 then redis.call('ZREM', idx, unpack(ids)) end
  if #ids == most then return 1 end
end
redis.call('DEL', stream, base .. K_ARCHIVE_AT)
return 0
