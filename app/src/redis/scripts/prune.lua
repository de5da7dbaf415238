--[[
  prune: removes jobs completed more than COMPLETED_RETENTION_S ago (hash, logs, index entry),
  up to a limit -- the janitor's share of retention, for queues where nothing completes any
  more (calls that complete jobs prune as they go: prune_completed in the prelude). Under
  memory pressure the janitor passes a shorter retention (ARGV[6], seconds): a full Redis
  gives up finished jobs' records before it refuses new work for long.
  ARGV[5]  limit
  ARGV[6]  retention override, seconds ('' for none; never longer than COMPLETED_RETENTION_S)
  Returns  how many index entries it removed
  Emits     nothing (removals are not events)
]]
local limit = arg_int(5, 1, 100000, 'limit')
if ARGV[6] and ARGV[6] ~= '' then
  COMPLETED_TTL = math.min(COMPLETED_TTL, arg_int(6, 0, 1e9, 'retention'))
  if COMPLETED_TTL <= 0 then COMPLETED_TTL = 0.001 end -- everything completed before now
end
return prune_completed(limit)
