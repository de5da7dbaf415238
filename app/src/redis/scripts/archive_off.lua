--[[
  archive_off: switches archiving off in the queue (docs/decisions/0027): the switch goes first,
  then every job still held for the archiver lets go of its hold as archive_ack would (its
  history is not written), and the archive stream is deleted. Up to ARGV[5] entries per call:
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
redis.call('DEL', stream)
return 0
