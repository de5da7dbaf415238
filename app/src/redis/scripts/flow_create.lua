--[[
  flow_create: writes a flow's record (KEYS[1] = "<prefix>:{flow:<id>}", a slot of its own;
  ADR 0019) -- before any of its nodes exists, so a crash part-way is rolled forward from it.
  ARGV[5]  idempotency key ('' for none)
  ARGV[6]  nodes by key, JSON {key: {i: position, q: queue, p: [[parent, policy], ...], r: job}, ...}
           (a node's job id is "<flow id>.<key>" unless its `id` says otherwise); a node with
           `x` instead of `r` is an existing job (depends_on naming it: flow_attach joins it)
  ARGV[7]  children by node, JSON {key: [[child key, queue, policy, id?], ...]}
  ARGV[8]  the record's TTL, s (FLOW_RETENTION_S, plus the wait of its latest scheduled root)
  Returns  {1, 'creating'} when written, or {0, state} when the flow exists (nothing written)
]]
local ik = ARGV[5]
local ttl = arg_int(8, 1, 100000000, 'TTL')
local ok, nodes = pcall(cjson.decode, ARGV[6])
if not ok or type(nodes) ~= 'table' or next(nodes) == nil then refuse('nodes must be a non-empty JSON object') end
local ok2, children = pcall(cjson.decode, ARGV[7])
if not ok2 or type(children) ~= 'table' then refuse('children must be a JSON object') end
local fields, count = {}, 0
for k, n in pairs(nodes) do
  if type(k) ~= 'string' or type(n) ~= 'table' or type(n.q) ~= 'string' or (type(n.r) ~= 'table' and n.x ~= 1) then
    refuse('each node needs a queue and a job (or x: an existing job)')
  end
  count = count + 1
  fields[#fields + 1] = 'n:' .. k
  fields[#fields + 1] = cjson.encode(n)
  fields[#fields + 1] = 'c:' .. k
  fields[#fields + 1] = cjson.encode(children[k] or {})
end
local st = redis.call('HGET', base, 'st')
if st then return { 0, st } end
redis.call('HSET', base, 'st', 'creating', 'ca', NOW_S, 'ik', ik, 'nn', count)
for i = 1, #fields, 200 do redis.call('HSET', base, unpack(fields, i, math.min(i + 199, #fields))) end
redis.call('EXPIRE', base, ttl)
return { 1, 'creating' }
