-- mark_dialing.lua: records in the queue that the holder is about to dial (dial intent).
-- After this, an expired lease sends the job to reconcile instead of back to due.
--
-- KEYS[1]  P.."meta" (P is KEYS[1] without "meta")
-- ARGV[1]  member (call id 16 bytes .. table bucket 2 bytes)
-- ARGV[2]  fencing token
-- ARGV[3]  now (ms)
-- Returns 1 marked, 0 the token no longer holds the job (or the lease has expired),
-- -1 the job was cancelled while leased: do not dial.
local P = string.sub(KEYS[1], 1, -5)
local m = ARGV[1]
local attempt, due, flags = held(P, m, ARGV[2])
if not attempt then
  return 0
end
local until_ms = tonumber(redis.call("ZSCORE", P .. "lease", m) or "0")
if until_ms <= tonumber(ARGV[3]) then
  return 0
end
if string.find(flags, "c", 1, true) then
  return -1
end
if not string.find(flags, "d", 1, true) then
  local f = flags == "-" and "d" or (flags .. "d")
  redis.call("HSET", P .. "jobs", member_id(m), format_job(tonumber(ARGV[2]), attempt, due, f))
end
return 1
