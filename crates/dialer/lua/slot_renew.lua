-- slot_renew: extend the lease of a live-call slot its holder still has.
--
-- KEYS[1]  slots ZSET of the company: holder -> lease expiry (ms)
-- ARGV[1]  now, ms since the epoch
-- ARGV[2]  holder
-- ARGV[3]  lease from now, ms
-- returns  1 renewed; 0 the lease was lost (expired or released): the slot may be another's
local now_ms = tonumber(ARGV[1])
local expiry = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[2]) or '0')
if expiry <= now_ms then
  redis.call('ZREM', KEYS[1], ARGV[2])
  return 0
end
redis.call('ZADD', KEYS[1], now_ms + tonumber(ARGV[3]), ARGV[2])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[1], tonumber(last[2]) - now_ms + 1000)
return 1
