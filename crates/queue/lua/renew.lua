-- renew.lua: extends the lease of a job the caller still holds.
--
-- KEYS[1]  P.."meta" (P is KEYS[1] without "meta")
-- ARGV[1]  member (call id 16 bytes .. table bucket 2 bytes)
-- ARGV[2]  fencing token
-- ARGV[3]  new lease expiry (ms)
-- Returns 1 when renewed, 0 when the token no longer holds the job (lease lost).
local P = string.sub(KEYS[1], 1, -5)
if not held(P, ARGV[1], ARGV[2]) then
  return 0
end
redis.call("ZADD", P .. "lease", "XX", tonumber(ARGV[3]), ARGV[1])
return 1
