-- outbox_retry.lua: put one dead letter back into the outbox, in one atomic step: the entry goes
-- in with the channel's *next* sequence number (its old one is at or below the channel's handled
-- seq: outbox_begin would acknowledge it unsent) and the dead letter goes out, so a retry run
-- twice, or by two operators at once, queues it once. Single slot: every key is in {o}.
--
-- KEYS[1] the dead letters stream   KEYS[2] the outbox stream   KEYS[3] the channel's seq counter
-- KEYS[4] the `queued` marker of (channel, outage)
-- ARGV[1] dead letter id   ARGV[2] channel key (must match the letter)   ARGV[3] queued-at
-- ARGV[4] marker TTL (ms)
--
-- A side message's letter (field `side` instead of `k` and `alert`) goes back the same way, with
-- no `queued` marker: it belongs to no outage.
--
-- Returns the new outbox entry id, or false when the letter is gone (or not this channel's).
local got = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #got == 0 then
  return false
end
local raw, f = got[1][2], {}
for i = 1, #raw, 2 do
  f[raw[i]] = raw[i + 1]
end
if f['c'] ~= ARGV[2] or not f['a'] then
  return false
end
local id
if f['side'] then
  local n = redis.call('INCR', KEYS[3])
  id = redis.call('XADD', KEYS[2], '*',
    'c', f['c'], 'a', f['a'], 'n', n, 'q', ARGV[3], 'side', f['side'])
elseif f['k'] and f['alert'] then
  local n = redis.call('INCR', KEYS[3])
  id = redis.call('XADD', KEYS[2], '*',
    'c', f['c'], 'a', f['a'], 'k', f['k'], 'n', n, 'q', ARGV[3], 'alert', f['alert'])
  redis.call('SET', KEYS[4], '1', 'PX', ARGV[4])
else
  return false
end
redis.call('XDEL', KEYS[1], ARGV[1])
return id
