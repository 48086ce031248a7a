-- redrive.lua: puts dead jobs back on schedule with their attempts reset (an admin action).
--
-- KEYS[1]  P.."meta" (P is KEYS[1] without "meta")
-- ARGV[1]  due (ms) of the re-driven jobs
-- ARGV[2]  a member to re-drive, or "" for the oldest dead jobs
-- ARGV[3]  the most jobs to re-drive when ARGV[2] is "" (bounded)
-- Returns the members re-driven.
local P = string.sub(KEYS[1], 1, -5)
local due = tonumber(ARGV[1])
local ms
if ARGV[2] ~= "" then
  ms = {}
  if redis.call("ZSCORE", P .. "dead", ARGV[2]) then
    ms[1] = ARGV[2]
  end
else
  ms = redis.call("ZRANGE", P .. "dead", 0, tonumber(ARGV[3]) - 1)
end
for _, m in ipairs(ms) do
  redis.call("ZREM", P .. "dead", m)
  redis.call("HDEL", P .. "why", member_id(m))
  redis.call("HDEL", P .. "att", member_id(m))
  slab_insert(P, m, due)
  set_row_due(P, m, due)
end
return ms
