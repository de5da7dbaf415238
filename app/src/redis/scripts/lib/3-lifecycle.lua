--[[
  Part 3 of the prelude: the moves every state change shares -- retention pruning, the
  idempotency outcome, dead-lettering, cancelling, requeueing.
]]
-- Completed jobs carry no TTL (no EXPIRE call per completion, no expires-dict entry): the
-- completed index, scored by finish time, is their expiry list (docs/decisions/0010). Removes
-- up to `limit` jobs completed more than the retention ago -- hash, logs, index entry --
-- deleting a hash only if it still holds a completed job (an id can be reused once its job is
-- gone). Every call that completes jobs runs it first (for up to twice as many as it completes,
-- so removal keeps pace with completion); the janitor runs it for queues gone quiet.
local function prune_completed(limit)
  -- While the queue is archived, retention stops at the watermark: a job whose end the archiver
  -- has not written yet stays, with its index entry (ADR 0031; with a retention of 0 the
  -- completed jobs wait in the index for it). One read per call, none per job.
  local hold = ARCHIVE_HOLD and arch_on()
  if limit <= 0 or (COMPLETED_TTL <= 0 and not hold) then return 0 end
  local bound = NOW - COMPLETED_TTL * 1000
  if hold then
    local low = arch_low()
    if low and low < bound then bound = low end
  end
  local idx = k_idx('completed')
  local old = redis.call('ZRANGE', idx, '-inf', string.format('(%d', bound), 'BYSCORE', 'LIMIT', 0, limit)
  if #old == 0 then return 0 end
  local dels, gone = {}, {}
  for _, id in ipairs(old) do
    local jk = k_job(id)
    if redis.call('HGET', jk, F_STATE) == 'completed' then
      dels[#dels + 1] = jk
      dels[#dels + 1] = k_logs(id)
      gone[#gone + 1] = id
    end
  end
  for i = 1, #dels, 1000 do redis.call('DEL', unpack(dels, i, math.min(i + 999, #dels))) end
  created_drop(gone)
  call_many('ZREM', idx, old, 1000)
  return #old
end

-- A job with an idempotency key leaves its outcome in that key when it finishes ("<id>
-- <state> <finished at>", the key's TTL kept; XX: never recreate an expired key), so a repeat
-- within IDEMPOTENCY_TTL_S is answered with the original job even after retention removed it.
local function idem_final(id, ih, state)
  if ih then redis.call('SET', k_idem(ih), id .. ' ' .. state .. ' ' .. NOW_S, 'XX', 'KEEPTTL') end
end

-- Dead-letters a job that is leaving `from` (its stream entry already handled by the caller).
-- `class`: the failure's error class (F_ERROR_CLASS; the DLQ groups and metrics count by it).
local function dead_letter(id, from, ttype, message, attempts, class)
  local jk = k_job(id)
  -- The entry id carries the (passed-in) failure time, so purging by age is an XRANGE by id.
  -- Ids only grow: a NOW behind the stream's top id (that of an entry since deleted, too) gets
  -- the next id after it instead (an XADD below the top fails).
  local fields = { 'id', id, 'type', ttype or '', 'error', message, 'attempts', attempts or '0', 'failed_at', NOW_S }
  local dlq_entry = redis.pcall('XADD', k_dlq, NOW_S .. '-*', unpack(fields))
  if type(dlq_entry) == 'table' then dlq_entry = redis.call('XADD', k_dlq, '*', unpack(fields)) end
  finish_hset(jk, F_STATE, 'failed', F_ERROR, message, F_ERROR_CLASS, class, F_FINISHED_AT, NOW_S,
    F_UPDATED_AT, NOW_S, F_DLQ_ENTRY, dlq_entry)
  local ih, prio = unpack(redis.call('HMGET', jk, F_IDEM_HASH, F_PRIORITY))
  move_idx(id, from, 'failed')
  bump_typed('failed', ttype)
  bump_typed2('ef', ttype, class)
  bump_typed2('dp', ttype, prio or 'normal')
  throughput('failed')
  emit(id, 'failed', ttype)
  idem_final(id, ih, 'failed')
  dedup_release(id)
  flow_outbox_of(id, 'failed')
  expire_job(id, FAILED_TTL, FAILED_TTL_S)
end

local function cancel_job(id, from, ttype)
  local jk = k_job(id)
  finish_hset(jk, F_STATE, 'cancelled', F_FINISHED_AT, NOW_S, F_UPDATED_AT, NOW_S)
  redis.call('HDEL', jk, F_CANCEL_REQUESTED)
  move_idx(id, from, 'cancelled')
  bump_typed('cancelled', ttype)
  emit(id, 'cancelled', ttype)
  idem_final(id, redis.call('HGET', jk, F_IDEM_HASH), 'cancelled')
  dedup_release(id)
  flow_outbox_of(id, 'cancelled')
  expire_job(id, COMPLETED_TTL, COMPLETED_TTL_S)
end

-- Back to the ready stream (hand-back, reclaim, retry from the DLQ). Bumping the epoch fences
-- out whoever held the job before.
local function requeue(id, from, prio, ttype, event)
  local entry = push_ready(id, prio)
  redis.call('HINCRBY', k_job(id), F_EPOCH, 1)
  redis.call('HSET', k_job(id), F_STATE, 'queued', F_ENTRY, entry, F_UPDATED_AT, NOW_S, F_QUEUED_AT, NOW_S)
  move_idx(id, from, 'queued')
  emit(id, event or 'queued', ttype)
  return entry
end
