-- ack.lua: holders finished jobs; they are forgotten.
--
-- KEYS[1]  P.."meta" (P is KEYS[1] without "meta")
-- ARGV[2i-1] member (call id 16 bytes .. table bucket 2 bytes)
-- ARGV[2i]   fencing token
-- Returns { capped, r1, r2, ... }: capped is 1 when the partition has a live-call cap (the
-- caller wakes the partition: there is room again), ri is 1 when job i was acknowledged,
-- 0 when its token no longer holds it.
local P = string.sub(KEYS[1], 1, -5)
local out = { 0 }
for i = 1, #ARGV, 2 do
  local m = ARGV[i]
  if held(P, m, ARGV[i + 1]) then
    release(P, m)
    purge(P, m, nil, nil)
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
if (tonumber(redis.call("HGET", KEYS[1], "cap") or "0") or 0) > 0 then
  out[1] = 1
end
return out
