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

-- The same for a job whose flow fields the caller has not read.
local function flow_outbox_of(id, outcome, result)
  local h = redis.call('HMGET', k_job(id), F_FLOW, F_FLOW_NODE)
  flow_outbox(id, h[1], h[2], outcome, result)
end
