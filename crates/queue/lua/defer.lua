-- defer.lua: the holder hands the job back to run at a later instant; no attempt is
-- consumed (a closed calling window, a cap, a rate limit, a pause). Clears any dial intent
-- mark and counts the job as deferred (`dfr`) until it is finished.
--
-- KEYS[1]  P.."meta" (P is KEYS[1] without "meta")
-- ARGV[1]  member (call id 16 bytes .. table bucket 2 bytes)
-- ARGV[2]  fencing token
-- ARGV[3]  new due (ms)
-- Returns 1 when deferred, 0 when the token no longer holds the job, -1 when the job had
-- been cancelled while leased (it is dropped instead).
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
local due = tonumber(ARGV[3])
-- Counted as deferred (stats) until the job is finished or purged.
redis.call("HSET", P .. "dfr", member_id(m), "1")
slab_insert(P, m, due)
set_row_due(P, m, due)
return 1
