-- enqueue.lua: schedules calls in one partition, idempotent by call id.
--
-- KEYS[1]  P.."meta" (P, the partition prefix, is KEYS[1] without "meta"; slab keys are
--          derived from P and share its hash tag)
-- KEYS[i+1] the table bucket key of job i (P.."t:"..bucket)
-- ARGV[1]  mode: "move" (an existing scheduled or due job takes the new due time) or "nx"
--          (an existing job is left alone: reconciliation)
-- then for each job, in due order, each call at most once (the caller folds repeats),
-- one value:
-- ARGV[i+1]  member (call id 16 bytes .. table bucket 2 bytes) .. due (6 bytes, big-endian
--          ms) .. customer reference: bytes 1-24 are the slab element, bytes 19- the
--          table row (due .. customer reference)
-- Returns { i1, code1, i2, code2, ... } for the jobs whose code is not 0 (i is the job's
-- position, from 1); a job not listed was scheduled (new). Codes: 0 scheduled (new), 1
-- moved to the new due time (it was scheduled or due), 2 left alone because it is leased,
-- 3 dead, 4 waiting for reconcile, 5 exists and left alone (mode "nx": every existing job,
-- whatever its state).
-- A leased, dead or reconcile job keeps its state: only the worker, an admin re-drive or a
-- reconcile resolution moves it.
-- A new job costs one command here (HSETNX: the idempotency check and its row at once)
-- plus its share of one RPUSH per slab its run of dues falls in.
local P = string.sub(KEYS[1], 1, -5)
local nx = ARGV[1] == "nx"
local out = {}
local ins, ni = {}, 0
for job = 1, #ARGV - 1 do
  local tk = KEYS[job + 1]
  local arg = ARGV[job + 1]
  local el = sub(arg, 1, 24)
  local row = sub(arg, 19)
  local id = sub(el, 1, 16)
  local code = 0
  if call("HSETNX", tk, id, row) == 0 then
    local m = sub(el, 1, 18)
    local state, old
    if not nx then
      state, old = locate(P, m, call("HGET", tk, id))
    end
    if nx then
      -- reconciliation leaves an existing job in whatever state it is, without looking it
      -- up: a pass over a large backlog costs one command per job
      code = 5
    elseif state == "leased" then
      code = 2
    elseif state == "dead" then
      code = 3
    elseif state == "rec" then
      code = 4
    else
      code = 1
      unlink(P, m, state, old)
      call("HSET", tk, id, row)
    end
  end
  if code <= 1 then
    ins[ni + 1] = el
    ins[ni + 2] = (struct.unpack(">I6", el, 19))
    ni = ni + 2
  end
  if code > 0 then
    out[#out + 1] = job
    out[#out + 1] = code
  end
end
slab_insert_sorted(P, ins)
return out
