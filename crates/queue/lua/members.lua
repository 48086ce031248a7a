-- members.lua: read-only page of the scheduled jobs of one partition in no particular
-- order, for passes that visit every job and need none (reconcile). Slabs are taken in
-- index order and each is read from an offset: O(page) per call. (list.lua sorts a whole
-- slab for every page it reads from it; a run of thousands of jobs due in the same
-- millisecond is one long slab, and paging through it that way costs its length per page.)
-- A slab split, promoted or shrunk between two pages can make a pass skip or repeat a few
-- jobs: such a pass is redone every period.
--
-- KEYS[1]  P.."meta" (P is KEYS[1] without "meta")
-- ARGV[1]  bound (ms) of the slab to resume in, or "" for the first slab
-- ARGV[2]  offset in that slab
-- ARGV[3]  page size (bounded by the caller)
-- Returns { m1, m2, ..., next bound, next offset }: the next bound is "" at the end.
local P = string.sub(KEYS[1], 1, -5)
local min, offset, limit = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
if min == "" then
  min = "-inf"
end
local out = {}
while true do
  local f = call("ZRANGEBYSCORE", P .. "ix", min, "+inf", "WITHSCORES", "LIMIT", 0, 1)
  if not f[1] then
    out[#out + 1] = ""
    out[#out + 1] = "0"
    return out
  end
  local want = limit - #out
  local els = call("LRANGE", P .. "s:" .. f[1], offset, offset + want - 1)
  for _, e in ipairs(els) do
    out[#out + 1] = sub(e, 1, 18)
  end
  if #els == want then
    out[#out + 1] = f[2]
    out[#out + 1] = tostring(offset + want)
    return out
  end
  min, offset = "(" .. f[2], 0
end
