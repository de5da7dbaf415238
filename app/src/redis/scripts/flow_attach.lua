--[[
  flow_attach: makes existing jobs parents in a flow (a job added with `depends_on` naming jobs
  that already exist; ADR 0019), in their queue's slot. The flow's record and its child exist
  already; from here on the parent's end reaches its outbox like any member's.
  ARGV[5]   number of parents n
  ARGV[6..] n groups of 3: the parent's job id, the flow id, the parent's node key in the flow
  A parent that has ended answers at once: its outcome goes to this queue's outbox now (with
  its result), as its finishing script would have written it. A live or failed one (a retry
  from the DLQ may still complete it) becomes a member: its own flow fields when it had none
  (noted in K_FLOW_LATE when a worker runs it: that worker was told it is outside any flow),
  else one more [flow, node] in F_FLOW_WATCH. Repeating a call changes nothing it had done
  (a repeated outbox entry is a no-op for the releaser).
  Returns  per parent {outcome, due}: outcome 'completed' | 'failed' | 'cancelled' (it had
           ended) | 'attached' | 'not_found'; due, the parent's run_at while scheduled, else 0
  Emits    nothing
]]
local n = arg_int(5, 1, 10000, 'number of parents')
if #ARGV ~= 5 + 3 * n then refuse('3 fields per parent') end
for j = 1, n do
  local i = 6 + (j - 1) * 3
  if ARGV[i] == '' or ARGV[i + 1] == '' or ARGV[i + 2] == '' then refuse('id, flow and node must be given') end
end

local function watch(id, jk, h, flow, node)
  if h[2] == flow then return end
  if not h[2] then
    redis.call('HSET', jk, F_FLOW, flow, F_FLOW_NODE, node)
    if h[1] == 'active' then redis.call('SADD', base .. K_FLOW_LATE, id) end
    return
  end
  local list = {}
  if h[4] then
    local ok, v = pcall(cjson.decode, h[4])
    if ok and type(v) == 'table' then list = v end
  end
  for _, w in ipairs(list) do
    if w[1] == flow then return end
  end
  list[#list + 1] = { flow, node }
  redis.call('HSET', jk, F_FLOW_WATCH, cjson.encode(list))
end

local out = {}
for j = 1, n do
  local i = 6 + (j - 1) * 3
  local id, flow, node = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local jk = k_job(id)
  local h = redis.call('HMGET', jk, F_STATE, F_FLOW, F_FLOW_NODE, F_FLOW_WATCH, F_RESULT, F_RUN_AT)
  local st = h[1]
  if not st then
    out[j] = { 'not_found', 0 }
  elseif st == 'completed' or st == 'cancelled' then
    flow_outbox(id, flow, node, st, st == 'completed' and (h[5] or '') or '')
    out[j] = { st, 0 }
  else
    watch(id, jk, h, flow, node)
    if st == 'failed' then flow_outbox(id, flow, node, 'failed', '') end
    out[j] = { st == 'failed' and 'failed' or 'attached', st == 'scheduled' and (tonumber(h[6]) or 0) or 0 }
  end
end
return out
