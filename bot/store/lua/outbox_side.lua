-- outbox_side.lua: write the entry of one side message (an announcement, a direct message) at
-- most once ever, with its lane's next sequence number, in one atomic step. Like an alert's
-- entry (outbox_enqueue.lua) but with no outage: no `queued` marker, no tally. Single slot: every
-- key is in {o}.
--
-- KEYS[1] the outbox stream   KEYS[2] the `fanned` marker of (message key, lane)
-- KEYS[3] the lane's seq counter
-- ARGV[1] marker TTL (ms)   ARGV[2] lane key   ARGV[3] message key   ARGV[4] queued-at (ISO-8601)
-- ARGV[5] SideMessage JSON
--
-- Returns the new entry id, or false when this message key was written before.
if not redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[1]) then
  return false
end
local n = redis.call('INCR', KEYS[3])
return redis.call('XADD', KEYS[1], '*',
  'c', ARGV[2], 'a', ARGV[3], 'n', n, 'q', ARGV[4], 'side', ARGV[5])
