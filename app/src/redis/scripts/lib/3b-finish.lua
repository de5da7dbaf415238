--[[
  Part 3b of the prelude: the keys a completed job lets go of, as its owner names them
  (complete_jobs): "<idempotency key hash>", then '+' when the job holds a unique dedup key
  (docs/decisions/0021). A job with neither costs nothing here.
]]
local function finish_keys(id, ih, state)
  if string.byte(ih, -1) == 43 then -- '+'
    dedup_release(id)
    ih = string.sub(ih, 1, -2)
    if ih == '' then return end
  end
  idem_final(id, ih, state)
end
