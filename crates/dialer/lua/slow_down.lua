-- slow_down: hold a company's calls until a moment (a provider 429 / Retry-After). Only ever
-- extends: an earlier "until" than the one in force changes nothing.
--
-- KEYS[1]  slow-down key of the company: "until" in ms since the epoch
-- ARGV[1]  now, ms since the epoch
-- ARGV[2]  until, ms since the epoch
-- returns  the "until" in force afterwards, ms (0 when none)
local now_ms = tonumber(ARGV[1])
local wanted = tonumber(ARGV[2])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current <= now_ms then
  current = 0
end
if wanted <= now_ms or wanted <= current then
  return current
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', wanted - now_ms)
return wanted
