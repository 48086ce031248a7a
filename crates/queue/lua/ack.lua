-- ack.lua: the holder finished the job; it is forgotten.
--
-- KEYS[1]  P.."meta" (P is KEYS[1] without "meta")
-- ARGV[1]  member (call id 16 bytes .. table bucket 2 bytes)
-- ARGV[2]  fencing token
-- Returns 1 when acknowledged, 2 when acknowledged in a partition with a live-call cap
-- (the caller wakes the partition: there is room again), 0 when the token no longer holds
-- the job.
local P = string.sub(KEYS[1], 1, -5)
local m = ARGV[1]
if not held(P, m, ARGV[2]) then
  return 0
end
release(P, m)
purge(P, m, nil, nil)
if (tonumber(redis.call("HGET", KEYS[1], "cap") or "0") or 0) > 0 then
  return 2
end
return 1
