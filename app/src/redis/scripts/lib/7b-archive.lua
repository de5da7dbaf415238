--[[
  Part 7b of the prelude: a finished job's hold for the archiver let go (docs/decisions/0027) --
  by archive_ack once the job is in PostgreSQL, by archive_off when archiving stops. It gets the
  expiry it would have had at its end (counted from now): a failed or cancelled job its TTL, a
  completed one goes back to pruning through its index (or is deleted now when the completed
  retention is 0). `fin`: the finished_at the archiver wrote (nil: any) -- a job that ended
  again since keeps its hold for its newer entry.
]]
local function arch_release(id, fin)
  local jk = k_job(id)
  local st, fi, ar = unpack(redis.call('HMGET', jk, F_STATE, F_FINISHED_AT, F_ARCHIVE))
  if not ar or (fin and fi ~= fin) then return end
  redis.call('HDEL', jk, F_ARCHIVE)
  if st == 'failed' then
    expire_job(id, FAILED_TTL, FAILED_TTL_S, true)
  elseif st == 'cancelled' then
    expire_job(id, COMPLETED_TTL, COMPLETED_TTL_S, true)
  elseif st == 'completed' and COMPLETED_TTL <= 0 then
    redis.call('DEL', jk, k_logs(id))
  end
end
