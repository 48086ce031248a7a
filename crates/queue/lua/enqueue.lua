-- enqueue.lua: schedules calls in one partition, idempotent by call id.
--
-- KEYS[1]  P.."meta" (P, the partition prefix, is KEYS[1] without "meta"; slab keys are
--          derived from P and share its hash tag)
-- KEYS[i+1] the table bucket key of job i (P.."t:"..bucket)
-- ARGV[1]  mode: "move" (an existing scheduled or due job takes the new due time) or "nx"
--          (an existing job is left alone: reconciliation)
-- then for each job, in due order (the script re-sorts only if a call appears twice),
-- three values:
-- ARGV[3i-1] member (call id 16 bytes .. table bucket 2 bytes)
-- ARGV[3i]   due (ms)
-- ARGV[3i+1] the table row: due (6 bytes, big-endian ms) .. customer reference
-- Returns one code per job: 0 scheduled (new), 1 moved to the new due time (it was
-- scheduled or due), 2 left alone because it is leased, 3 dead, 4 waiting for reconcile,
-- 5 exists and left alone (mode "nx").
-- A leased, dead or reconcile job keeps its state: only the worker, an admin re-drive or a
-- reconcile resolution moves it.
local P = string.sub(KEYS[1], 1, -5)
local out = {}
local inserts = {}
local pending = {} -- call id -> its entry in inserts (a call given twice in one batch)
local resort = false
for i = 2, #ARGV, 3 do
  local m, due, row = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]
  local tk = KEYS[(i + 1) / 3 + 1]
  local id = member_id(m)
  local code = 0
  if pending[id] then
    resort = true
    if ARGV[1] == "nx" then
      code = 5
    else
      code = 1
      pending[id][2] = due
      redis.call("HSET", tk, id, row)
    end
  elseif redis.call("HSETNX", tk, id, row) == 0 then
    local state, old = locate(P, m, redis.call("HGET", tk, id))
    if state == "leased" then
      code = 2
    elseif state == "dead" then
      code = 3
    elseif state == "rec" then
      code = 4
    elseif ARGV[1] == "nx" then
      code = 5
    else
      code = 1
      unlink(P, m, state, old)
      redis.call("HSET", tk, id, row)
    end
  end
  if code <= 1 and not pending[id] then
    inserts[#inserts + 1] = { m, due }
    pending[id] = inserts[#inserts]
  end
  out[#out + 1] = code
end
if resort then
  table.sort(inserts, function(a, b)
    return a[2] < b[2]
  end)
end
slab_insert_sorted(P, inserts)
return out
