--[[
  edit_payload: replaces the payload of a job that has not started (waiting, queued, scheduled,
  retrying) or has failed, and records the edit on the job: F_EDITS holds JSON {count, by, at,
  previous_sha1} (how many edits, the last one's author and time, and the SHA-1 of the payload
  it replaced). A running or finished job is refused: its worker already has the payload.
  ARGV[5]  id
  ARGV[6]  the new payload (JSON; the caller checks its size)
  ARGV[7]  who edits it (1-200 characters)
  Returns  'edited' | 'not_found' | 'state:<state>'
  Emits     edited
]]
local id, payload, by = ARGV[5], ARGV[6], ARGV[7]
if not id or id == '' then refuse('id is required') end
if not payload or not pcall(cjson.decode, payload) then refuse('payload must be JSON') end
if not by or #by < 1 or #by > 200 then refuse('by must be 1-200 characters') end
local jk = k_job(id)
local h = redis.call('HMGET', jk, F_STATE, F_PAYLOAD, F_EDITS, F_TASK_TYPE)
local st = h[1]
if not st then return 'not_found' end
if st ~= 'waiting' and st ~= 'queued' and st ~= 'scheduled' and st ~= 'retrying' and st ~= 'failed' then
  return 'state:' .. st
end
local count = 0
if h[3] then
  local ok, e = pcall(cjson.decode, h[3])
  if ok and type(e) == 'table' then count = tonumber(e.count) or 0 end
end
local edits = cjson.encode({ count = count + 1, by = by, at = NOW, previous_sha1 = redis.sha1hex(h[2] or '') })
redis.call('HSET', jk, F_PAYLOAD, payload, F_EDITS, edits, F_UPDATED_AT, NOW_S)
emit(id, 'edited', h[4])
return 'edited'
