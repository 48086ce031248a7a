-- reserve: book one call's turn under every GCRA limit in KEYS[2..], unless the company is
-- slowed down or the turn is too far away.
--
-- Where admit.lua is a gate (the call goes now or is refused, and a refused caller asks
-- again later), reserve hands out turns: the call is counted at once and told the instant
-- it may be placed, the earliest one that conforms to every limit. Turns are absolute
-- instants spaced by the emission interval, so a caller that places its call a little late
-- does not push back the turns of the others: the long-run rate is the configured one
-- without a burst tolerance, and nobody polls.
--
-- A turn conforms under a limit when it is at or after that limit's TAT - tolerance; the
-- turn is the latest of those (and at least now). Booking it moves each TAT to
-- max(TAT, turn) + interval. A turn more than max_wait away books nothing.
--
-- KEYS[1]      slow-down key of the company: "until" in ms since the epoch (absent: none)
-- KEYS[2..n]   GCRA keys: TAT in microseconds since the epoch (absent: no debt)
-- ARGV[1]      now, ms since the epoch (from the caller's Clock)
-- ARGV[2]      max_wait, ms: the farthest turn to book
-- ARGV[2i-1]   emission interval of KEYS[i] (i >= 2), microseconds (one call per interval)
-- ARGV[2i]     tolerance of KEYS[i] (i >= 2), microseconds ((burst - 1) * interval)
-- returns      {0, turn_ms} booked; {1, until_ms} slowed down; {2, retry_at_ms} the turn is
--              more than max_wait away (nothing booked; retry_at_ms is when it would not be)
local now_ms = tonumber(ARGV[1])
local now = now_ms * 1000
local max_wait = tonumber(ARGV[2]) * 1000

local until_ms = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_ms > now_ms then
  return {1, until_ms}
end

local turn = now
local tats = {}
for i = 2, #KEYS do
  local tolerance = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  if tat < now then
    tat = now
  end
  tats[i] = tat
  if tat - tolerance > turn then
    turn = tat - tolerance
  end
end

if turn - now > max_wait then
  return {2, math.ceil((turn - max_wait) / 1000)}
end
for i = 2, #KEYS do
  local interval = tonumber(ARGV[2 * i - 1])
  local tat = tats[i]
  if turn > tat then
    tat = turn
  end
  local next_tat = tat + interval
  local ttl_ms = math.ceil((next_tat - now) / 1000) + 1000
  redis.call('SET', KEYS[i], string.format('%.0f', next_tat), 'PX', ttl_ms)
end
return {0, math.ceil(turn / 1000)}
