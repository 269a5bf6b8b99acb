-- outbox_enqueue.lua: write the delivery entry of one (alert, channel) at most once, with the
-- channel's next sequence number, in one atomic step (a fan-out re-run after a crash between this
-- and the XACK of its transitions writes nothing twice). Single slot: every key is in {o}.
--
-- KEYS[1] the outbox stream         KEYS[2] the `fanned` marker of (alert, channel)
-- KEYS[3] the channel's seq counter KEYS[4] the `queued` marker of (channel, outage)
-- KEYS[5] the alert's tally (entries written, for the one summary line when all are done)
-- ARGV[1] marker TTL (ms)   ARGV[2] channel key   ARGV[3] alert id   ARGV[4] outage id (alert key)
-- ARGV[5] queued-at (ISO-8601)   ARGV[6] Alert JSON   ARGV[7] what it is ("start of <outage>")
--
-- Returns the new entry id, or false when this (alert, channel) was written before.
if not redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[1]) then
  return false
end
local n = redis.call('INCR', KEYS[3])
local id = redis.call('XADD', KEYS[1], '*',
  'c', ARGV[2], 'a', ARGV[3], 'k', ARGV[4], 'n', n, 'q', ARGV[5], 'alert', ARGV[6])
redis.call('SET', KEYS[4], '1', 'PX', ARGV[1])
redis.call('HINCRBY', KEYS[5], 'total', 1)
redis.call('HSETNX', KEYS[5], 'q', ARGV[5])
redis.call('HSETNX', KEYS[5], 'what', ARGV[7])
redis.call('PEXPIRE', KEYS[5], ARGV[1])
return id
