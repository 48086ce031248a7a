-- claim.lua: recovers expired leases, promotes due jobs, then leases up to n due jobs.
--
-- KEYS[1]  P.."meta" (P is KEYS[1] without "meta"; other keys derive from P)
-- ARGV[1]  now (ms)
-- ARGV[2]  n, the most jobs to lease
-- ARGV[3]  lease length (ms)
-- ARGV[4]  promotion bound: the most scheduled jobs moved to ready in this call (done only
--          when ready holds fewer than n jobs)
-- ARGV[5]  recovery bound: the most expired leases handled in this call
-- Returns { next, recovered, reconcile, m1, due1, token1, attempt1, m2, ... } where next is
-- the earliest instant (ms) at which this partition may have work again (-1: none known),
-- recovered counts expired leases put back to due and reconcile those moved to "rec"
-- because the worker had marked them dialing. Jobs come out in due order.
local P = string.sub(KEYS[1], 1, -5)
local now = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local lease_ms = tonumber(ARGV[3])

-- 1. expired leases: back to due unless dial intent was marked (then: reconcile)
local recovered, reconcile = 0, 0
local expired = redis.call("ZRANGEBYSCORE", P .. "lease", "-inf", now, "LIMIT", 0, tonumber(ARGV[5]))
for _, m in ipairs(expired) do
  local rec = redis.call("HGET", P .. "jobs", member_id(m))
  release(P, m)
  if rec then
    local _, _, due, flags = parse_job(rec)
    if string.find(flags, "c", 1, true) and not string.find(flags, "d", 1, true) then
      purge(P, m, nil, nil)
    elseif string.find(flags, "d", 1, true) then
      redis.call("ZADD", P .. "rec", now, m)
      redis.call("HSET", P .. "why", member_id(m), "lease expired after dial intent")
      reconcile = reconcile + 1
    else
      redis.call("ZADD", P .. "ready", due, m)
      recovered = recovered + 1
    end
  end
end

local function next_wake()
  local w = -1
  local r = redis.call("ZRANGE", P .. "ready", 0, 0, "WITHSCORES")
  if r[1] then
    w = tonumber(r[2])
  else
    local s = slab_first_due(P)
    if s then
      w = s
    end
  end
  local l = redis.call("ZRANGE", P .. "lease", 0, 0, "WITHSCORES")
  if l[1] and (w < 0 or tonumber(l[2]) < w) then
    w = tonumber(l[2])
  end
  return w
end

-- 2. throttle and cap
local meta = redis.call("HMGET", KEYS[1], "throttle", "cap")
local throttle = tonumber(meta[1] or "0") or 0
if throttle > now then
  local w = next_wake()
  if w >= 0 and w < throttle then
    w = throttle
  end
  return { w, recovered, reconcile }
end
local cap = tonumber(meta[2] or "0") or 0
if cap > 0 then
  local room = cap - redis.call("ZCARD", P .. "lease")
  if room < n then
    n = room
  end
end

-- 3. promotion (bounded, and only when ready runs short: due jobs wait in the compact
--    slabs, not in the ready skiplist), then lease the n earliest due jobs
if redis.call("ZCARD", P .. "ready") < n then
  promote(P, now, tonumber(ARGV[4]))
end
local out = { 0, recovered, reconcile }
if n > 0 then
  local due = redis.call("ZRANGEBYSCORE", P .. "ready", "-inf", now, "WITHSCORES", "LIMIT", 0, n)
  local k = #due / 2
  if k > 0 then
    redis.call("ZREMRANGEBYRANK", P .. "ready", 0, k - 1)
    local base = redis.call("HINCRBY", KEYS[1], "fence", k) - k
    local leases = {}
    local records = {}
    local att = redis.call("HMGET", P .. "att", unpack((function()
      local ids = {}
      for i = 1, #due, 2 do
        ids[#ids + 1] = member_id(due[i])
      end
      return ids
    end)()))
    for j = 1, k do
      local m, d = due[2 * j - 1], tonumber(due[2 * j])
      local token = base + j
      local attempt = (tonumber(att[j] or "0") or 0) + 1
      records[#records + 1] = member_id(m)
      records[#records + 1] = format_job(token, attempt, d, "-")
      leases[#leases + 1] = now + lease_ms
      leases[#leases + 1] = m
      out[#out + 1] = m
      out[#out + 1] = d
      out[#out + 1] = token
      out[#out + 1] = attempt
    end
    redis.call("HSET", P .. "jobs", unpack(records))
    redis.call("ZADD", P .. "lease", unpack(leases))
  end
end
if cap > 0 and n <= 0 then
  -- at the cap: wake when a lease may end (an ack wakes the partition sooner)
  local l = redis.call("ZRANGE", P .. "lease", 0, 0, "WITHSCORES")
  out[1] = l[1] and tonumber(l[2]) or -1
else
  out[1] = next_wake()
end
return out
