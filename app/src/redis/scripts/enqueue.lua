--[[
  enqueue: adds jobs (one or many) to a queue: all of them, or none when one is refused.
  ARGV[5]   number of jobs n
  ARGV[6..] n groups of 12 fields:
            id, task_type, payload, priority, max_retries, timeout_ms,
            due (0: now; a negative number -d: d ms after now; else ms since the epoch),
            idem_hash (''), idempotency_key (''), idem_ttl_s, partition_key (''), extra JSON
            hash fields ('' or a flat JSON array [k, v, ...]: trace, backoff, replay_of; a flow node's
            flow, node and count of parents -- a count above 0 makes the job `waiting` until
            its parents release it, docs/decisions/0019)
            -- or, for a call of plain jobs only, n groups of 5: id, task_type, payload,
            max_retries, timeout_ms (priority normal, due now, no idempotency key, partition
            or extra fields). The number of values says which (5 + 12n or 5 + 5n): the plain
            form spares the caller and Redis 7 values per job (docs/performance.md).
  Returns   per job 1 for a new job (its id is the one sent; the caller rebuilds what was
            stored from what it sent and now: storedFields() in app/src/redis/store.ts, kept in
            step with the HSET below), or {id, 0, hash} when the id or the idempotency key already names a live
            job (nothing is written for it; hash is that job's HGETALL, flat), or when the key
            names a job that has finished and been removed since (hash: what the key recorded
            -- state, finished_at -- and `_removed` '1': the finishing scripts leave
            "<id> <state> <finished at>" in the key; see idem_final in the prelude).
            A job with `dedup` (F_DEDUP among its extra fields, docs/decisions/0021) that an
            earlier job answers gets {id, 0, hash, mode}: that job (debounce: given this payload
            and pushed back), and the dedup mode that answered.
            After the jobs, 'registered' when the queue had no registration mark (it is new, or
            the janitor forgot it): the caller adds it to the registry again.
            Or, writing nothing at all, {'refused', taken, bad}:
              taken  positions (1-based) of jobs whose generated id (all digits: a caller's own
                     id never is) names a live job -- the id counter is behind the data; the
                     caller moves it forward and calls again with fresh ids;
              bad    {position, reason, ...} of jobs that fail the checks below (the library
                     checks the same before it calls) or whose keys hold a foreign value.
  Fails     with DTQ_BAD_CALL on a malformed ARGV, before anything is read; otherwise only in
            its write pass. Every check and every read that can fail comes before the first
            write (reads of keys a job names are protected), and the write pass takes checked
            values only, so an error raised there means a foreign value in one of the queue's
            own keys (or a bug) -- and that the call may have written part of its jobs.
  Emits     queued | scheduled | waiting (per new job)
]]
local n = tonumber(ARGV[5])
if not n or (#ARGV ~= 5 + 12 * n and #ARGV ~= 5 + 5 * n) then
  return redis.error_reply('DTQ_BAD_CALL enqueue: 12 fields per job, or 5 per plain job')
end
-- Values per job: 12, or 5 in a call of plain jobs (FULL false: the rest are their defaults).
-- Read in place below, no function per job (a call returning 12 values cost ~4 %).
local W = #ARGV == 5 + 12 * n and 12 or 5
local FULL = W == 12
local PRIORITY = { high = true, normal = true, low = true }
local EXTRA = { [F_TRACE] = true, [F_BACKOFF] = true, [F_FLOW] = true, [F_FLOW_NODE] = true, [F_FLOW_PENDING] = true,
  [F_DEDUP] = true, [F_START_BY] = true, [F_REPLAY_OF] = true }
-- Values already found good in this call (task types and numbers repeat across a batch).
local good_type, good_count, good_due = {}, { ['0'] = true }, { ['0'] = true }
local function count_ok(s)
  if good_count[s] then return true end
  if string.find(s, '^%d+$') then
    good_count[s] = true
    return true
  end
end

-- A job's fields: a reason when one is wrong, else nil and its decoded extra fields.
local function check(i)
  local id, ttype = ARGV[i], ARGV[i + 1]
  local prio, due = FULL and ARGV[i + 3] or 'normal', FULL and ARGV[i + 6] or '0'
  local max_retries, timeout_ms = ARGV[i + (FULL and 4 or 3)], ARGV[i + (FULL and 5 or 4)]
  local idem_hash, extra = FULL and ARGV[i + 7] or '', FULL and ARGV[i + 11] or ''
  -- (Its characters are the library's check, JOB_ID_PATTERN: any id stays under the queue's
  -- hash tag here, and a check per job is ~4 % of an enqueue's cost in Redis.)
  if id == '' or #id > 128 then return 'id must be 1-128 characters' end
  if not good_type[ttype] then
    if #ttype > 128 or not string.find(ttype, '^[A-Za-z0-9_.:/-]+$') then
      return 'task_type must be 1-128 letters, digits, _ . : / -'
    end
    good_type[ttype] = true
  end
  if not PRIORITY[prio] then return 'priority must be high, normal or low' end
  if not count_ok(max_retries) then return 'max_retries must be a whole number' end
  if not count_ok(timeout_ms) then return 'timeout_ms must be a whole number' end
  if not good_due[due] then
    if not string.find(due, '^%-?%d+$') then return 'due must be a whole number' end
    good_due[due] = true
  end
  if idem_hash ~= '' then
    if not string.find(idem_hash, '^[A-Za-z0-9_-]+$') then return 'idem_hash must be base64url' end
    if ARGV[i + 8] == '' then return 'idempotency_key is missing' end
    if not string.find(ARGV[i + 9], '^[1-9]%d*$') then
      return 'idem_ttl_s must be a positive whole number'
    end
  end
  if extra == '' then return nil end
  local ok, kv = pcall(cjson.decode, extra)
  if not ok or type(kv) ~= 'table' or #kv % 2 ~= 0 then return 'extra must be a flat JSON array of pairs' end
  for x = 1, #kv, 2 do
    if not EXTRA[kv[x]] or type(kv[x + 1]) ~= 'string' then
      return 'extra may set trace, backoff, flow, dedup and start_by fields, as strings'
    end
    if kv[x] == F_FLOW_PENDING and not string.find(kv[x + 1], '^%d+$') then
      return 'the count of parents must be a whole number'
    end
    local fc = flow_control_bad(kv[x], kv[x + 1])
    if fc then return fc end
  end
  return nil, kv
end

-- Pass 1, no writes: check every job, and find those that already exist.
local taken, bad = {}, {}
local extras = {}
-- dup[j] = {id, hash, by_key}: the live job that job j repeats (by idempotency key or id).
local dup = {}
-- Jobs whose generated id (all digits) is to be checked for a live job: after the loop, one
-- EXISTS for all of them (one per job was ~10 % of an enqueue's time in Redis); only when
-- one is live are they looked at one by one, to say which.
local fresh = {}
for j = 1, n do
  local i = 6 + (j - 1) * W
  local why, kv = check(i)
  why = why or dedup_probe(kv)
  if not why then
    extras[j] = kv
    local id = ARGV[i]
    local idem_hash = FULL and ARGV[i + 7] or ''
    local found, by_key
    if idem_hash ~= '' then
      local v = redis.pcall('GET', k_idem(idem_hash))
      if type(v) == 'table' then
        why = 'its idempotency key holds a foreign value'
      elseif v then
        -- "<id>" while the job lives; "<id> <state> <finished at>" once it has finished.
        local first, st, at = string.match(v, '^(%S+) ?(%S*) ?(%S*)')
        -- The key's job only if the live job carries this key: a caller's id may be used again
        -- once its job is removed, and the job under it now is another one.
        if first and redis.call('HGET', k_job(first), F_IDEM_HASH) == idem_hash then
          found, by_key = first, true
        elseif first and st ~= '' then
          -- Finished and removed since (retention): still the same job, answered as far as known.
          dup[j] = { first, { F_STATE, st, F_FINISHED_AT, at, F_CREATED_AT, at, '_removed', '1' }, true }
        end
      end
    end
    -- (A key that answers with its removed job's outcome answers for the id too.)
    if not found and not dup[j] then
      if string.find(id, '^%d+$') then
        fresh[#fresh + 1] = j
      elseif redis.call('EXISTS', k_job(id)) == 1 then
        found = id
      end
    end
    if found and not why then
      local h = redis.pcall('HGETALL', k_job(found))
      if h.err then
        why = 'the key of job ' .. found .. ' holds a foreign value'
      else
        dup[j] = { found, h, by_key }
      end
    end
  end
  if why then
    bad[#bad + 1] = j
    bad[#bad + 1] = why
  end
end
if #fresh > 0 then
  local live, keys = 0, {}
  for x, j in ipairs(fresh) do
    keys[#keys + 1] = k_job(ARGV[6 + (j - 1) * W])
    -- (unpack takes a bounded number of values: 1000 keys a call)
    if #keys == 1000 or x == #fresh then
      live = live + redis.call('EXISTS', unpack(keys))
      keys = {}
    end
  end
  if live > 0 then
    for _, j in ipairs(fresh) do
      if redis.call('EXISTS', k_job(ARGV[6 + (j - 1) * W])) == 1 then taken[#taken + 1] = j end
    end
  end
end
if #bad > 0 or #taken > 0 then return { 'refused', taken, bad } end

-- Pass 2: write. A job repeats one added earlier in this call as it would one added before.
local out = {}
-- The registration mark: gone when the queue is new or was forgotten (forget_queue deletes meta).
-- Read with the created-time index's switch (ADR 0035): one call per enqueue, not per job.
local mark = redis.call('HMGET', k_meta(), 'registered', 'created_index')
local unregistered = not mark[1]
if unregistered then redis.call('HSET', k_meta(), 'registered', '1') end
created_known(mark[2])
local made, made_key = {}, {}
local i = 6
for j = 1, n do
  local id, ttype, payload = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local prio, max_retries, timeout_ms, run_at = 'normal', ARGV[i + 3], ARGV[i + 4], 0
  local idem_hash, idem_key, idem_ttl, partition = '', '', '', ''
  if FULL then
    prio, max_retries, timeout_ms, run_at = ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], tonumber(ARGV[i + 6])
    idem_hash, idem_key, idem_ttl, partition = ARGV[i + 7], ARGV[i + 8], ARGV[i + 9], ARGV[i + 10]
  end
  if run_at < 0 then run_at = NOW - run_at end
  i = i + W

  local d = dup[j]
  local existing, hash, deduped
  if d and d[3] then
    existing, hash = d[1], d[2]
  elseif idem_hash ~= '' and made_key[idem_hash] then
    existing = made_key[idem_hash]
  elseif d then
    existing, hash = d[1], d[2]
  elseif made[id] then
    existing = id
  elseif extras[j] then
    existing, deduped = dedup_enqueue(extras[j], payload, run_at)
    if not existing then run_at, deduped = deduped, nil end
  end

  if existing then
    out[j] = { existing, 0, hash or redis.call('HGETALL', k_job(existing)), deduped }
  else
    -- Further fields: the decoded extras (trace, backoff), then the idempotency key's.
    local more = extras[j]
    if idem_hash ~= '' then
      more = more or {}
      more[#more + 1] = F_IDEMPOTENCY_KEY
      more[#more + 1] = idem_key
      more[#more + 1] = F_IDEM_HASH
      more[#more + 1] = idem_hash
      redis.call('SET', k_idem(idem_hash), id, 'EX', idem_ttl)
      made_key[idem_hash] = id
    end
    create_job(id, ttype, payload, prio, max_retries, timeout_ms, run_at, partition, more)
    if extras[j] then
      dedup_created(extras[j], id)
      deadline_created(extras[j], id)
    end
    made[id] = true
    out[j] = 1
  end
end
if unregistered then out[n + 1] = 'registered' end
return out
