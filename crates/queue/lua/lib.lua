-- lib.lua: shared functions, prepended to every transition script at load time.
--
-- Layout of one partition (every key starts with the partition prefix P, which carries the
-- partition's hash tag, so all of them live in one cluster slot):
--   P.."meta"   HASH  seq (slab id counter), fence (token counter), sched (jobs in slabs),
--                     throttle (ms, claim nothing before), cap (max leased jobs, 0 = none)
--   P.."ix"     ZSET  slab id -> bound (ms): the smallest due in the slab (kept exact by
--                     promote and removals); bounds are unique, and every due of a slab is
--                     below the next slab's bound
--   P.."s:"..n  LIST  one slab: elements member .. due (6 bytes); at most SLAB_FILL of them
--                     (one listpack node), unsorted
--   P.."t:"..b  HASH  table bucket b (a hash of the customer): call id (16 bytes) ->
--                     due (6 bytes, big-endian ms) .. customer reference
--   P.."ready"  ZSET  promoted (due) jobs: member -> due
--   P.."lease"  ZSET  claimed jobs: member -> lease expiry (ms)
--   P.."jobs"   HASH  claimed jobs: call id -> "token:attempt:due:flags" (flags: - d c dc)
--   P.."att"    HASH  call id -> attempts consumed (only while > 0)
--   P.."dead"   ZSET  dead jobs: member -> time of death
--   P.."rec"    ZSET  jobs to reconcile (lease expired after dial intent): member -> time
--   P.."why"    HASH  call id -> reason (dead and reconcile)
--   P.."dfr"    HASH  call id -> "1": handed back (deferred) at least once, not finished
--   P.."dpm"    HASH  10 s bucket (now / 10000) -> dial marks in it (the last two minutes)
-- A member is the call id (16 raw bytes) followed by the table bucket (2 bytes, big-endian).
-- Slab and table keys are derived from P inside the scripts; they share P's hash tag (a
-- deviation from STYLE.md, kept on purpose: crates/queue/README.md says why, with figures).

-- A slab is a LIST of elements member .. due (6 bytes, big-endian ms), in no particular
-- order: enqueue appends a run of elements with one RPUSH, whose reply (the new length) is
-- all it needs to know whether to split, so a slab visit is one command (appending to a
-- small hash or inserting into a small sorted set also scans it, and needs a second command
-- for the length). Readers that need due order (promote, list, split) sort one slab in Lua.
-- ix holds each slab's smallest due (its bound): bounds are unique, every due of a slab is
-- below the next slab's bound, so a due belongs to the slab with the greatest bound <= it.
-- A slab holds at most SLAB_FILL elements; a longer one is cut into pieces of about
-- SLAB_FILL / 2 (cuts fall between different dues). Only a run of more than SLAB_FILL jobs
-- due in the same millisecond makes a longer slab: then every element has that due.
local SLAB_FILL = 128
local SLAB_PIECE = 64
local call = redis.call
local sub = string.sub

local function enc6(ms)
  return struct.pack(">I6", ms)
end

local function dec6(s)
  return (struct.unpack(">I6", s))
end

local function member_id(m)
  return sub(m, 1, 16)
end

local function member_bucket(m)
  return string.byte(m, 17) * 256 + string.byte(m, 18)
end

local function table_key(P, m)
  return P .. "t:" .. member_bucket(m)
end

-- A slab element: the member, then its due as 6 bytes.
local function element(m, due)
  return m .. enc6(due)
end

local function element_due(e)
  return (struct.unpack(">I6", sub(e, 19, 24)))
end

-- Runs `cmd key args...` in pages of at most 1,000 values (Lua's unpack has a limit of
-- about 8,000), `step` values at a time kept together.
local function paged(cmd, key, args, step)
  local n = #args
  local i = 1
  while i <= n do
    local j = math.min(n, i + 999)
    j = j - ((j - i + 1) % step)
    call(cmd, key, unpack(args, i, j))
    i = j + 1
  end
