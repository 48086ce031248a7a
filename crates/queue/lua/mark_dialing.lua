-- mark_dialing.lua: records in the queue that the holders are about to dial (dial intent).
-- After this, an expired lease sends a job to reconcile instead of back to due. Counts the
-- marks per 10 s in `dpm` (dials in the last minute).
--
-- KEYS[1]      P.."meta" (P is KEYS[1] without "meta")
-- ARGV[1]      now (ms)
-- ARGV[2i]     member of job i (call id 16 bytes .. table bucket 2 bytes)
-- ARGV[2i+1]   fencing token of job i
-- (at most 1,000 jobs per call: the caller cuts larger batches)
-- Returns { r1, r2, ... }: ri is 1 marked, 0 the token no longer holds job i (or its lease
-- has expired), -1 job i was cancelled while leased: do not dial.
local P = string.sub(KEYS[1], 1, -5)
local now = tonumber(ARGV[1])
local out = {}
local marked = 0
for i = 2, #ARGV, 2 do
  local m = ARGV[i]
  local r = 0
  local attempt, due, flags = held(P, m, ARGV[i + 1])
  if attempt and tonumber(redis.call("ZSCORE", P .. "lease", m) or "0") > now then
    if string.find(flags, "c", 1, true) then
      r = -1
    else
      r = 1
      if not string.find(flags, "d", 1, true) then
        local f = flags == "-" and "d" or (flags .. "d")
        redis.call("HSET", P .. "jobs", member_id(m), format_job(tonumber(ARGV[i + 1]), attempt, due, f))
        marked = marked + 1
      end
    end
  end
  out[#out + 1] = r
end
-- Dials per 10 s bucket (stats: dials in the last minute); a new bucket drops those older
-- than two minutes, so the hash holds at most 13 fields.
if marked > 0 then
  local b = math.floor(now / 10000)
  if redis.call("HINCRBY", P .. "dpm", b, marked) == marked then
    for _, f in ipairs(redis.call("HKEYS", P .. "dpm")) do
      if tonumber(f) < b - 12 then
        redis.call("HDEL", P .. "dpm", f)
      end
    end
  end
end
return out
