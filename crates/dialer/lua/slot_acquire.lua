-- slot_acquire: take one of a company's live-call slots, with a lease.
--
-- The slots are a ZSET holder -> lease expiry (ms). Expired leases (a crashed worker's, a
-- call whose end was never reported) are dropped first, so a slot always comes back. A
-- holder that already has a slot keeps it and gets a fresh lease (retries are idempotent).
--
-- KEYS[1]  slots ZSET of the company
-- ARGV[1]  now, ms since the epoch
-- ARGV[2]  cap: the most live calls the company may have
-- ARGV[3]  holder: the call's idempotency key
-- ARGV[4]  lease, ms
-- returns  {1, live} acquired (live counts this one); {0, earliest_expiry_ms} full
local now_ms = tonumber(ARGV[1])
local cap = tonumber(ARGV[2])
local expiry = now_ms + tonumber(ARGV[4])

redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
local held = redis.call('ZSCORE', KEYS[1], ARGV[3])
local live = redis.call('ZCARD', KEYS[1])
if not held then
  if live >= cap then
    local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    return {0, tonumber(first[2])}
  end
  live = live + 1
end
redis.call('ZADD', KEYS[1], expiry, ARGV[3])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[1], tonumber(last[2]) - now_ms + 1000)
return {1, live}
