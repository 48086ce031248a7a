-- cancel.lua: cancels one job.
--
-- KEYS[1]  P.."meta" (P is KEYS[1] without "meta")
-- ARGV[1]  member (call id 16 bytes .. table bucket 2 bytes)
-- Returns 1 removed (it was scheduled, due, dead or waiting for reconcile), 2 in flight
-- (leased: flagged cancelled, so mark_dialing refuses it; the holder decides), 0 unknown.
local P = string.sub(KEYS[1], 1, -5)
return cancel_one(P, ARGV[1])
