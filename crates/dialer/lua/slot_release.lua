-- slot_release: give a live-call slot back (call ended, failed, timed out, was never placed).
--
-- KEYS[1]  slots ZSET of the company: holder -> lease expiry (ms)
-- ARGV[1]  holder
-- returns  1 released; 0 the holder had no slot (already released or expired)
return redis.call('ZREM', KEYS[1], ARGV[1])
