-- slot_acquire: take live-call slots of one company for one or more holders, with a lease.
--
-- The slots are a ZSET holder -> lease expiry (ms). Expired leases (a crashed worker's, a
-- call whose end was never reported) are dropped first, so a slot always comes back. A
-- holder that already has a slot keeps it and gets a fresh lease (retries are idempotent).
-- Holders are served in order: once the cap is reached, the later ones are refused.
--
-- KEYS[1]    slots ZSET of the company
-- ARGV[1]    now, ms since the epoch
-- ARGV[2]    cap: the most live calls the company may have
-- ARGV[3]    lease, ms
-- ARGV[4..]  holders: the calls' idempotency keys
-- returns    {g1, v1, g2, v2, ...} per holder: {1, live} acquired (live counts this one);
--            {0, earliest_expiry_ms} full
local now_ms = tonumber(ARGV[1])
local cap = tonumber(ARGV[2])
local expiry = now_ms + tonumber(ARGV[3])

redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
local live = redis.call('ZCARD', KEYS[1])
local out = {}
local added = false
for i = 4, #ARGV do
  local holder = ARGV[i]
  local held = redis.call('ZSCORE', KEYS[1], holder)
  if not held and live >= cap then
    local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    out[#out + 1] = 0
    out[#out + 1] = tonumber(first[2])
  else
    if not held then
      live = live + 1
    end
    redis.call('ZADD', KEYS[1], expiry, holder)
    added = true
    out[#out + 1] = 1
    out[#out + 1] = live
  end
end
if added then
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  redis.call('PEXPIRE', KEYS[1], tonumber(last[2]) - now_ms + 1000)
end
return out
