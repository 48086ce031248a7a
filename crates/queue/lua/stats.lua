-- stats.lua: read-only counts of one partition, each O(1) (a counter or a ZCARD/HLEN).
--
-- KEYS[1]  P.."meta" (P is KEYS[1] without "meta")
-- ARGV[1]  now (ms)
-- Returns { scheduled, due, leased, reconcile, dead, retrying, throttle, cap, oldest,
-- deferred, dials }:
-- scheduled = jobs in the slabs (some may already be due but not yet promoted), due = jobs
-- promoted to ready, leased = claimed, retrying = jobs with at least one attempt consumed,
-- throttle = instant (ms) before which nothing is claimed (0: none), cap = most leased
-- jobs (0: none), oldest = earliest due among scheduled and due jobs (-1: none), deferred =
-- jobs handed back at least once and not finished, dials = dial marks in the last six
-- full 10 s buckets and the current one (the last 60-70 s).
local P = string.sub(KEYS[1], 1, -5)
local meta = redis.call("HMGET", KEYS[1], "sched", "throttle", "cap")
local oldest = -1
local r = redis.call("ZRANGE", P .. "ready", 0, 0, "WITHSCORES")
if r[1] then
  oldest = tonumber(r[2])
end
local s = slab_first_due(P)
if s and (oldest < 0 or s < oldest) then
  oldest = s
end
local dials = 0
local b = math.floor(tonumber(ARGV[1]) / 10000)
local counts = redis.call("HGETALL", P .. "dpm")
for i = 1, #counts, 2 do
  if tonumber(counts[i]) >= b - 6 then
    dials = dials + tonumber(counts[i + 1])
  end
end
return {
  tonumber(meta[1] or "0") or 0,
  redis.call("ZCARD", P .. "ready"),
  redis.call("ZCARD", P .. "lease"),
  redis.call("ZCARD", P .. "rec"),
  redis.call("ZCARD", P .. "dead"),
  redis.call("HLEN", P .. "att"),
  tonumber(meta[2] or "0") or 0,
  tonumber(meta[3] or "0") or 0,
  oldest,
  redis.call("HLEN", P .. "dfr"),
  dials,
}
