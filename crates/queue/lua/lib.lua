-- lib.lua: shared functions, prepended to every transition script at load time.
--
-- Layout of one partition (every key starts with the partition prefix P, which carries the
-- partition's hash tag, so all of them live in one cluster slot):
--   P.."meta"   HASH  seq (slab id counter), fence (token counter), sched (jobs in slabs),
--                     throttle (ms, claim nothing before), cap (max leased jobs, 0 = none)
--   P.."ix"     ZSET  slab id -> lower bound (ms); bounds are unique, bound <= every due in it
--   P.."s:"..n  ZSET  one slab: member -> due (ms); at most SLAB_MAX members (listpack)
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

-- A slab holds at most SLAB_FILL members before it splits in two: small enough that a
-- ZADD into its listpack stays cheap, large enough that the per-slab overhead (its key and
-- its entry in ix, ~240 bytes) is a few bytes per job. Redis keeps zsets of <= 128 members
-- in the listpack encoding.
local SLAB_FILL = 64
local SLAB_MAX = SLAB_FILL

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

-- The slab whose range holds `due`: the one with the greatest bound <= due, else the first.
local function slab_for(P, due)
  local r = redis.call("ZREVRANGEBYSCORE", P .. "ix", due, "-inf", "WITHSCORES", "LIMIT", 0, 1)
  if r[1] then
    return r[1], tonumber(r[2]), false
  end
  r = redis.call("ZRANGE", P .. "ix", 0, 0, "WITHSCORES")
  if r[1] then
    return r[1], tonumber(r[2]), true
  end
  return nil, nil, true
end

-- Splits slab `id` in two when it holds more than `limit` members; the upper part gets a
-- new slab whose bound is a due strictly greater than every due left behind (so bounds
-- stay unique). Returns the new slab's bound and id when it split, else nil.
local function slab_split(P, id, limit)
  local key = P .. "s:" .. id
  local n = redis.call("ZCARD", key)
  if n <= limit or n < 2 then
    return nil
  end
  local mid = redis.call("ZRANGE", key, math.floor(n / 2), math.floor(n / 2), "WITHSCORES")
  local first = redis.call("ZRANGE", key, 0, 0, "WITHSCORES")
  local cut = tonumber(mid[2])
  if cut <= tonumber(first[2]) then
    local up = redis.call("ZRANGEBYSCORE", key, "(" .. cut, "+inf", "WITHSCORES", "LIMIT", 0, 1)
    if not up[1] then
      return nil -- every member has the same due: the slab stays whole
    end
    cut = tonumber(up[2])
  end
  local nid = redis.call("HINCRBY", P .. "meta", "seq", 1)
  -- copy in pages of 500 (a slab of one repeated due can be large, and Lua's unpack has a
  -- limit of about 8,000 values), then cut the tail in one command
  local offset = 0
  while true do
    local moved = redis.call("ZRANGEBYSCORE", key, cut, "+inf", "WITHSCORES", "LIMIT", offset, 500)
    if not moved[1] then
      break
    end
    local args = {}
    for i = 1, #moved, 2 do
      args[#args + 1] = moved[i + 1]
      args[#args + 1] = moved[i]
    end
    redis.call("ZADD", P .. "s:" .. nid, unpack(args))
    offset = offset + #moved / 2
  end
  redis.call("ZREMRANGEBYSCORE", key, cut, "+inf")
  redis.call("ZADD", P .. "ix", cut, nid)
  return cut, tostring(nid)
end

-- Puts member m in the slabs at `due` (the caller has removed it from everywhere else).
local function slab_insert(P, m, due)
  local id, bound, first = slab_for(P, due)
  if not id then
    id = redis.call("HINCRBY", P .. "meta", "seq", 1)
    redis.call("ZADD", P .. "ix", due, id)
  elseif first and due < bound then
    redis.call("ZADD", P .. "ix", due, id)
  end
  redis.call("ZADD", P .. "s:" .. id, due, m)
  redis.call("HINCRBY", P .. "meta", "sched", 1)
  slab_split(P, id, SLAB_MAX)
end

-- Puts many members in the slabs. `items` is a list of { member, due } sorted by due. The
-- slabs the items fall in are walked through a window of consecutive slabs read from ix
-- (9 at a time), so a run of items that falls in one slab costs a ZCARD and one ZADD;
-- a slab is filled up to SLAB_FILL, then split.
local WINDOW = 8

local function slab_insert_sorted(P, items)
  local n = #items
  if n == 0 then
    return
  end
  local ix = P .. "ix"
  local wid, wb, complete

  -- window starting at the slab that holds `due` (creating the first slab if none)
  local function load(due)
    local id, bound, first = slab_for(P, due)
    if not id then
      id = tostring(redis.call("HINCRBY", P .. "meta", "seq", 1))
      bound = due
      redis.call("ZADD", ix, due, id)
    elseif first and due < bound then
      bound = due
      redis.call("ZADD", ix, due, id)
    end
    wid, wb = { id }, { bound }
    local nx = redis.call("ZRANGEBYSCORE", ix, "(" .. bound, "+inf", "WITHSCORES", "LIMIT", 0, WINDOW)
    for k = 1, #nx, 2 do
      wid[#wid + 1] = nx[k]
      wb[#wb + 1] = tonumber(nx[k + 1])
    end
    complete = #nx < 2 * WINDOW
  end

  load(items[1][2])
  local k, i = 1, 1
  while i <= n do
    local due = items[i][2]
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
      local card = redis.call("ZCARD", key)
      local room = SLAB_FILL - card
      if room <= 0 then
        local cut, nid = slab_split(P, id, 0)
        if cut then
          table.insert(wid, k + 1, nid)
          table.insert(wb, k + 1, cut)
          room = -1 -- look again: the item may belong to the new slab
        else
          room = n -- one due only: the slab cannot split, let it grow
        end
      end
      if room > 0 then
        local args = {}
        local j = i
        while j <= n and items[j][2] < upper and (j - i) < room do
          args[#args + 1] = items[j][2]
          args[#args + 1] = items[j][1]
          j = j + 1
        end
        redis.call("ZADD", key, unpack(args))
        if card + (j - i) > SLAB_MAX then
          local cut, nid = slab_split(P, id, SLAB_MAX)
          if cut then
            table.insert(wid, k + 1, nid)
            table.insert(wb, k + 1, cut)
          end
        end
        i = j
      end
    end
  end
  redis.call("HINCRBY", P .. "meta", "sched", n)
end

-- Removes member m (scheduled at `due`) from the slabs; true when it was there.
local function slab_remove(P, m, due)
  local id = slab_for(P, due)
  if not id then
    return false
  end
  local key = P .. "s:" .. id
  if redis.call("ZREM", key, m) == 0 then
    return false
  end
  redis.call("HINCRBY", P .. "meta", "sched", -1)
  if redis.call("EXISTS", key) == 0 then
    redis.call("ZREM", P .. "ix", id)
  end
  return true
end

-- The earliest scheduled (not yet promoted) due, or nil.
local function slab_first_due(P)
  local f = redis.call("ZRANGE", P .. "ix", 0, 0)
  if not f[1] then
    return nil
  end
  local e = redis.call("ZRANGE", P .. "s:" .. f[1], 0, 0, "WITHSCORES")
  if e[1] then
    return tonumber(e[2])
  end
  return nil
end

-- Moves at most `limit` scheduled jobs due at `now` into ready; returns how many moved.
local function promote(P, now, limit)
  local moved = 0
  while moved < limit do
    local f = redis.call("ZRANGE", P .. "ix", 0, 0, "WITHSCORES")
    if not f[1] or tonumber(f[2]) > now then
      break
    end
    local key = P .. "s:" .. f[1]
    local due = redis.call("ZRANGEBYSCORE", key, "-inf", now, "WITHSCORES", "LIMIT", 0, limit - moved)
    if not due[1] then
      if redis.call("EXISTS", key) == 0 then
        redis.call("ZREM", P .. "ix", f[1])
      end
      break
    end
    local args = {}
    for i = 1, #due, 2 do
      args[#args + 1] = due[i + 1]
      args[#args + 1] = due[i]
    end
    redis.call("ZADD", P .. "ready", unpack(args))
    local k = #due / 2
    redis.call("ZREMRANGEBYRANK", key, 0, k - 1)
    redis.call("HINCRBY", P .. "meta", "sched", -k)
    moved = moved + k
    if redis.call("EXISTS", key) == 0 then
      redis.call("ZREM", P .. "ix", f[1])
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
