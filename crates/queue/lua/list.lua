-- list.lua: read-only page of one state of one partition, in score order: due time for
-- "scheduled" and "due", lease expiry for "leased", entry time for "dead" and "reconcile".
--
-- KEYS[1]  P.."meta" (P is KEYS[1] without "meta")
-- ARGV[1]  state: scheduled | due | leased | reconcile | dead
-- ARGV[2]  cursor score (ms) or "" for the first page
-- ARGV[3]  cursor member (the last member of the previous page) or ""
-- ARGV[4]  page size (bounded by the caller)
-- Returns { m1, score1, m2, score2, ... }; the last pair is the next page's cursor. Jobs of
-- the same due come in member byte order.
local P = string.sub(KEYS[1], 1, -5)
local state, cs, cm, limit = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local out = {}

-- entries of one zset after the cursor, appended to out
local function after(key, first)
  local want = limit - #out / 2
  local r
  if first or cs == "" then
    r = redis.call("ZRANGE", key, 0, want - 1, "WITHSCORES")
  else
    local rank = redis.call("ZRANK", key, cm)
    if rank then
      r = redis.call("ZRANGE", key, rank + 1, rank + want, "WITHSCORES")
    else
      r = redis.call("ZRANGEBYSCORE", key, "(" .. cs, "+inf", "WITHSCORES", "LIMIT", 0, want)
    end
  end
  for _, v in ipairs(r) do
    out[#out + 1] = v
  end
end

if state == "scheduled" then
  -- slabs are unsorted lists: each one is sorted here (due, then member bytes) and read
  -- after the cursor
  local id, bound
  if cs == "" then
    local f = redis.call("ZRANGE", P .. "ix", 0, 0, "WITHSCORES")
    id, bound = f[1], tonumber(f[2])
  else
    id, bound = slab_for(P, tonumber(cs))
  end
  local c = tonumber(cs)
  while id and #out / 2 < limit do
    for _, e in ipairs(slab_sorted(P .. "s:" .. id)) do
      if #out / 2 >= limit then
        break
      end
      if not c or e[1] > c or (e[1] == c and bytes_less(cm, e[2])) then
        out[#out + 1] = e[2]
        out[#out + 1] = e[1]
      end
    end
    local nx = redis.call("ZRANGEBYSCORE", P .. "ix", "(" .. bound, "+inf", "WITHSCORES", "LIMIT", 0, 1)
    id, bound = nx[1], tonumber(nx[2])
  end
else
  local key = ({ due = "ready", leased = "lease", reconcile = "rec", dead = "dead" })[state]
  if key then
    after(P .. key, false)
  end
end
return out
