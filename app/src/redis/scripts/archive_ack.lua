--[[
  archive_ack: the archiver has committed jobs to PostgreSQL (docs/decisions/0027, 0031). Their
  archive entries are acknowledged and deleted (the stream holds only what is not archived) and
  leave the watermark's set, which lets retention reach the completed jobs they held; each
  failed or cancelled job archived as it still is lets go of its hold (arch_release,
  lib/7b-archive.lua). With a completed retention of 0 the completed jobs now below the watermark
  are deleted (up to ARGV[last] of them).
  ARGV[5]   number of entries e, then e entry ids
  then      number of jobs n, then n triples: job id, its finished_at and state as archived
            (failed or cancelled: completed jobs need no per-job work)
  then      how many completed jobs were archived
  Returns   number of entries acknowledged
  Emits     nothing
]]
local e = arg_int(5, 0, 5000, 'number of entries')
local at = 6 + e
local n = arg_int(at, 0, 1000000, 'number of jobs')
local completed = arg_int(at + 3 * n + 1, 0, 1000000, 'number of completed jobs')
local stream = base .. K_ARCHIVE
for j = 1, n do
  local i = at + 3 * j - 2
  if ARGV[i + 2] ~= 'completed' then arch_release(ARGV[i], ARGV[i + 1], ARGV[i + 2]) end
end
local acked = 0
if e > 0 then
  acked = redis.call('XACK', stream, 'archiver', unpack(ARGV, 6, 5 + e))
  redis.call('XDEL', stream, unpack(ARGV, 6, 5 + e))
  redis.call('ZREM', base .. K_ARCHIVE_AT, unpack(ARGV, 6, 5 + e))
end
if COMPLETED_TTL <= 0 and completed > 0 then prune_completed(completed) end
return acked
