-- outbox_release.lua: give a channel's lease back without recording its entry done (a pacing
-- wait, or a failed attempt). Single slot: every key is in {c:<channel>}.
--
-- KEYS[1] the channel's lease   KEYS[2] the channel's `sending` marker
-- ARGV[1] lease owner token   ARGV[2] entry seq   ARGV[3] '1' when no call was applied (a pacing
-- wait, a 429): the marker of this entry is cleared, so the next attempt need not check first
--
-- Returns 1 when the caller held the lease, else 0.
if ARGV[3] == '1' and redis.call('GET', KEYS[2]) == ARGV[2] then
  redis.call('DEL', KEYS[2])
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
