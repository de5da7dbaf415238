--[[
  Part 4 of the prelude: recording finished jobs (the `complete` and `fetch` scripts).
]]
-- Records finished jobs (active -> completed), fenced: a job is completed only if it is still
-- active under the caller's epoch; a stale owner's write (reclaimed, handed back or cancelled
-- since) is rejected and counted, never applied. ARGV[at] = n, then n groups of ten (store.ts's
-- COMPLETION_ARGS): id, epoch, result JSON, idempotency key hash or '' (a '+' after it: the job
-- holds a unique dedup key), '1' / '0' whether it is a flow member ('' unknown: looked up), then
-- what the delivery said of the job -- its entry id, priority ('' normal), task type, started_at
-- and attempts -- or five '' (unknown: read from the hash). The owner has the job, so it says
-- all that: the hot HMGET below never looks for fields most jobs lack (a missing field costs a
-- scan of the whole hash) and reads only what fences the write (state, epoch) and what may
-- change while the job runs (a cancel request). The delivery's facts are safe to take from the
-- owner once the fence holds: the epoch names one delivery, and nothing changes a job's entry,
-- priority, type, started_at or attempts without ending the delivery or starting another
-- under a new epoch (ADR 0038). Returns per job 1 (completed), 2 (cancelled: a cancel had
-- been requested) or 0 (stale).
-- A completed job is kept COMPLETED_RETENTION_S through the completed index (no TTL), or
-- deleted at once when that is 0; a flow member's end goes to the flow outbox first (ADR 0019).
local function complete_jobs(at)
  local n = arg_int(at, 0, 100000, 'number of finished jobs', 10)
  local out = {}
  -- First, so a stale index entry of a reused id is gone before the id completes again.
  if n > 0 then prune_completed(2 * n) end
  local late = n > 0 and flow_late_any()
  for j = 1, n do
    local i = at + 1 + (j - 1) * 10
    local id, epoch, result, ih, flow = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
    local jk = k_job(id)
    local h
    if ARGV[i + 5] ~= '' then
      -- The delivery's facts from the owner (see above); the fence and the cancel flag from the
      -- hash: 4 fields instead of 8 (~1 µs a job; docs/performance.md). The fence includes the
      -- entry: epochs start again at 1 in a job made anew under the id of one deleted while it
      -- ran, and the old run's epoch could match the new job's; its entry never does (ids of
      -- a stream only grow). A stale owner's write then never completes another incarnation.
      h = redis.call('HMGET', jk, F_STATE, F_EPOCH, F_CANCEL_REQUESTED, F_ENTRY)
      local prio = ARGV[i + 6]
      if h[4] ~= ARGV[i + 5] then h[1] = 'other' end
      h[7] = h[3]
      h[3], h[4], h[5], h[6], h[8] = ARGV[i + 5], prio ~= '' and prio or nil, ARGV[i + 7], ARGV[i + 8], ARGV[i + 9]
    else
      -- (A running job's `en` is its entry id whole: the start stored it so -- ADR 0037.)
      h = redis.call('HMGET', jk, F_STATE, F_EPOCH, F_ENTRY, F_PRIORITY, F_TASK_TYPE, F_STARTED_AT,
        F_CANCEL_REQUESTED, F_ATTEMPTS)
    end
    if h[1] ~= 'active' or h[2] ~= epoch then
      bump('stale_writes')
      out[j] = 0
    elseif h[7] == '1' then
      -- A cancel request is final: the job ends cancelled whatever its handler did after it
      -- (the result it returned is kept on the job).
      ack(h[4], h[3])
      redis.call('HSET', jk, F_RESULT, result)
      observe('run', NOW - (tonumber(h[6]) or NOW), h[5])
      cancel_job(id, 'active', h[5])
      out[j] = 2
    else
      ack(h[4], h[3])
      -- No updated_at on the hot transitions: readers take the latest of the job's times.
      -- No archive mark: the watermark holds a completed job (ADR 0031); a retried job's mark of
      -- an earlier (failed) end goes.
      redis.call('HSET', jk, F_STATE, 'completed', F_RESULT, result, F_FINISHED_AT, NOW_S)
      local retried = (tonumber(h[8]) or 1) > 1
      if retried and arch_on() then redis.call('HDEL', jk, F_ARCHIVE) end
      if ih ~= '' then finish_keys(id, ih, 'completed') end
      if flow ~= '0' or (late and redis.call('SISMEMBER', base .. K_FLOW_LATE, id) == 1) then
        flow_outbox_of(id, 'completed', result)
      end
      -- (archived with a retention of 0: indexed until the archiver has it, then pruned)
      if COMPLETED_TTL > 0 or (ARCHIVE_HOLD and arch_on()) then
        move_idx(id, 'active', 'completed')
      else
        fc_moved(id, 'active', 'completed') -- what move_idx would have told flow control
        redis.call('DEL', jk, k_logs(id))
        created_drop({ id })
      end
      bump_typed('completed', h[5])
      -- Completed on a later attempt than the first: a retry (or a rerun after a crash) succeeded.
      if retried then bump_typed('retry_ok', h[5]) end
      observe('run', NOW - (tonumber(h[6]) or NOW), h[5])
      throughput('completed')
      emit(id, 'completed', h[5])
      out[j] = 1
    end
  end
  return out
end
