-- members.lua: read-only page of the scheduled jobs of one partition in no particular
-- order, for passes that visit every job and need none (reconcile). Slabs are taken in
-- index order and each is read from an offset: O(page) per call. (list.lua sorts a whole
-- slab for every page it reads from it; a run of thousands of jobs due in the same
-- millisecond is one long slab, and paging through it that way costs its length per page.)
-- A slab split, promoted or shrunk between two pages can make a pass skip or repeat a few
-- jobs (a slab gone since the last page is replaced by the next one, read from its start):
-- such a pass is redone every period.
--
-- KEYS[1]  P.."meta" (P is KEYS[1] without "meta")
-- ARGV[1]  bound (ms) of the slab to resume in, or "" for the first slab
-- ARGV[2]  that slab's id
-- ARGV[3]  offset in that slab
-- ARGV[4]  page size (bounded by the caller)
-- Returns { m1, m2, ..., next bound, next slab id, next offset }: the next bound is "" at
-- the end.
local P = string.sub(KEYS[1], 1, -5)
local min, id, offset, limit = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
if min == "" then
  min = "-inf"
end
local out = {}
while true do
  local f = call("ZRANGEBYSCORE", P .. "ix", min, "+inf", "WITHSCORES", "LIMIT", 0, 1)
  if not f[1] then
    out[#out + 1] = ""
    out[#out + 1] = ""
    out[#out + 1] = "0"
    return out
  end
  if f[1] ~= id then
    offset = 0
  end
  local want = limit - #out
  local els = call("LRANGE", P .. "s:" .. f[1], offset, offset + want - 1)
  for _, e in ipairs(els) do
    out[#out + 1] = sub(e, 1, 18)
  end
  if #els == want then
    out[#out + 1] = f[2]
    out[#out + 1] = f[1]
    out[#out + 1] = tostring(offset + want)
    return out
  end
  min, id = "(" .. f[2], ""
end
