-- ack.lua: holders finished jobs; they are forgotten.
--
-- KEYS[1]  P.."meta" (P is KEYS[1] without "meta")
-- KEYS[i+1] the table bucket key of job i (P.."t:"..bucket)
-- ARGV[2i-1] member (call id 16 bytes .. table bucket 2 bytes)
-- ARGV[2i]   fencing token
-- (at most 1,000 jobs per call: the caller cuts larger batches)
-- Returns { capped, r1, r2, ... }: capped is 1 when the partition has a live-call cap (the
-- caller wakes the partition: there is room again), ri is 1 when job i was acknowledged,
-- 0 when its token no longer holds it.
local P = string.sub(KEYS[1], 1, -5)
local ids = {}
for i = 1, #ARGV, 2 do
  ids[#ids + 1] = member_id(ARGV[i])
end
local recs = redis.call("HMGET", P .. "jobs", unpack(ids))
local out = { 0 }
local done_ids, done_members = {}, {}
for k = 1, #ids do
  local m, rec = ARGV[2 * k - 1], recs[k]
  local ok = 0
  if rec then
    local token = parse_job(rec)
    if token == tonumber(ARGV[2 * k]) then
      ok = 1
      done_ids[#done_ids + 1] = ids[k]
      done_members[#done_members + 1] = m
      redis.call("HDEL", KEYS[k + 1], ids[k])
    end
  end
  out[#out + 1] = ok
end
if #done_ids > 0 then
  redis.call("HDEL", P .. "jobs", unpack(done_ids))
  redis.call("HDEL", P .. "att", unpack(done_ids))
  redis.call("HDEL", P .. "dfr", unpack(done_ids))
  redis.call("ZREM", P .. "lease", unpack(done_members))
end
if (tonumber(redis.call("HGET", KEYS[1], "cap") or "0") or 0) > 0 then
  out[1] = 1
end
return out
