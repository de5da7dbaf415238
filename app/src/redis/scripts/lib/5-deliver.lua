--[[
  Part 5 of the prelude: delivering jobs (the `deliver` and `fetch` scripts).
]]
-- Reads up to `want` ready jobs for `consumer`, high priority first, and starts them
-- (queued -> active) in the same step, so a delivered entry always has an active job with a
-- fresh epoch (the fencing token of this delivery). Returns {jobs, tails}: jobs is one JSON
-- string, an array whose first row holds the pairs the start set alike in every job of the
-- call (state, worker, started_at), then a row per started job: its hash's field/value pairs
-- as stored, then the pairs its start changed (epoch, attempts, the entry id when the hash held
-- its sequence alone) and the id; a reader applies a job's row, then the first row (later pairs
-- win) -- or an empty array when none started; tails,
-- when fewer than `want` were found, is the last entry id of each priority stream ('0-0' if
-- empty): XREAD BLOCK from there wakes on the next job.
local function read_group(s, consumer, n)
  local ok = redis.pcall('XREADGROUP', 'GROUP', GROUP, consumer, 'COUNT', n, 'STREAMS', s, '>')
  if type(ok) == 'table' and ok.err then
    -- NOGROUP: the group (or stream) does not exist yet; the group starts at 0 so no entry is skipped.
    redis.call('XGROUP', 'CREATE', s, GROUP, '0', 'MKSTREAM')
    ok = redis.call('XREADGROUP', 'GROUP', GROUP, consumer, 'COUNT', n, 'STREAMS', s, '>')
  end
  if not ok then return {} end
  return ok[1][2]
end

-- Reads per priority stream per call while entries are parked by flow control (2c-limits.lua)
-- instead of started: up to this many reads, then the worker is told to come back at once.
local DELIVER_ROUNDS = 8

local function deliver_jobs(consumer, want)
  -- Row 1: what every start of this call sets alike (sent once, not once per job: ~2 % of a call).
  local jobs = { { F_STATE, 'active', F_WORKER, consumer, F_STARTED_AT, NOW_S } }
  local more = false
  -- Whether the queue has limits (read once per call either way): without, no gate per job.
  local fc_on = fc_conf() and true
  for _, prio in ipairs(PRIORITIES) do
    local s = k_stream(prio)
    local rounds = 0
    while want > 0 do
      if rounds == DELIVER_ROUNDS then
        more = true
        break
      end
      rounds = rounds + 1
      local asked = want
      local batch = read_group(s, consumer, asked)
      for _, e in ipairs(batch) do
        local entry, fields = e[1], e[2]
        local id = fields[2]
        local jk = k_job(id)
        -- The whole hash, flat (a waiting job holds only the fields that say something: fewer
        -- values cross into Lua than with an HMGET of every field a job may have).
        local h = redis.call('HGETALL', jk)
        -- The few fields this start needs, by a scan (no table built per job).
        local state, jentry, epoch, attempts, ttype, queued_at, created_at, cancel, start_by
        local pkey, fc_slots, fc_rate_at, fc_held -- for flow control (fc_gate)
        for x = 1, #h, 2 do
          local f = h[x]
          if f == F_STATE then state = h[x + 1]
          elseif f == F_ENTRY then jentry = h[x + 1]
          elseif f == F_TASK_TYPE then ttype = h[x + 1]
          elseif f == F_CREATED_AT then created_at = h[x + 1]
          elseif f == F_EPOCH then epoch = h[x + 1]
          elseif f == F_ATTEMPTS then attempts = h[x + 1]
          elseif f == F_QUEUED_AT then queued_at = h[x + 1]
          elseif f == F_CANCEL_REQUESTED then cancel = h[x + 1]
          elseif f == F_START_BY then start_by = h[x + 1]
          elseif f == F_PARTITION_KEY then pkey = h[x + 1]
          elseif f == F_FC_SLOTS then fc_slots = h[x + 1]
          elseif f == F_FC_RATE_AT then fc_rate_at = h[x + 1]
          elseif f == F_FC_HELD then fc_held = h[x + 1]
          end
        end
        -- A new job's hash may hold its entry's sequence alone (ADR 0037): the start stores it whole,
        -- so a running job's `en` is always the entry id (complete and the rest read it as is).
        local short = jentry ~= entry and entry_of(jentry, created_at) == entry
        if state ~= 'queued' or (jentry ~= entry and not short) then
          -- An entry whose job is gone or has moved on: drop it, and count it.
          ack(prio, entry)
          bump('orphan_entries')
        elseif cancel == '1' then
          -- A cancel request outlives whatever path brought the job back: it never runs again.
          ack(prio, entry)
          cancel_job(id, 'queued', ttype)
        elseif start_by and tonumber(start_by) < NOW then
          -- Not started by its deadline: ended instead of started, no attempt counted (ADR 0021);
          -- before the limits, so an expired job never takes a slot or a token.
          ack(prio, entry)
          expire_unstarted(id, 'queued', ttype, start_by)
        elseif fc_on and not fc_gate(id, jk, ttype, pkey, fc_slots, fc_rate_at, fc_held) then
          -- Over a limit: parked (held, or scheduled for when it may start), entry consumed.
          ack(prio, entry)
        else
          -- One HSET: the new epoch (this delivery's fencing token) and attempt count included.
          epoch = int_s((tonumber(epoch) or 0) + 1)
          attempts = int_s((tonumber(attempts) or 0) + 1)
          if short then
            redis.call('HSET', jk, F_STATE, 'active', F_WORKER, consumer, F_STARTED_AT, NOW_S, F_EPOCH, epoch,
              F_ATTEMPTS, attempts, F_ENTRY, entry)
          else
            redis.call('HSET', jk, F_STATE, 'active', F_WORKER, consumer, F_STARTED_AT, NOW_S, F_EPOCH, epoch,
              F_ATTEMPTS, attempts)
          end
          observe('wait', NOW - (tonumber(queued_at or created_at) or NOW))
          emit(id, 'active', ttype)
          -- The job as stored now: its fields as read, then what this start changed for it alone
          -- (later pairs win; row 1 holds the rest); all the started jobs are packed into one JSON
          -- string at the end -- every value returned from a function on its own costs ~0.5 µs of
          -- conversion, cjson packs them in C, and once per call rather than per job saves ~2 %
          -- more (docs/performance.md).
          local n = #h
          h[n + 1], h[n + 2] = F_EPOCH, epoch
          h[n + 3], h[n + 4] = F_ATTEMPTS, attempts
          h[n + 5], h[n + 6] = 'id', id
          if short then h[n + 7], h[n + 8] = F_ENTRY, entry end
          jobs[#jobs + 1] = h
          want = want - 1
        end
      end
      if #batch < asked then break end
    end
  end
  local tails = {}
  if want > 0 then
    for p, prio in ipairs(PRIORITIES) do
      -- '0-0' when entries may be left unread (all parked this call): XREAD answers at once.
      local last = not more and redis.call('XREVRANGE', k_stream(prio), '+', '-', 'COUNT', 1)
      tails[p] = last and last[1] and last[1][1] or '0-0'
    end
  end
  return { #jobs > 1 and cjson.encode(jobs) or {}, tails }
end
