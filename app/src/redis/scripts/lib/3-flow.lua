--[[
  Part 3a of the prelude: the flow outbox (docs/decisions/0019). A flow member's finishing
  script appends what became of it to its queue's outbox, in the same call as the state change:
  the releaser (app/src/redis/flows.ts) carries it to the children, whose slots this script
  cannot reach on a Cluster. The entry carries the member's children (`c`, the JSON list the
  flow's record holds under `c:<node>`), read from the member's own hash (F_FLOW_CHILDREN, or its
  F_FLOW_WATCH entry; written by flow_attach once the flow's nodes exist): its release does not
  depend on the record, which expires FLOW_RETENTION_S after the flow's last release -- a
  parent that waits longer to end (a backlog, a long retry delay, a stay in the DLQ) still
  releases its children.
]]
-- `flow` and `node` as read from the job's hash (false for a job outside any flow); `kids` its
-- children there, JSON (nil or '' when the job holds none: a member from before they were
-- stored, whose releaser reads the record).
local function flow_outbox(id, flow, node, outcome, result, kids)
  if not flow then return end
  if kids and kids ~= '' then
    redis.call('XADD', base .. K_FLOW_OUT, '*', 'f', flow, 'n', node or '', 'j', id, 'o', outcome, 'r', result or '',
      'c', kids)
  else
    redis.call('XADD', base .. K_FLOW_OUT, '*', 'f', flow, 'n', node or '', 'j', id, 'o', outcome, 'r', result or '')
  end
end

-- The same for a job whose flow fields the caller has not read -- and for each further flow
-- it is a parent in (F_FLOW_WATCH, JSON [[flow, node, children JSON], ...]: an existing job
-- named in a later job's depends_on while it was already a member of another flow).
local function flow_outbox_of(id, outcome, result)
  local h = redis.call('HMGET', k_job(id), F_FLOW, F_FLOW_NODE, F_FLOW_WATCH, F_FLOW_CHILDREN)
  if not h[1] then return end
  flow_outbox(id, h[1], h[2], outcome, result, h[4])
  if h[3] then
    local ok, list = pcall(cjson.decode, h[3])
    if ok and type(list) == 'table' then
      for _, w in ipairs(list) do
        flow_outbox(id, w[1], w[2], outcome, result, type(w[3]) == 'string' and w[3] or nil)
      end
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
