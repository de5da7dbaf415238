--[[
  flow_release: applies what became of parents to children, all in this slot (ADR 0019): the
  releaser sends, per page of outbox entries, every release whose child is in this queue.
  Idempotent: a child records what each parent released it with (F_FLOW_RELEASED), so a
  replay of an outbox entry, or an older entry after a newer one, changes nothing.
  ARGV[5]   number of releases n
  ARGV[6..] n groups of 6: child job id, flow id (the child must be a node of it), parent node
            key, outcome (completed | failed | cancelled), the parent's result JSON ('' for
            none), the edge's policy for a failed or cancelled parent (fail | ignore | cancel)
  An edge is released with: c (parent completed), i (it failed or was cancelled, ignored),
  f (it failed: the child fails), x (it was cancelled, or failed under `cancel`: the child is
  cancelled). c is final; i and c count the parent as done (once). A child waiting with no
  parent left is queued; a child ended by a parent (F_FLOW_ENDED) whose every f/x parent has
  since completed is re-opened (waiting, or queued). Every release's arguments are
  checked before the first write; a child that is not the flow's is left alone ('foreign').
  Returns  per release 'released' | 'failed' | 'cancelled' | 'reopened' | 'counted' | 'noop' |
           'not_found' | 'foreign' (the job is not the flow's: nothing done)
  Emits    queued | failed | cancelled | waiting
]]
local n = arg_int(5, 1, 10000, 'number of releases')
if #ARGV ~= 5 + 6 * n then refuse('6 fields per release') end
for j = 1, n do
  local i = 6 + (j - 1) * 6
  local id, flow, parent, outcome, result, policy = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]
  if outcome ~= 'completed' and outcome ~= 'failed' and outcome ~= 'cancelled' then
    refuse('outcome must be completed, failed or cancelled')
  end
  if policy ~= 'fail' and policy ~= 'ignore' and policy ~= 'cancel' then refuse('policy must be fail, ignore or cancel') end
  if id == '' or flow == '' or parent == '' then refuse('id, flow and parent must be given') end
  if result ~= '' and not pcall(cjson.decode, result) then refuse('result must be JSON') end
end

local function release(id, flow, parent, outcome, result, policy)
  local jk = k_job(id)
  local h = redis.call('HMGET', jk, F_STATE, F_FLOW, F_FLOW_PENDING, F_FLOW_RELEASED, F_PARENT_RESULTS, F_FLOW_ENDED,
    F_PRIORITY, F_TASK_TYPE, F_DLQ_ENTRY)
  local st = h[1]
  if not st then return 'not_found' end
  -- Not this flow's child (a job_id taken by another job before the flow's could be made):
  -- nothing to release, and never a refusal that would keep the outbox page forever.
  if h[2] ~= flow then return 'foreign' end
  local released = {}
  if h[4] then
    local ok, v = pcall(cjson.decode, h[4])
    if ok and type(v) == 'table' then released = v end
  end
  local mark
  if outcome == 'completed' then mark = 'c'
  elseif policy == 'ignore' then mark = 'i'
  elseif outcome == 'failed' and policy == 'fail' then mark = 'f'
  else mark = 'x' end
  local prev = released[parent]
  if prev == 'c' or prev == mark or (prev == 'i' and mark ~= 'c') then return 'noop' end

  -- Writes from here on.
  released[parent] = mark
  local pending = tonumber(h[3]) or 0
  if (mark == 'c' or mark == 'i') and prev ~= 'i' then pending = math.max(0, pending - 1) end
  redis.call('HSET', jk, F_FLOW_RELEASED, cjson.encode(released), F_FLOW_PENDING, int_s(pending))
  if mark == 'c' and result ~= '' then
    local results = {}
    if h[5] then
      local ok, v = pcall(cjson.decode, h[5])
      if ok and type(v) == 'table' then results = v end
    end
    results[parent] = cjson.decode(result)
    redis.call('HSET', jk, F_PARENT_RESULTS, cjson.encode(results))
  end
  local ttype = h[8]

  if mark == 'f' or mark == 'x' then
    if st ~= 'waiting' then return 'counted' end
    redis.call('HSET', jk, F_FLOW_ENDED, '1')
    if mark == 'f' then
      dead_letter(id, 'waiting', ttype, 'parent ' .. parent .. ' failed', '0', 'ParentFailed')
      return 'failed'
    end
    cancel_job(id, 'waiting', ttype)
    return 'cancelled'
  end

  if st == 'waiting' then
    if pending > 0 then return 'counted' end
    local entry = push_ready(id, h[7])
    redis.call('HSET', jk, F_STATE, 'queued', F_ENTRY, entry, F_QUEUED_AT, NOW_S)
    move_idx(id, 'waiting', 'queued')
    emit(id, 'queued', ttype)
    return 'released'
  end
  if (st == 'failed' or st == 'cancelled') and h[6] == '1' then
    for _, m in pairs(released) do
      if m == 'f' or m == 'x' then return 'counted' end
    end
    -- Every parent that ended it has completed since (retried): it runs after all.
    if h[9] then redis.call('XDEL', k_dlq, h[9]) end
    keep_job(id)
    redis.call('HDEL', jk, F_FLOW_ENDED, F_DLQ_ENTRY, F_FINISHED_AT, F_ERROR)
    if pending > 0 then
      redis.call('HSET', jk, F_STATE, 'waiting', F_UPDATED_AT, NOW_S)
      move_idx(id, st, 'waiting')
      emit(id, 'waiting', ttype)
    else
      requeue(id, st, h[7], ttype, 'queued')
    end
    return 'reopened'
  end
  return 'counted'
end

local out = {}
for j = 1, n do
  local i = 6 + (j - 1) * 6
  out[j] = release(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5])
end
return out