end

-- The slab whose range holds `due`: the one with the greatest bound <= due, else the first.
local function slab_for(P, due)
  local r = call("ZREVRANGEBYSCORE", P .. "ix", due, "-inf", "WITHSCORES", "LIMIT", 0, 1)
  if r[1] then
    return r[1], tonumber(r[2]), false
  end
  r = call("ZRANGE", P .. "ix", 0, 0, "WITHSCORES")
  if r[1] then
    return r[1], tonumber(r[2]), true
  end
  return nil, nil, true
end

-- Elements sorted by due (ties in no set order), as { {due, element}, ... }.
local function sorted(elements)
  local t = {}
  for i, e in ipairs(elements) do
    t[i] = { element_due(e), e }
  end
  table.sort(t, function(a, b)
    return a[1] < b[1]
  end)
  return t
end

-- Byte order of two strings (Lua's own string order follows the server's locale).
local function bytes_less(a, b)
  if a == b then
    return false
  end
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then
      return x < y
    end
  end
  return #a < #b
end

-- Cuts slab `id` (bound `bound`) when it holds more than SLAB_FILL elements: sorted, in
-- pieces of about SLAB_PIECE; the first piece stays in the slab, each other one becomes a
-- new slab whose bound is its smallest due. A run of one due is never cut: a piece ends
-- before it, or holds the whole run (then it may be longer than SLAB_FILL). Returns the
-- list of new { bound, id } in due order (empty when nothing was cut).
local function slab_split(P, id, bound)
  local key = P .. "s:" .. id
  local t = sorted(call("LRANGE", key, 0, -1))
  local n = #t
  local pieces = {}
  local s = 1
  while s <= n do
    local e = math.min(n, s + SLAB_PIECE - 1)
    if e < n and t[e + 1][1] == t[e][1] then
      local d = t[e][1]
      local run_end = e
      while run_end < n and t[run_end + 1][1] == d do
        run_end = run_end + 1
      end
      local before = e
      while before >= s and t[before][1] == d do
        before = before - 1
      end
      if run_end - s + 1 <= SLAB_FILL then
        e = run_end -- the run fits in this piece
      elseif before >= s then
        e = before -- end the piece before the run
      else
        e = run_end -- the piece is the run
      end
    end
    pieces[#pieces + 1] = { s, e }
    s = e + 1
  end
  if #pieces < 2 then
    return {}
  end
  local out = {}
  local ixargs = {}
  for k, pc in ipairs(pieces) do
    local els = {}
    for i = pc[1], pc[2] do
      els[#els + 1] = t[i][2]
    end
    local pkey = key
    if k == 1 then
      call("DEL", key)
    else
      local nid = tostring(call("HINCRBY", P .. "meta", "seq", 1))
      pkey = P .. "s:" .. nid
      out[#out + 1] = { t[pc[1]][1], nid }
      ixargs[#ixargs + 1] = t[pc[1]][1]
      ixargs[#ixargs + 1] = nid
    end
    paged("RPUSH", pkey, els, 1)
  end
  paged("ZADD", P .. "ix", ixargs, 2)
  return out
end

-- Whether a slab that has grown to `len` by a push of dues `lo`..`hi` must be split: it is
-- over SLAB_FILL, unless it already was and only the single due it held (`held`: its bound
-- before the push) was added (an over-full slab holds one repeated due). `held` is not the
-- bound the push may have lowered: a due earlier than a long run, put in the run's slab
-- because it is the first slab, must cut it, or promotion (which takes an over-full slab
-- from its head) would hand the run out first.
local function must_split(len, added, held, lo, hi)
  if len <= SLAB_FILL then
    return false
  end
  return len - added <= SLAB_FILL or lo ~= held or hi ~= held
end

-- Puts member m in the slabs at `due` (the caller has removed it from everywhere else).
local function slab_insert(P, m, due)
  local id, bound, first = slab_for(P, due)
  local held = bound
  if not id then
    id = tostring(call("HINCRBY", P .. "meta", "seq", 1))
    bound, held = due, due
    call("ZADD", P .. "ix", due, id)
  elseif first and due < bound then
    bound = due
    call("ZADD", P .. "ix", due, id)
  end
  local len = call("RPUSH", P .. "s:" .. id, element(m, due))
  call("HINCRBY", P .. "meta", "sched", 1)
  if must_split(len, 1, held, due, due) then
    slab_split(P, id, bound)
  end
end

-- Puts many elements in the slabs. `items` is a flat list element, due, element, due, ...
-- sorted by due. The slabs the items fall in are walked through a window of consecutive
-- slabs read from ix (WINDOW + 1 at a time); the run of items that falls in one slab costs
-- one RPUSH (and a split when the slab grows past SLAB_FILL).
local WINDOW = 32

local function slab_insert_sorted(P, items)
  local n = #items / 2
  if n == 0 then
    return
  end
  local ix = P .. "ix"
  local wid, wb, complete
  local lowered, held -- the window's first slab when its bound was lowered, and the old bound

  -- window starting at the slab that holds `due` (creating the first slab if none)
  local function load(due)
    local id, bound, first = slab_for(P, due)
    lowered = nil
    if not id then
      id = tostring(call("HINCRBY", P .. "meta", "seq", 1))
      bound = due
      call("ZADD", ix, due, id)
    elseif first and due < bound then
      lowered, held = id, bound
      bound = due
      call("ZADD", ix, due, id)
    end
    wid, wb = { id }, { bound }
    local nx = call("ZRANGEBYSCORE", ix, "(" .. bound, "+inf", "WITHSCORES", "LIMIT", 0, WINDOW)
    for k = 1, #nx, 2 do
      wid[#wid + 1] = nx[k]
      wb[#wb + 1] = tonumber(nx[k + 1])
    end
    complete = #nx < 2 * WINDOW
  end

  load(items[2])
  local k, i = 1, 1
  while i <= n do
    local due = items[2 * i]
    while wb[k + 1] and wb[k + 1] <= due do
      k = k + 1
    end
    if not wb[k + 1] and not complete then
      load(due) -- past the window: read the next one
      k = 1
    else
      local upper = wb[k + 1] or math.huge
      local args = {}
      local j = i
      while j <= n and items[2 * j] < upper do
        args[#args + 1] = items[2 * j - 1]
        j = j + 1
      end
      local key = P .. "s:" .. wid[k]
      local len
      if #args <= 1000 then
        len = call("RPUSH", key, unpack(args))
      else
        paged("RPUSH", key, args, 1)
        len = call("LLEN", key)
      end
      local was = wb[k]
      if wid[k] == lowered then
        was = held
      end
      if must_split(len, j - i, was, due, items[2 * (j - 1)]) then
        if wid[k] == lowered then
          lowered = nil -- cut in due order now: its bound is its smallest due
        end
        local new = slab_split(P, wid[k], wb[k])
        for q = #new, 1, -1 do
          table.insert(wid, k + 1, new[q][2])
          table.insert(wb, k + 1, new[q][1])
        end
      end
      i = j
    end
  end
  call("HINCRBY", P .. "meta", "sched", n)
end

-- Smallest due among elements, nil when none.
local function min_due(elements)
  local mn
  for _, e in ipairs(elements) do
    local d = element_due(e)
    if not mn or d < mn then
      mn = d
    end
  end
  return mn
end

-- Removes member m (scheduled at `due`) from the slabs; true when it was there. Keeps the
-- slab's bound exact when m held it.
local function slab_remove(P, m, due)
  local id, bound = slab_for(P, due)
  if not id then
    return false
  end
  local key = P .. "s:" .. id
  if call("LREM", key, 1, element(m, due)) == 0 then
    return false
  end
  call("HINCRBY", P .. "meta", "sched", -1)
  if call("EXISTS", key) == 0 then
    call("ZREM", P .. "ix", id)
  elseif due == bound then
    call("ZADD", P .. "ix", min_due(call("LRANGE", key, 0, -1)), id)
  end
  return true
end

-- The earliest scheduled (not yet promoted) due, or nil (ix holds each slab's smallest).
local function slab_first_due(P)
  local f = call("ZRANGE", P .. "ix", 0, 0, "WITHSCORES")
  if f[1] then
    return tonumber(f[2])
  end
  return nil
end

-- A slab's jobs sorted by due then member (byte order), as { {due, member}, ... }.
local function slab_sorted(key)
  local t = {}
  for i, e in ipairs(call("LRANGE", key, 0, -1)) do
    t[i] = { element_due(e), sub(e, 1, 18) }
  end
  table.sort(t, function(a, b)
    return a[1] < b[1] or (a[1] == b[1] and bytes_less(a[2], b[2]))
  end)
  return t
end

-- Moves at most `limit` scheduled jobs due at `now` into ready, earliest first; returns how
-- many moved. The first slab is read whole, its due elements moved and the rest written
-- back; a slab longer than SLAB_FILL holds one repeated due, so its head is taken (LPOP).
local function promote(P, now, limit)
  local moved = 0
  local ix = P .. "ix"
  while moved < limit do
    local f = call("ZRANGE", ix, 0, 0, "WITHSCORES")
    if not f[1] or tonumber(f[2]) > now then
      break
    end
    local id = f[1]
    local key = P .. "s:" .. id
    local want = limit - moved
    local els = call("LRANGE", key, 0, SLAB_FILL)
    if #els > SLAB_FILL and element_due(els[1]) ~= tonumber(f[2]) then
      -- an over-full slab whose head is not at its bound may hold more than one due (an
      -- earlier release appended an earlier due to a long run's slab): cut it in due order
      -- and make its bound exact before taking from its head
      slab_split(P, id, tonumber(f[2]))
      els = call("LRANGE", key, 0, SLAB_FILL)
      call("ZADD", ix, element_due(els[1]), id)
    end
    local take, rest = {}, {}
    local dues -- the due of each taken element, when known
    local rest_min
    if #els > SLAB_FILL then
      -- one repeated due
      if element_due(els[1]) <= now then
        take = call("LPOP", key, want)
      end
    else
      local t = {}
      local all = #els <= want
      for i, e in ipairs(els) do
        local d = element_due(e)
        t[i] = { d, e }
        if d > now then
          all = false
        end
      end
      if all then
        -- all due and room for all (a backlog): no need to sort, ready orders them
        take = els
        dues = {}
        for i, x in ipairs(t) do
          dues[i] = x[1]
        end
      else
        table.sort(t, function(a, b)
          return a[1] < b[1]
        end)
        dues = {}
        for _, x in ipairs(t) do
          if x[1] <= now and #take < want then
            take[#take + 1] = x[2]
            dues[#take] = x[1]
          else
            rest[#rest + 1] = x[2]
            if not rest_min then
              rest_min = x[1]
            end
          end
        end
      end
      if #take > 0 then
        call("DEL", key)
        if #rest > 0 then
          call("RPUSH", key, unpack(rest))
        end
      end
    end
    local k = #take
    if k > 0 then
      local zargs = {}
      for j, e in ipairs(take) do
        zargs[2 * j - 1] = dues and dues[j] or element_due(e)
        zargs[2 * j] = sub(e, 1, 18)
      end
      paged("ZADD", P .. "ready", zargs, 2)
      call("HINCRBY", P .. "meta", "sched", -k)
      moved = moved + k
    end
    if #els > SLAB_FILL then
      if call("EXISTS", key) == 0 then
        call("ZREM", ix, id)
      elseif k == 0 then
        call("ZADD", ix, element_due(els[1]), id) -- exact bound again
        break
      end
    elseif rest_min then
      call("ZADD", ix, rest_min, id) -- the slab's bound is exact again
      if rest_min > now or #take >= want then
        break
      end
    else
      call("ZREM", ix, id)
    end
  end
  return moved
end

local function parse_job(rec)
  local token, attempt, due, flags = string.match(rec, "^(%d+):(%d+):(%d+):(.*)$")
  return tonumber(token), tonumber(attempt), tonumber(due), flags
end

local function format_job(token, attempt, due, flags)
  return token .. ":" .. attempt .. ":" .. due .. ":" .. flags
end

-- Where a job is. Returns state, due ("sched" | "ready" | "leased" | "rec" | "dead" | nil);
-- `row` is the table entry (nil when the job does not exist).
local function locate(P, m, row)
  if not row then
    return nil, nil
  end
  local id = member_id(m)
  if redis.call("HEXISTS", P .. "jobs", id) == 1 then
    return "leased", dec6(row)
  end
  if redis.call("ZSCORE", P .. "rec", m) then
    return "rec", dec6(row)
  end
  if redis.call("ZSCORE", P .. "dead", m) then
    return "dead", dec6(row)
  end
  local r = redis.call("ZSCORE", P .. "ready", m)
  if r then
    return "ready", tonumber(r)
  end
  return "sched", dec6(row)
end

-- Takes a job that is not leased out of whatever state holds it (slabs, ready, rec, dead).
local function unlink(P, m, state, due)
  if state == "sched" then
    slab_remove(P, m, due)
  elseif state == "ready" then
    redis.call("ZREM", P .. "ready", m)
  elseif state == "rec" then
    redis.call("ZREM", P .. "rec", m)
    redis.call("HDEL", P .. "why", member_id(m))
  elseif state == "dead" then
    redis.call("ZREM", P .. "dead", m)
    redis.call("HDEL", P .. "why", member_id(m))
  end
end

-- Forgets a job entirely (it must not be leased).
local function purge(P, m, state, due)
  unlink(P, m, state, due)
  local id = member_id(m)
  redis.call("HDEL", table_key(P, m), id)
  redis.call("HDEL", P .. "att", id)
  redis.call("HDEL", P .. "dfr", id)
end

-- Drops a leased job's lease record.
local function release(P, m)
  redis.call("HDEL", P .. "jobs", member_id(m))
  redis.call("ZREM", P .. "lease", m)
end

-- Sets the due stored in the table row of m (keeps the customer).
local function set_row_due(P, m, due)
  local tk = table_key(P, m)
  local id = member_id(m)
  local row = redis.call("HGET", tk, id)
  if row then
    redis.call("HSET", tk, id, enc6(due) .. string.sub(row, 7))
  end
end

-- The lease record of m when `token` still holds it, else nil.
local function held(P, m, token)
  local rec = redis.call("HGET", P .. "jobs", member_id(m))
  if not rec then
    return nil
  end
  local t, attempt, due, flags = parse_job(rec)
  if t ~= tonumber(token) then
    return nil
  end
  return attempt, due, flags
end

-- Cancels one job: 1 removed, 2 leased (flagged: mark_dialing will refuse; an expired lease
-- drops it unless dial intent was marked), 0 no such job.
local function cancel_one(P, m)
  local row = redis.call("HGET", table_key(P, m), member_id(m))
  local state, due = locate(P, m, row)
  if not state then
    return 0
  end
  if state == "leased" then
    local id = member_id(m)
    local token, attempt, d, flags = parse_job(redis.call("HGET", P .. "jobs", id))
    if not string.find(flags, "c", 1, true) then
      local f = flags == "-" and "c" or (flags .. "c")
      redis.call("HSET", P .. "jobs", id, format_job(token, attempt, d, f))
    end
    return 2
  end
  purge(P, m, state, due)
  return 1
end
