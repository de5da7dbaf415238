--[[
  complete: records the results of finished jobs (batched) -- active -> completed, fenced
  (see complete_jobs in the prelude).
  ARGV[5]   number of jobs n
  ARGV[6..] n groups of 10 (4-complete.lua): id, epoch, result JSON, idempotency key hash ('' if
            none), '1' / '0' for a flow member or not ('' unknown: looked up), then the delivery's
            entry id, priority ('' normal), task type, started_at and attempts ('' each: read)
  Returns   per job: 1 completed, 2 cancelled (a cancel had been requested), 0 rejected (stale)
  Emits     completed; cancelled (a cancel had been requested)
]]
return complete_jobs(5)
