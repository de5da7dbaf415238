--[[
  Part 2c of the prelude: flow control (docs/decisions/0022) -- rate limits, concurrency caps,
  per-key ordering and circuit breakers, enforced where jobs start (deliver) and released where
  they stop (the move hook), all in the queue's slot, so every worker of the fleet obeys them.

  The limits live in the hash <base>:limits (written only by set_limits):
    rate             "N W"   at most N starts per W ms in the queue
    conc             "N"     at most N running at once in the queue
    key              "N"     at most N running at once per partition_key (1: FIFO per key)
    t:<type>:rate    "N W"   the same per task type (within this queue)
    t:<type>:conc    "N"
    t:<type>:cb      "F C"   breaker: open after F consecutive failures, probe after C ms
    t:<type>:pause   "<ms>"  the type is paused until then (a handler reported an upstream 429)
  State, under <base>:fc:
    cs:q, cs:t:<type>, ks:<key>   slot sets: the ids holding a slot (running, or granted one)
    ch:q, ch:t:<type>, kh:<key>   held lists: ids waiting for a slot of that set, FIFO
    tat:q, tat:t:<type>           rate: the GCRA theoretical arrival time (ms)
    cb:<type>                     breaker: s (closed|open|half), f (consecutive failures),
                                  u (open until), p (the half-open probe's id)
    lists                         the held lists in use (set_limits re-grants them)
  A job over a slot limit waits `held` in the list of the first full set, with no stream entry;
  a job over a rate limit, or of an open breaker, waits `scheduled` until the time it may start
  (a rate limit reserves that start for it: it is parked once, not re-checked). Neither costs an
  attempt (attempts count starts). Concurrency slots are held while running (or granted and on
  the way), released whenever the job leaves `active`, and given up when it is parked; a key's
  slot is held from its first start until the job ends (a retry keeps its place). A job whose
  slot record is lost (its hash removed) is healed out of the set when the set looks full.
]]
-- Only what other parts and scripts use is visible outside this block (a Lua function has
-- at most 200 locals, and the prelude's are all in one).
local fc_conf, fc_set_of, fc_grant, fc_breaker_conf, fc_gate
do
  local FC_TERMINAL = { completed = true, failed = true, cancelled = true }

  fc_conf = function()
    if FC_CONF == nil then
      local h = redis.call('HGETALL', base .. K_LIMITS)
      if #h == 0 then
        FC_CONF = false
      else
        FC_CONF = {}
        for i = 1, #h, 2 do FC_CONF[h[i]] = h[i + 1] end
      end
    end
    return FC_CONF
  end

  local function fc_key(suffix) return base .. K_FC .. suffix end

  -- The limit of a slot set ('cs:q', 'cs:t:<type>', 'ks:<key>'); nil when none is set now.
  local function fc_set_limit(c, set)
    if not c then return nil end
    local kind, scope = string.sub(set, 1, 2), string.sub(set, 4)
    if kind == 'ks' then return tonumber(c.key) end
    if scope == 'q' then return tonumber(c.conc) end
    return tonumber(c[scope .. ':conc'])
  end

  -- The held list of a slot set, and back.
  local function fc_list_of(set) return (string.sub(set, 1, 1) == 'k' and 'kh' or 'ch') .. string.sub(set, 3) end
  fc_set_of = function(list) return (string.sub(list, 1, 1) == 'k' and 'ks' or 'cs') .. string.sub(list, 3) end

  local function fc_slots_of(raw)
    if not raw then return {} end
    local ok, v = pcall(cjson.decode, raw)
    return (ok and type(v) == 'table') and v or {}
  end

  local function fc_write_slots(jk, slots)
    if #slots == 0 then redis.call('HDEL', jk, F_FC_SLOTS)
    else redis.call('HSET', jk, F_FC_SLOTS, cjson.encode(slots)) end
  end

  -- The set's size, after removing members that no longer hold it (their hash gone, or their
  -- slot record lost) -- checked only when the set looks full, at most once a second per set.
  local function fc_card(set, limit)
    local k = fc_key(set)
    local n = redis.call('SCARD', k)
    if n < limit then return n end
    if not redis.call('SET', fc_key('heal:' .. set), '1', 'NX', 'PX', 1000) then return n end
    for _, id in ipairs(redis.call('SMEMBERS', k)) do
      local held = false
      for _, s in ipairs(fc_slots_of(redis.call('HGET', k_job(id), F_FC_SLOTS))) do
        if s == set then held = true end
      end
      if not held then
        redis.call('SREM', k, id)
        bump('fc_healed')
      end
    end
    return redis.call('SCARD', k)
  end

  -- Gives free slots of `set` to the jobs first in its held list: each goes back to its ready
  -- stream holding the slot (so a later job cannot overtake it). Ids that left the list's wait
  -- meanwhile (cancelled) are skipped. With no limit any more, the whole list goes.
  fc_grant = function(set)
    local list = fc_list_of(set)
    local limit = fc_set_limit(fc_conf(), set)
    -- Found empty earlier in this call and nothing pushed since: nothing to give (a batch of
    -- completions in a capped queue reads its held list once, not once per job).
    if FC_EMPTY and FC_EMPTY[list] then return end
    local lk, sk = fc_key(list), fc_key(set)
    while not limit or redis.call('SCARD', sk) < limit do
      local id = redis.call('LPOP', lk)
      if not id then
        redis.call('SREM', fc_key('lists'), list)
        FC_EMPTY = FC_EMPTY or {}
        FC_EMPTY[list] = true
        break
      end
      local jk = k_job(id)
      local h = redis.call('HMGET', jk, F_STATE, F_FC_HELD, F_PRIORITY, F_FC_SLOTS, F_TASK_TYPE)
      if h[1] == 'held' and h[2] == list then
        local slots = fc_slots_of(h[4])
        if limit then
          redis.call('SADD', sk, id)
          slots[#slots + 1] = set
        end
        fc_write_slots(jk, slots)
        redis.call('HSET', jk, F_STATE, 'queued', F_ENTRY, push_ready(id, h[3]), F_QUEUED_AT, NOW_S)
        redis.call('HDEL', jk, F_FC_HELD)
        idx_op('held', id, false)
        emit(id, 'queued', h[5])
      end
    end
  end

  -- Gives up the slots in `slots` that `drop` selects; returns the ones kept.
  local function fc_release(id, slots, drop)
    local kept = {}
    for _, set in ipairs(slots) do
      if drop(set) then
        redis.call('SREM', fc_key(set), id)
        fc_grant(set)
      else
        kept[#kept + 1] = set
      end
    end
    return kept
  end

  local function fc_is_conc(set) return string.sub(set, 1, 2) == 'cs' end

  -- ---- the breaker ----------------------------------------------------------------------------

  fc_breaker_conf = function(c, ttype)
    local raw = c and c['t:' .. ttype .. ':cb']
    if not raw then return nil end
    local f, cd = string.match(raw, '^(%d+) (%d+)$')
    return tonumber(f), tonumber(cd)
  end

  -- nil: the job may start; else the time to look again.
  local function fc_breaker_wait(id, ttype, cooldown)
    local k = fc_key('cb:' .. ttype)
    local h = redis.call('HMGET', k, 's', 'u', 'p')
    if h[1] == 'open' then
      local u = tonumber(h[2]) or 0
      if NOW < u then return u end
      redis.call('HSET', k, 's', 'half', 'p', id)
      return nil
    elseif h[1] == 'half' then
      if h[3] == id then return nil end
      local ps = h[3] and redis.call('HGET', k_job(h[3]), F_STATE)
      if ps and not FC_TERMINAL[ps] then return NOW + math.min(cooldown, 1000) end
      -- The probe ended without an outcome (cancelled, removed): this job probes instead.
      redis.call('HSET', k, 'p', id)
    end
    return nil
  end

  local function fc_breaker_outcome(ttype, ok, threshold, cooldown)
    local k = fc_key('cb:' .. ttype)
    if ok then
      local s = redis.call('HGET', k, 's')
      if s and s ~= 'closed' then
        redis.call('HSET', k, 's', 'closed', 'f', '0')
        redis.call('HDEL', k, 'u', 'p')
        bump('breaker_closed')
      elseif s then
        redis.call('HSET', k, 'f', '0')
      end
      return
    end
    local f = redis.call('HINCRBY', k, 'f', 1)
    local s = redis.call('HGET', k, 's')
    if s == 'half' or (s ~= 'open' and f >= threshold) then
      redis.call('HSET', k, 's', 'open', 'u', NOW + cooldown)
      redis.call('HDEL', k, 'p')
      bump('breaker_opened')
    elseif not s then
      redis.call('HSET', k, 's', 'closed')
    end
  end

  -- ---- the move hook ----------------------------------------------------------------------------

  -- Gives back what a job's move out of `active` (its concurrency slots), or its end (every
  -- slot), frees -- and a granted job's slot when it is sent back to wait (queued -> scheduled:
  -- a debounce of a job on its way), so no waiting job holds one.
  fc_moved = function(id, from, to)
    if from ~= 'active' and not FC_TERMINAL[to] and not (from == 'queued' and to == 'scheduled') then return end
    local c = fc_conf()
    if not c then return end
    local jk = k_job(id)
    local h = redis.call('HMGET', jk, F_FC_SLOTS, F_TASK_TYPE)
    if from == 'active' and h[2] then
      local threshold, cooldown = fc_breaker_conf(c, h[2])
      if threshold then
        if to == 'completed' then fc_breaker_outcome(h[2], true)
        elseif to == 'retrying' or to == 'failed' then fc_breaker_outcome(h[2], false, threshold, cooldown) end
      end
    end
    if not h[1] then return end
    local terminal = FC_TERMINAL[to]
    fc_write_slots(jk, fc_release(id, fc_slots_of(h[1]), function(set) return terminal or fc_is_conc(set) end))
  end

  -- ---- parking ----------------------------------------------------------------------------------

  -- Out of its stream (the caller acks the entry), concurrency slots given up (a parked job must
  -- not sit on one: two parked jobs could each hold what the other waits for).
  local function fc_unslot(id, jk, slots)
    fc_write_slots(jk, fc_release(id, slots, fc_is_conc))
    redis.call('HDEL', jk, F_ENTRY)
  end

  local function fc_park_held(id, jk, ttype, slots, list)
    fc_unslot(id, jk, slots)
    redis.call('HSET', jk, F_STATE, 'held', F_FC_HELD, list, F_UPDATED_AT, NOW_S)
    redis.call('HDEL', jk, F_FC_RATE_AT)
    redis.call('RPUSH', fc_key(list), id)
    if FC_EMPTY then FC_EMPTY[list] = nil end
    redis.call('SADD', fc_key('lists'), list)
    idx_op('held', id, true)
    emit(id, 'held', ttype)
    bump('fc_held')
  end

  local function fc_park_until(id, jk, ttype, slots, at, why, reserved)
    fc_unslot(id, jk, slots)
    redis.call('HSET', jk, F_STATE, 'scheduled', F_RUN_AT, at, F_FC_HELD, why, F_UPDATED_AT, NOW_S)
    if reserved then redis.call('HSET', jk, F_FC_RATE_AT, at) else redis.call('HDEL', jk, F_FC_RATE_AT) end
    redis.call('ZADD', k_delayed, at, id)
    idx_op('scheduled', id, true)
    emit(id, 'scheduled', ttype)
    bump('fc_deferred')
  end

  -- ---- the gate ---------------------------------------------------------------------------------

  -- The rate scopes of a job: {tat key, N, W}.
  local function fc_rates(c, ttype)
    local out = {}
    for _, f in ipairs({ 't:' .. ttype .. ':rate', 'rate' }) do
      local raw = c[f]
      if raw then
        local n, w = string.match(raw, '^(%d+) (%d+)$')
        out[#out + 1] = { fc_key(f == 'rate' and 'tat:q' or 'tat:t:' .. ttype), tonumber(n), tonumber(w) }
      end
    end
    return out
  end

  -- Decides whether job `id`, just read from its stream, may start now. Returns true (it may:
  -- its slots are taken) or false (it was parked: held, or scheduled for later). Costs one
  -- HGETALL per call in a queue without limits. The job's partition key, slots, reserved rate
  -- start and held mark come as the caller read them from its hash in this call.
  fc_gate = function(id, jk, ttype, pkey, slots_raw, rate_at, held)
    local c = fc_conf()
    if not c then return true end
    local h = { pkey, slots_raw, rate_at, held }
    local slots = fc_slots_of(h[2])
    local has = {}
    for _, s in ipairs(slots) do has[s] = true end

    local pause = tonumber(c['t:' .. ttype .. ':pause'])
    if pause then
      if NOW < pause then
        fc_park_until(id, jk, ttype, slots, pause, 'paused')
        return false
      end
      redis.call('HDEL', base .. K_LIMITS, 't:' .. ttype .. ':pause')
    end
    local _, cooldown = fc_breaker_conf(c, ttype)
    if cooldown then
      local wait = fc_breaker_wait(id, ttype, cooldown)
      if wait then
        fc_park_until(id, jk, ttype, slots, wait, 'breaker')
        return false
      end
    end

    -- Slots: the key's first (order), then the type's and the queue's caps.
    local want = {}
    local sets = {}
    if c.key and h[1] then sets[#sets + 1] = 'ks:' .. h[1] end
    if c['t:' .. ttype .. ':conc'] then sets[#sets + 1] = 'cs:t:' .. ttype end
    if c.conc then sets[#sets + 1] = 'cs:q' end
    for _, set in ipairs(sets) do
      if not has[set] then
        local limit = fc_set_limit(c, set)
        local list = fc_list_of(set)
        local card = fc_card(set, limit)
        local waiting = not (FC_EMPTY and FC_EMPTY[list]) and redis.call('LLEN', fc_key(list)) > 0
        if waiting or card >= limit then
          -- Behind those already waiting (none overtakes); free slots (a healed set) go to them.
          fc_park_held(id, jk, ttype, slots, list)
          if card < limit then fc_grant(set) end
          return false
        end
        want[#want + 1] = set
      end
    end

    -- Rates (GCRA): start now if every scope allows it, else at the earliest time all do --
    -- that start reserved in each, so the job is parked once.
    local rr = tonumber(h[3])
    if not (rr and rr <= NOW) then
      local rates = fc_rates(c, ttype)
      if #rates > 0 then
        local at = NOW
        local tats = {}
        FC_TAT = FC_TAT or {}
        for i, r in ipairs(rates) do
          local t = (1.0 * r[3]) / r[2]
          local known = FC_TAT[r[1]]
          local tat = math.max(known and known[1] or tonumber(redis.call('GET', r[1])) or 0, NOW)
          tats[i] = { tat, t }
          at = math.max(at, tat - (r[3] - t))
        end
        -- Written at flush (one SET per scope per call); the window sets the key's expiry.
        for i, r in ipairs(rates) do
          FC_TAT[r[1]] = { math.max(tats[i][1], at) + tats[i][2], r[3] }
        end
        if at > NOW then
          fc_park_until(id, jk, ttype, slots, math.ceil(at), 'rate', true)
          return false
        end
      end
    end

    for _, set in ipairs(want) do
      redis.call('SADD', fc_key(set), id)
      slots[#slots + 1] = set
    end
    if #want > 0 then fc_write_slots(jk, slots) end
    if h[3] or h[4] then redis.call('HDEL', jk, F_FC_RATE_AT, F_FC_HELD) end
    return true
  end
end
