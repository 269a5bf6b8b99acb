-- outbox_complete.lua: record that one outbox entry of a channel is done, in one atomic step:
-- the channel's handled sequence number, the (alert, channel) `delivered` marker and the parent
-- message reference; then give the channel's lease back. Single slot: every key is in
-- {c:<channel>}. The XACK follows separately.
--
-- KEYS[1] the channel's handled seq   KEYS[2] the `delivered` marker   KEYS[3] the message ref
-- KEYS[4] the channel's lease
-- ARGV[1] entry seq   ARGV[2] '1' delivered, '0' given up (dead letter: only the seq moves)
-- ARGV[3] marker TTL (ms)   ARGV[4] ref op 'keep' | 'set' | 'del'   ARGV[5] MessageRef JSON
-- ARGV[6] ref TTL (ms)   ARGV[7] lease owner token ('' when the caller holds no lease)
--
-- Returns the handled seq before this call.
local before = tonumber(redis.call('GET', KEYS[1])) or 0
if tonumber(ARGV[1]) > before then
  redis.call('SET', KEYS[1], ARGV[1])
end
if ARGV[2] == '1' then
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
end
if ARGV[4] == 'set' then
  redis.call('SET', KEYS[3], ARGV[5], 'PX', ARGV[6])
elseif ARGV[4] == 'del' then
  redis.call('DEL', KEYS[3])
else
  redis.call('PEXPIRE', KEYS[3], ARGV[6])  -- a long outage keeps its parent
end
if ARGV[7] ~= '' and redis.call('GET', KEYS[4]) == ARGV[7] then
  redis.call('DEL', KEYS[4])
end
return before
