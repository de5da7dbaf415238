--[[
  dlq_delete: deletes dead-lettered jobs, by id or everything that failed before a time.
  ARGV[5]   mode: 'ids', 'before' or 'before_prio'
  ARGV[6]   'ids': number of ids n, then n ids in ARGV[7..]
            'before': ms; deletes at most ARGV[7] of the oldest entries failed before it
            'before_prio': ms; examines at most ARGV[7] of the oldest entries failed before it
            and after entry ARGV[9] ('' = from the start), deleting those whose job has
            priority ARGV[8] (a job without one is normal; other entries stay)
  Returns   number of jobs deleted (a racing second delete of a job gets 0; an entry whose job
            is already gone is removed without being counted); 'before_prio': { deleted, last
            entry examined ('' when none: done) }
  Emits     deleted
]]
local deleted = 0
local function drop(id, dlq_entry)
  redis.call('XDEL', k_dlq, dlq_entry)
  local st = redis.call('HGET', k_job(id), F_STATE)
  if st == 'failed' then
    redis.call('DEL', k_job(id), k_logs(id))
    redis.call('ZREM', k_idx('failed'), id)
    created_drop({ id })
    emit(id, 'deleted', '')
    deleted = deleted + 1
  end
end

if ARGV[5] == 'ids' then
  local n = arg_int(6, 0, 100000, 'number of ids')
  for j = 1, n do
    local id = ARGV[6 + j]
    local h = redis.call('HMGET', k_job(id), F_STATE, F_DLQ_ENTRY)
    if h[1] == 'failed' and h[2] then drop(id, h[2]) end
  end
elseif ARGV[5] == 'before_prio' then
  local before = string.format('%d', arg_int(6, 0, 1e15, 'before'))
  local count, prio = arg_int(7, 1, 100000, 'count'), ARGV[8]
  local from = (ARGV[9] or '') == '' and '-' or '(' .. ARGV[9]
  local entries = redis.call('XRANGE', k_dlq, from, '(' .. before .. '-0', 'COUNT', count)
  for _, e in ipairs(entries) do
    local id = e[2][2]
    if (redis.call('HGET', k_job(id), F_PRIORITY) or 'normal') == prio then drop(id, e[1]) end
  end
  return { deleted, #entries < count and '' or entries[#entries][1] }
else
  local before = string.format('%d', arg_int(6, 0, 1e15, 'before'))
  local entries = redis.call('XRANGE', k_dlq, '-', '(' .. before .. '-0', 'COUNT', arg_int(7, 1, 100000, 'count'))
  for _, e in ipairs(entries) do drop(e[2][2], e[1]) end
end
return deleted
