--[[
  flow_create: writes a flow's record (KEYS[1] = "<prefix>:{flow:<id>}", a slot of its own;
  ADR 0019) -- before any of its nodes exists, so a crash part-way is rolled forward from it.
  ARGV[5]  idempotency key ('' for none)
  ARGV[6]  nodes, JSON [{k: key, q: queue, id: job id, p: [[parent, policy], ...], r: record}, ...]
  ARGV[7]  children by node, JSON {key: [[child key, queue, job id, policy], ...]}
  Returns  {1, 'creating'} when written, or {0, state} when the flow exists (nothing written)
]]
local ik = ARGV[5]
local ok, nodes = pcall(cjson.decode, ARGV[6])
if not ok or type(nodes) ~= 'table' or #nodes == 0 then refuse('nodes must be a non-empty JSON array') end
local ok2, children = pcall(cjson.decode, ARGV[7])
if not ok2 or type(children) ~= 'table' then refuse('children must be a JSON object') end
local fields = {}
for _, n in ipairs(nodes) do
  if type(n) ~= 'table' or type(n.k) ~= 'string' or type(n.q) ~= 'string' or type(n.id) ~= 'string' then
    refuse('each node needs k, q and id')
  end
  fields[#fields + 1] = 'n:' .. n.k
  fields[#fields + 1] = cjson.encode(n)
  fields[#fields + 1] = 'c:' .. n.k
  fields[#fields + 1] = cjson.encode(children[n.k] or {})
end
local st = redis.call('HGET', base, 'st')
if st then return { 0, st } end
redis.call('HSET', base, 'st', 'creating', 'ca', NOW_S, 'ik', ik, 'nn', #nodes)
for i = 1, #fields, 200 do redis.call('HSET', base, unpack(fields, i, math.min(i + 199, #fields))) end
return { 1, 'creating' }
