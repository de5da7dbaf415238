--[[
  flow_attach: makes jobs members of a flow in their queue's slot (ADR 0019): existing jobs
  made parents (a job added with `depends_on` naming jobs that already exist), and the flow's
  own nodes once created, which get their children stored. The flow's record and its children
  exist already; from here on a parent's end reaches its outbox like any member's.
  ARGV[5]   number of parents n
  ARGV[6..] n groups of 4: the parent's job id, the flow id, the parent's node key in the flow,
            its children there (JSON list, the record's `c:<node>`)
  The children are kept on the job (F_FLOW_CHILDREN, or its F_FLOW_WATCH entry): its finishing
  script puts them in its outbox entry, so its end releases them even once the flow's record
  has expired (a parent that waited longer than FLOW_RETENTION_S to end).
  A job that is already this flow's member as this node (created by the flow, or joined by an
  earlier call) only gets its children stored, when it lacks them: its own end writes its entry.
  A job holding a node's own id ("<flow>.<node>") that is not the flow's (the id was taken
  before the flow could create it) is left alone ('foreign').
  Any other parent that has ended answers at once: its outcome goes to this queue's outbox now
  (with its result), as its finishing script would have written it. A live or failed one (a
  retry from the DLQ may still complete it) becomes a member: its own flow fields when it had
  none (noted in K_FLOW_LATE when a worker runs it: that worker was told it is outside any
  flow), else one more [flow, node, children] in F_FLOW_WATCH. Repeating a call changes
  nothing it had done (a repeated outbox entry is a no-op for the releaser).
  Returns  per parent {outcome, due}: outcome 'completed' | 'failed' | 'cancelled' (it had
           ended) | 'attached' | 'member' (already this node of the flow) | 'foreign' |
           'not_found'; due,
           the parent's run_at while scheduled, else 0
  Emits    nothing
]]
local n = arg_int(5, 1, 10000, 'number of parents')
if #ARGV ~= 5 + 4 * n then refuse('4 fields per parent') end
for j = 1, n do
  local i = 6 + (j - 1) * 4
  if ARGV[i] == '' or ARGV[i + 1] == '' or ARGV[i + 2] == '' then refuse('id, flow and node must be given') end
  local ok, kids = pcall(cjson.decode, ARGV[i + 3])
  if not ok or type(kids) ~= 'table' then refuse('children must be a JSON list') end
end

local function watch(id, jk, h, flow, node, kids)
  if not h[2] then
    redis.call('HSET', jk, F_FLOW, flow, F_FLOW_NODE, node, F_FLOW_CHILDREN, kids)
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
  list[#list + 1] = { flow, node, kids }
  redis.call('HSET', jk, F_FLOW_WATCH, cjson.encode(list))
end

local out = {}
for j = 1, n do
  local i = 6 + (j - 1) * 4
  local id, flow, node, kids = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local jk = k_job(id)
  local h = redis.call('HMGET', jk, F_STATE, F_FLOW, F_FLOW_NODE, F_FLOW_WATCH, F_RESULT, F_RUN_AT, F_FLOW_CHILDREN)
  local st = h[1]
  local due = st == 'scheduled' and (tonumber(h[6]) or 0) or 0
  if not st then
    out[j] = { 'not_found', 0 }
  elseif h[2] == flow then
    if not h[7] and kids ~= '[]' and h[3] == node then redis.call('HSET', jk, F_FLOW_CHILDREN, kids) end
    out[j] = { 'member', due }
  elseif id == flow .. '.' .. node then
    out[j] = { 'foreign', 0 }
  elseif st == 'completed' or st == 'cancelled' then
    flow_outbox(id, flow, node, st, st == 'completed' and (h[5] or '') or '', kids)
    out[j] = { st, 0 }
  else
    watch(id, jk, h, flow, node, kids)
    if st == 'failed' then flow_outbox(id, flow, node, 'failed', '', kids) end
    out[j] = { st == 'failed' and 'failed' or 'attached', due }
  end
end
return out
