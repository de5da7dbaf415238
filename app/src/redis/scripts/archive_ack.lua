--[[
  archive_ack: the archiver has committed jobs to PostgreSQL (docs/decisions/0027). Their
  archive entries are acknowledged and deleted (the stream holds only what is not archived),
  and each job archived as it still is lets go of its hold.
  Each job's hold goes as arch_release (lib/7b-archive.lua) says.
  ARGV[5]   number of entries e, then e entry ids
  then      number of jobs n, then n triples: job id, its finished_at and state as archived
  Returns   number of entries acknowledged
  Emits     nothing
]]
local e = arg_int(5, 0, 5000, 'number of entries')
local at = 6 + e
local n = arg_int(at, 0, 1000000, 'number of jobs')
local stream = base .. K_ARCHIVE
for j = 1, n do
  local i = at + 3 * j - 2
  arch_release(ARGV[i], ARGV[i + 1], ARGV[i + 2])
end
local acked = 0
if e > 0 then
  acked = redis.call('XACK', stream, 'archiver', unpack(ARGV, 6, 5 + e))
  redis.call('XDEL', stream, unpack(ARGV, 6, 5 + e))
end
return acked
