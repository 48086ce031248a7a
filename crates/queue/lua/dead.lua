-- dead.lua: moves a job to dead (a human must act), from any state. A leased job loses its
-- lease: its holder's next ack/renew/defer/retry returns "lease lost".
--
-- KEYS[1]  P.."meta" (P is KEYS[1] without "meta")
-- ARGV[1]  member (call id 16 bytes .. table bucket 2 bytes)
-- ARGV[2]  now (ms)
-- ARGV[3]  reason
-- Returns 1 moved to dead, 0 no such job, 2 already dead.
local P = string.sub(KEYS[1], 1, -5)
local m = ARGV[1]
local row = redis.call("HGET", table_key(P, m), member_id(m))
local state, due = locate(P, m, row)
if not state then
  return 0
end
if state == "dead" then
  return 2
end
if state == "leased" then
  release(P, m)
else
  unlink(P, m, state, due)
end
redis.call("ZADD", P .. "dead", tonumber(ARGV[2]), m)
redis.call("HSET", P .. "why", member_id(m), ARGV[3])
return 1
