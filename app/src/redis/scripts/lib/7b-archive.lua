--[[
  Part 7b of the prelude: a failed or cancelled job's hold for the archiver let go (docs/decisions/0027)
  -- by archive_ack once the job is in PostgreSQL, by archive_off when archiving stops. It gets
  the expiry it would have had at its end (counted from now). The mark (F_ARCHIVE) holds the
  finished_at of the end it waits for: `fin` and `st` are the finished_at and state the archiver
  wrote (nil: any end, read here) -- a job that ended again since keeps its hold for its newer
  entry. The expiry follows the job's state now, not the archiver's: a job retried since the
  archiver read it (requeue keeps the mark until the job ends again) is live and gets none --
  it would otherwise expire while queued or running. (Completed jobs have no mark: the
  watermark holds them, ADR 0031.) ARCHIVE_RELEASE_LIVE is false only in the negative control.
]]
local function arch_release(id, fin, st)
  local jk = k_job(id)
  local now, ar = unpack(redis.call('HMGET', jk, F_STATE, F_ARCHIVE))
  if not ar or (fin and ar ~= fin) then return end
  redis.call('HDEL', jk, F_ARCHIVE)
  if ARCHIVE_RELEASE_LIVE or not st then st = now end
  if st == 'failed' then
    expire_job(id, FAILED_TTL, FAILED_TTL_S, true)
  elseif st == 'cancelled' then
    expire_job(id, COMPLETED_TTL, COMPLETED_TTL_S, true)
  end
end
