-- show.lua: read-only full state of one job.
--
-- KEYS[1]  P.."meta" (P is KEYS[1] without "meta")
-- ARGV[1]  member (call id 16 bytes .. table bucket 2 bytes)
-- Returns {} when unknown, else { state, due, customer, attempts consumed, token, attempt,
-- flags, lease expiry, reason, since } with "" for what does not apply. state is one of
-- scheduled | due | leased | reconcile | dead.
local P = string.sub(KEYS[1], 1, -5)
local m = ARGV[1]
local id = member_id(m)
local row = redis.call("HGET", table_key(P, m), id)
local state, due = locate(P, m, row)
if not state then
  return {}
end
local names = { sched = "scheduled", ready = "due", leased = "leased", rec = "reconcile", dead = "dead" }
local token, attempt, flags, lease, reason, since = "", "", "", "", "", ""
if state == "leased" then
  local t, a, d, f = parse_job(redis.call("HGET", P .. "jobs", id))
  token, attempt, flags, due = t, a, f, d
  lease = redis.call("ZSCORE", P .. "lease", m) or ""
elseif state == "rec" or state == "dead" then
  reason = redis.call("HGET", P .. "why", id) or ""
  since = redis.call("ZSCORE", P .. state, m) or ""
end
return {
  names[state], tostring(due), string.sub(row, 7), redis.call("HGET", P .. "att", id) or "0",
  tostring(token), tostring(attempt), flags, lease, reason, since,
}
