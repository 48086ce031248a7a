-- resolve.lua: settles a job waiting for reconcile (its lease expired after dial intent).
--
-- KEYS[1]  P.."meta" (P is KEYS[1] without "meta")
-- ARGV[1]  member (call id 16 bytes .. table bucket 2 bytes)
-- ARGV[2]  outcome: "done" (the call was placed and is settled: forget the job),
--          "requeue" (it was not dialed: schedule it at ARGV[3]), "dead" (reason ARGV[4])
-- ARGV[3]  due (ms) for "requeue"; now (ms) for "dead"
-- ARGV[4]  reason for "dead"
-- Returns 1 resolved, 0 the job is not waiting for reconcile.
local P = string.sub(KEYS[1], 1, -5)
local m = ARGV[1]
if not redis.call("ZSCORE", P .. "rec", m) then
  return 0
end
redis.call("ZREM", P .. "rec", m)
redis.call("HDEL", P .. "why", member_id(m))
local outcome = ARGV[2]
if outcome == "done" then
  purge(P, m, nil, nil)
elseif outcome == "requeue" then
  local due = tonumber(ARGV[3])
  slab_insert(P, m, due)
  set_row_due(P, m, due)
else
  redis.call("ZADD", P .. "dead", tonumber(ARGV[3]), m)
  redis.call("HSET", P .. "why", member_id(m), ARGV[4])
end
return 1
