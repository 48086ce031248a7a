-- lib.lua: shared functions, prepended to every transition script at load time.
--
-- Layout of one partition (every key starts with the partition prefix P, which carries the
-- partition's hash tag, so all of them live in one cluster slot):
--   P.."meta"   HASH  seq (slab id counter), fence (token counter), sched (jobs in slabs),
--                     throttle (ms, claim nothing before), cap (max leased jobs, 0 = none)
--   P.."ix"     ZSET  slab id -> bound (ms): the smallest due in the slab (kept exact by
--                     promote and removals); bounds are unique, and every due of a slab is
--                     below the next slab's bound
--   P.."s:"..n  HASH  one slab: member -> due (ms); at most SLAB_FILL members (listpack)
--   P.."t:"..b  HASH  table bucket b (a hash of the customer): call id (16 bytes) ->
--                     due (6 bytes, big-endian ms) .. customer reference
--   P.."ready"  ZSET  promoted (due) jobs: member -> due
--   P.."lease"  ZSET  claimed jobs: member -> lease expiry (ms)
--   P.."jobs"   HASH  claimed jobs: call id -> "token:attempt:due:flags" (flags: - d c dc)
--   P.."att"    HASH  call id -> attempts consumed (only while > 0)
--   P.."dead"   ZSET  dead jobs: member -> time of death
--   P.."rec"    ZSET  jobs to reconcile (lease expired after dial intent): member -> time
--   P.."why"    HASH  call id -> reason (dead and reconcile)
-- A member is the call id (16 raw bytes) followed by the table bucket (2 bytes, big-endian).
-- Slab and table keys are derived from P inside the scripts; they share P's hash tag.

-- A slab is a HASH member -> due (ms): appending to a small hash is a few times cheaper
-- for Redis than inserting into a small sorted set (which scans its listpack twice and
-- parses every score), and enqueue is dominated by slab inserts. Readers that need due
-- order (promote, list) sort one slab (at most SLAB_FILL members) in Lua.
-- ix holds each slab's smallest due: bounds are unique, every due of a slab is below the
-- next slab's smallest due, so a due belongs to the slab with the greatest score <= it.
-- A slab holds at most SLAB_FILL members before it splits in two: small enough to stay in
-- Redis' compact listpack encoding (<= 128 entries), large enough that the per-slab
-- overhead (its key and its entry in ix, ~240 bytes) is a few bytes per job. A run of more
-- than SLAB_FILL jobs due in the same millisecond cannot split and stays in one slab.
local SLAB_FILL = 64
local call = redis.call

local function enc6(ms)
  return struct.pack(">I6", ms)
end

local function dec6(s)
  return (struct.unpack(">I6", s))
end

local function member_id(m)
  return string.sub(m, 1, 16)
end

local function member_bucket(m)
  return string.byte(m, 17) * 256 + string.byte(m, 18)
end

local function table_key(P, m)
  return P .. "t:" .. member_bucket(m)
end

-- Runs `cmd key args...` in pages of 1,000 values (Lua's unpack has a limit of about
-- 8,000), `step` values at a time kept together.
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

-- Splits slab `id` (bound `bound`) in two at its median due: the smaller side moves to a
-- new slab (so a large slab of one repeated due sheds the few others cheaply). Returns the
-- cut (the upper slab's bound), the lower slab's id and the upper slab's id, or nil when
-- every member has the same due (the slab cannot split).
local function slab_split(P, id, bound)
  local key = P .. "s:" .. id
  local all = call("HGETALL", key)
  local n = #all / 2
  if n < 2 then
    return nil
  end
  local dues = {}
  for i = 2, #all, 2 do
    dues[#dues + 1] = tonumber(all[i])
  end
  table.sort(dues)
  local h = math.floor(n / 2) + 1
  local cut = dues[h]
  if cut <= dues[1] then
    cut = nil
    for i = h + 1, n do
      if dues[i] > dues[1] then
        cut = dues[i]
        break
      end
    end
    if not cut then
      return nil
    end
  end
  local lo, hi, lo_n = {}, {}, 0
  for i = 1, #all, 2 do
    if tonumber(all[i + 1]) >= cut then
      hi[#hi + 1] = all[i]
      hi[#hi + 1] = all[i + 1]
    else
      lo[#lo + 1] = all[i]
      lo[#lo + 1] = all[i + 1]
      lo_n = lo_n + 1
    end
  end
  local nid = tostring(call("HINCRBY", P .. "meta", "seq", 1))
  local move = hi
  if lo_n < n - lo_n then
    move = lo
  end
  local fields = {}
  for i = 1, #move, 2 do
    fields[#fields + 1] = move[i]
  end
  paged("HSET", P .. "s:" .. nid, move, 2)
  paged("HDEL", key, fields, 1)
  if move == hi then
    call("ZADD", P .. "ix", cut, nid)
    return cut, id, nid
  end
  -- the lower part moved: the new slab takes the old bound, the old one the cut
  call("ZADD", P .. "ix", bound, nid, cut, id)
  return cut, nid, id
end

-- Puts member m in the slabs at `due` (the caller has removed it from everywhere else).
local function slab_insert(P, m, due)
  local id, bound, first = slab_for(P, due)
  if not id then
    id = tostring(call("HINCRBY", P .. "meta", "seq", 1))
    bound = due
    call("ZADD", P .. "ix", due, id)
  elseif first and due < bound then
    bound = due
    call("ZADD", P .. "ix", due, id)
  end
  local key = P .. "s:" .. id
  call("HSET", key, m, due)
  call("HINCRBY", P .. "meta", "sched", 1)
  local card = call("HLEN", key)
  -- over-full means a split found one repeated due (the bound): more of it cannot split
  if card == SLAB_FILL + 1 or (card > SLAB_FILL and due ~= bound) then
    slab_split(P, id, bound)
  end
end

-- Puts many members in the slabs. `items` is a flat list member, due (number), due (the
-- same as a string, so that no number is formatted), member, ... sorted by due. The slabs the items fall in are walked through a window of consecutive
-- slabs read from ix (WINDOW + 1 at a time), so a run of items that falls in one slab costs
-- an HLEN and one HSET; a slab is filled up to SLAB_FILL, then split.
local WINDOW = 32

local function slab_insert_sorted(P, items)
  local n = #items / 3
  if n == 0 then
    return
  end
  local ix = P .. "ix"
  local wid, wb, complete

  -- window starting at the slab that holds `due` (creating the first slab if none)
  local function load(due)
    local id, bound, first = slab_for(P, due)
    if not id then
      id = tostring(call("HINCRBY", P .. "meta", "seq", 1))
      bound = due
      call("ZADD", ix, due, id)
    elseif first and due < bound then
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
    local due = items[3 * i - 1]
    while wb[k + 1] and wb[k + 1] <= due do
      k = k + 1
    end
    if not wb[k + 1] and not complete then
      load(due) -- past the window: read the next one
      k = 1
    else
      local id = wid[k]
      local upper = wb[k + 1] or math.huge
      local key = P .. "s:" .. id
      local card = call("HLEN", key)
      local room = SLAB_FILL - card
      if room <= 0 then
        -- full; over-full means a previous split found one repeated due (the bound):
        -- more of that due cannot split it either
        local cut, loid, upid
        if card <= SLAB_FILL or due ~= wb[k] then
          cut, loid, upid = slab_split(P, id, wb[k])
        end
        if cut then
          wid[k] = loid
          table.insert(wid, k + 1, upid)
          table.insert(wb, k + 1, cut)
          room = -1 -- look again: the item may belong to the upper slab
        else
          room = n -- one due only: the slab cannot split, let it grow
        end
      end
      if room > 0 then
        local args = {}
        local j = i
        while j <= n and items[3 * j - 1] < upper and (j - i) < room do
          args[#args + 1] = items[3 * j - 2]
          args[#args + 1] = items[3 * j]
          j = j + 1
        end
        paged("HSET", key, args, 2)
        i = j
      end
    end
  end
  call("HINCRBY", P .. "meta", "sched", n)
end

-- Smallest due in a slab's field/value list, nil when empty.
local function min_due(kv)
  local mn
  for i = 2, #kv, 2 do
    local d = tonumber(kv[i])
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
  if call("HDEL", key, m) == 0 then
    return false
  end
  call("HINCRBY", P .. "meta", "sched", -1)
  if call("EXISTS", key) == 0 then
    call("ZREM", P .. "ix", id)
  elseif due == bound then
    call("ZADD", P .. "ix", min_due(call("HGETALL", key)), id)
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

-- A slab's members sorted by due then member, as { {due, member}, ... }.
local function slab_sorted(key)
  local kv = call("HGETALL", key)
  local t = {}
  for i = 1, #kv, 2 do
    t[#t + 1] = { tonumber(kv[i + 1]), kv[i] }
  end
  table.sort(t, function(a, b)
    return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2])
  end)
  return t
end

-- Moves at most `limit` scheduled jobs due at `now` into ready, earliest first; returns how
-- many moved. A slab is read whole (HSCAN returns a small hash in one reply); one that grew
-- large (one repeated due) is read in pages, deduplicated (a SCAN may repeat an entry).
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
    local due = {} -- { {due, member}, ... } due now
    local rest -- smallest due left behind, when the whole slab was read
    local cursor, seen = "0", nil
    repeat
      local r = call("HSCAN", key, cursor, "COUNT", want)
      cursor = r[1]
      if cursor ~= "0" and not seen then
        seen = {}
        for _, e in ipairs(due) do
          seen[e[2]] = true
        end
      end
      local kv = r[2]
      for i = 1, #kv, 2 do
        local d = tonumber(kv[i + 1])
        if d > now then
          if not rest or d < rest then
            rest = d
          end
        elseif not seen then
          due[#due + 1] = { d, kv[i] }
        elseif not seen[kv[i]] then
          seen[kv[i]] = true
          due[#due + 1] = { d, kv[i] }
        end
      end
    until cursor == "0" or #due >= want
    local whole = cursor == "0"
    if #due > want then
      table.sort(due, function(a, b)
        return a[1] < b[1]
      end)
      for j = #due, want + 1, -1 do
        if whole and (not rest or due[j][1] < rest) then
          rest = due[j][1]
        end
        due[j] = nil
      end
    end
    local k = #due
    if k > 0 then
      local zargs, fields = {}, {}
      for j = 1, k do
        zargs[2 * j - 1] = due[j][1]
        zargs[2 * j] = due[j][2]
        fields[j] = due[j][2]
      end
      paged("ZADD", P .. "ready", zargs, 2)
      if whole and not rest then
        call("DEL", key)
      else
        paged("HDEL", key, fields, 1)
      end
      call("HINCRBY", P .. "meta", "sched", -k)
      moved = moved + k
    end
    if not whole then
      break -- a large slab read in part: the rest waits for the next claim
    end
    if rest then
      call("ZADD", ix, rest, id) -- the slab's bound is exact again
      break -- nothing else in the slabs is due
    end
    call("ZREM", ix, id)
    if k == 0 then
      call("DEL", key)
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
