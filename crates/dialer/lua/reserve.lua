-- reserve: book the turns of one or more calls under every GCRA limit in KEYS[2..], unless
-- the company is slowed down or a turn is too far away.
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
-- max(TAT, turn) + interval. A turn more than max_wait away books nothing, and neither does
-- any call after it (calls are booked in order, each turn one interval after the last).
--
-- KEYS[1]      slow-down key of the company: "until" in ms since the epoch (absent: none)
-- KEYS[2..n]   GCRA keys: TAT in microseconds since the epoch (absent: no debt)
-- ARGV[1]      now, ms since the epoch (from the caller's Clock)
-- ARGV[2]      max_wait, ms: the farthest turn to book
-- ARGV[2i-1]   emission interval of KEYS[i] (i >= 2), microseconds (one call per interval)
-- ARGV[2i]     tolerance of KEYS[i] (i >= 2), microseconds ((burst - 1) * interval)
-- ARGV[2n+1]   count: how many calls to book (n = #KEYS; absent: 1)
-- returns      per call, in order, a pair: {0, turn_ms} booked; {1, until_ms} slowed down
--              (nothing booked); {2, retry_at_ms} the turn is more than max_wait away
--              (nothing booked; retry_at_ms is when it would not be). Once one call is not
--              booked, the pairs of the calls after it repeat its answer.
local now_ms = tonumber(ARGV[1])
local now = now_ms * 1000
local max_wait = tonumber(ARGV[2]) * 1000

local count = tonumber(ARGV[2 * #KEYS + 1] or '1')
local out = {}
local function repeat_rest(code, at)
  while #out < 2 * count do
    out[#out + 1] = code
    out[#out + 1] = at
  end
  return out
end

local until_ms = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_ms > now_ms then
  return repeat_rest(1, until_ms)
end

local tats = {}
for i = 2, #KEYS do
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  if tat < now then
    tat = now
  end
  tats[i] = tat
end
-- The earliest turn that conforms to every limit (and is not before now).
local function next_turn()
  local turn = now
  for i = 2, #KEYS do
    local t = tats[i] - tonumber(ARGV[2 * i])
    if t > turn then
      turn = t
    end
  end
  return turn
end

for _ = 1, count do
  local turn = next_turn()
  if turn - now > max_wait then
    break
  end
  for i = 2, #KEYS do
    if turn > tats[i] then
      tats[i] = turn
    end
    tats[i] = tats[i] + tonumber(ARGV[2 * i - 1])
  end
  out[#out + 1] = 0
  out[#out + 1] = math.ceil(turn / 1000)
end
if #out > 0 then
  for i = 2, #KEYS do
    local ttl_ms = math.ceil((tats[i] - now) / 1000) + 1000
    redis.call('SET', KEYS[i], string.format('%.0f', tats[i]), 'PX', ttl_ms)
  end
end
if #out < 2 * count then
  return repeat_rest(2, math.ceil((next_turn() - max_wait) / 1000))
end
return out
