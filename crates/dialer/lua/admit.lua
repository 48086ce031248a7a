-- admit: let one call through every GCRA limit in KEYS[2..], unless the company is slowed down.
--
-- GCRA (generic cell rate algorithm): each limit keeps one number, the theoretical arrival
-- time (TAT) of the next conforming call. A call at `now` conforms when
-- TAT - tolerance <= now; admitting it moves TAT to max(TAT, now) + interval. Either every
-- limit admits the call and every TAT moves, or nothing changes (a call refused by its
-- caller ID spends none of its company's rate).
--
-- KEYS[1]      slow-down key of the company: "until" in ms since the epoch (absent: none)
-- KEYS[2..n]   GCRA keys: TAT in microseconds since the epoch (absent: no debt)
-- ARGV[1]      now, ms since the epoch (from the caller's Clock)
-- ARGV[2i]     emission interval of KEYS[i+1], microseconds (one call per interval)
-- ARGV[2i+1]   tolerance of KEYS[i+1], microseconds ((burst - 1) * interval)
-- returns      {0, 0} admitted; {1, until_ms} slowed down; {2, retry_at_ms} over a rate
local now_ms = tonumber(ARGV[1])
local now = now_ms * 1000

local until_ms = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_ms > now_ms then
  return {1, until_ms}
end

local retry_at = 0
local next_tat = {}
for i = 2, #KEYS do
  local interval = tonumber(ARGV[2 * i - 2])
  local tolerance = tonumber(ARGV[2 * i - 1])
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  if tat < now then
    tat = now
  end
  local allowed_at = tat - tolerance
  if allowed_at > now then
    if allowed_at > retry_at then
      retry_at = allowed_at
    end
  else
    next_tat[i] = tat + interval
  end
end

if retry_at > 0 then
  return {2, math.ceil(retry_at / 1000)}
end
for i = 2, #KEYS do
  local ttl_ms = math.ceil((next_tat[i] - now) / 1000) + 1000
  redis.call('SET', KEYS[i], string.format('%.0f', next_tat[i]), 'PX', ttl_ms)
end
return {0, 0}
