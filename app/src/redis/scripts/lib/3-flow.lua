--[[
  Part 3a of the prelude: the flow outbox (docs/decisions/0019). A flow member's finishing
  script appends what became of it to its queue's outbox, in the same call as the state change:
  the releaser (app/src/redis/flows.ts) carries it to the children, whose slots this script
  cannot reach on a Cluster.
]]
-- `flow` and `node` as read from the job's hash (false for a job outside any flow).
local function flow_outbox(id, flow, node, outcome, result)
  if not flow then return end
  redis.call('XADD', base .. K_FLOW_OUT, '*', 'f', flow, 'n', node or '', 'j', id, 'o', outcome, 'r', result or '')
end

-- The same for a job whose flow fields the caller has not read -- and for each further flow
-- it is a parent in (F_FLOW_WATCH, JSON [[flow, node], ...]: an existing job named in a later
-- job's depends_on while it was already a member of another flow).
local function flow_outbox_of(id, outcome, result)
  local h = redis.call('HMGET', k_job(id), F_FLOW, F_FLOW_NODE, F_FLOW_WATCH)
  if not h[1] then return end
  flow_outbox(id, h[1], h[2], outcome, result)
  if h[3] then
    local ok, list = pcall(cjson.decode, h[3])
    if ok and type(list) == 'table' then
      for _, w in ipairs(list) do flow_outbox(id, w[1], w[2], outcome, result) end
    end
  end
  -- It ends knowing its flows (its next run, if any, is delivered with them).
  redis.call('SREM', base .. K_FLOW_LATE, id)
end

-- Whether complete_jobs must look up the flow fields of jobs their owner called outside any
-- flow: one joined a flow while it ran (flow_attach). Asked once per call.
local function flow_late_any()
  return redis.call('EXISTS', base .. K_FLOW_LATE) == 1
end
