--[[
  prune: removes jobs completed more than COMPLETED_RETENTION_S ago (hash, logs, index entry),
  up to a limit -- the janitor's share of retention, for queues where nothing completes any
  more (calls that complete jobs prune as they go: prune_completed in the prelude).
  ARGV[5]  limit
  Returns  how many index entries it removed
]]
return prune_completed(arg_int(5, 1, 100000, 'limit'))
