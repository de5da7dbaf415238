--[[
  note_replay: records on a finished job that it was replayed (docs/decisions/0028). The replay
  itself was created by `enqueue` (it carries F_REPLAY_OF, the link that always holds); this is
  the original's side of the link, written after it, in the original's slot -- a replay into
  another queue is another slot, so the two cannot be one script. F_REPLAYS holds JSON
  {count, last = [{job, at}, ...]}: the count of replays and the latest 10, newest first.
  A job that no longer exists is left alone (the hash is never re-created: it would outlive its
  retention). Its TTL, if it has one, is kept (HSET keeps it).
  ARGV[5]  id of the original
  ARGV[6]  the replay, `<queue>/<id>` (1-200 characters)
  Returns  1 (noted) | 0 (no such job)
  Emits    nothing
]]
local id, ref = ARGV[5], ARGV[6]
if not id or id == '' then refuse('id is required') end
if not ref or #ref < 3 or #ref > 200 or not string.find(ref, '^[A-Za-z0-9_.~-]+/[A-Za-z0-9_.-]+$') then
  refuse('replay must be <queue>/<id>')
end
local jk = k_job(id)
local cur = redis.call('HGET', jk, F_REPLAYS)
if not cur and redis.call('EXISTS', jk) == 0 then return 0 end
local count, last = 0, {}
if cur then
  local ok, r = pcall(cjson.decode, cur)
  if ok and type(r) == 'table' then
    count = tonumber(r.count) or 0
    if type(r.last) == 'table' then last = r.last end
  end
end
local out = { { job = ref, at = NOW } }
for i = 1, math.min(#last, 9) do out[#out + 1] = last[i] end
redis.call('HSET', jk, F_REPLAYS, cjson.encode({ count = count + 1, last = out }))
return 1
