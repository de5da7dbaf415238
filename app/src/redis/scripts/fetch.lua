--[[
  fetch: a worker's steady-state call -- records the jobs it finished and starts the next
  ones, in one round trip and one function call (complete + deliver, fused). A worker keeps
  a few of these in flight so Redis never waits for Node (docs/performance.md).
  ARGV[5]   consumer (worker id)
  ARGV[6]   count of jobs wanted
  ARGV[7]   number of finished jobs n
  ARGV[8..] n groups of 10 (4-complete.lua): id, epoch, result JSON, idempotency key hash ('' if
            none), '1' / '0' for a flow member or not ('' unknown: looked up), then the delivery's
            entry id, priority ('' normal), task type, started_at and attempts ('' each: read)
  Returns   {completed, jobs, tails}: completed is per finished job 1 (recorded), 2 (cancelled) or 0 (stale);
            jobs and tails as for deliver.
  Emits     as complete, then as deliver
]]
local want = arg_int(6, 1, 100000, 'count') -- checked before complete_jobs writes
local done = complete_jobs(7)
local d = deliver_jobs(ARGV[5], want)
return { done, d[1], d[2] }
