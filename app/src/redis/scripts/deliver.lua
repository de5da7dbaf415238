--[[
  deliver: reads up to `count` ready jobs for one consumer, high priority first, and starts
  them (queued -> active) in the same step (see deliver_jobs in the prelude).
  ARGV[5]  consumer (worker id)
  ARGV[6]  count
  Returns  {jobs, tails}: jobs is one JSON string: the pairs every start set alike, then a row
           per started job (the hash's field/value pairs, those its start changed, the id);
           tails, when fewer than `count` jobs were found, is the last entry id of each
           priority stream ('0-0' if empty): XREAD BLOCK from there wakes on the next job.
  Emits     active; cancelled (a job with a cancel request is not started)
]]
return deliver_jobs(ARGV[5], arg_int(6, 1, 100000, 'count'))
