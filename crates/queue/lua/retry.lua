-- retry.lua: the attempt failed; consumes it and schedules the next one, or moves the job
-- to dead once max attempts are used up.
--
-- KEYS[1]  P.."meta" (P is KEYS[1] without "meta")
-- ARGV[1]  member (call id 16 bytes .. table bucket 2 bytes)
-- ARGV[2]  fencing token
-- ARGV[3]  now (ms)
-- ARGV[4]  due of the next attempt (ms)
-- ARGV[5]  max attempts
-- ARGV[6]  reason recorded when the job dies
-- Returns 1 rescheduled, 2 dead (attempts used up), 0 the token no longer holds the job,
-- -1 the job had been cancelled while leased (it is dropped instead).
local P = string.sub(KEYS[1], 1, -5)
local m = ARGV[1]
local attempt, _, flags = held(P, m, ARGV[2])
if not attempt then
  return 0
end
release(P, m)
if string.find(flags, "c", 1, true) then
  purge(P, m, nil, nil)
  return -1
end
local used = redis.call("HINCRBY", P .. "att", member_id(m), 1)
if used >= tonumber(ARGV[5]) then
  redis.call("ZADD", P .. "dead", tonumber(ARGV[3]), m)
  redis.call("HSET", P .. "why", member_id(m), ARGV[6])
  return 2
end
local due = tonumber(ARGV[4])
slab_insert(P, m, due)
set_row_due(P, m, due)
return 1
