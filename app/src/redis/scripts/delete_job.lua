--[[
  delete_job: removes a job in any state and every trace of it (remove_job in the prelude). A
  running job is fenced: its hash is gone, so whatever its worker writes next is rejected as
  stale; its handler is told to stop through the cancel channel. A flow member that has not
  ended is refused: its flow waits on it (cancel it first; its children follow their policies).
  ARGV[5]  id
  ARGV[6]  pub/sub channel that tells workers about cancel requests
  ARGV[7]  queue name (in the published message)
  ARGV[8]  optional: the finished states it may delete, comma-separated (a bulk delete passes
           them, ADR 0033): a job in another state is left alone and answers 'state:<state>'
  Returns  'deleted:<state it had>' | 'not_found' | 'flow:<state>' (a flow member not ended) |
           'state:<state>' (not one of ARGV[8]'s)
  Emits     deleted
]]
local id, channel, queue = ARGV[5], ARGV[6], ARGV[7]
if not id or id == '' then refuse('id is required') end
if not channel or channel == '' or not queue or queue == '' then refuse('channel and queue are required') end
local only = ARGV[8]
if only and only ~= '' then
  for st in string.gmatch(only .. ',', '([^,]*),') do
    if not ({ completed = 1, failed = 1, cancelled = 1 })[st] then
      refuse('ARGV[8] may name finished states only (completed, failed, cancelled): ' .. st)
    end
  end
end
local h = remove_fields(id)
if not h[1] then return 'not_found' end
if only and only ~= '' and not string.find(',' .. only .. ',', ',' .. h[1] .. ',', 1, true) then
  return 'state:' .. h[1]
end
if open_flow_member(h) then return 'flow:' .. h[1] end
remove_job(id, h)
if h[1] == 'active' then redis.call('PUBLISH', channel, queue .. ' ' .. id) end
return 'deleted:' .. h[1]
