-- outbox_complete.lua: record that one outbox entry of a channel is done, in one atomic step:
-- the channel's handled sequence number and the parent message reference; then give the
-- channel's lease back. Single slot: every key is in {c:<channel>}. The XACK follows separately.
-- The handled seq alone makes a redelivery a no-op: outbox_begin answers 'done' for any entry
-- numbered at or below it, and fan-out's `fanned` marker gives an (alert, channel) one number.
--
-- KEYS[1] the channel's handled seq   KEYS[2] the message ref   KEYS[3] the channel's lease
-- KEYS[4] the channel's `sending` marker (cleared: nothing of this entry is in doubt any more)
-- ARGV[1] entry seq   ARGV[2] ref op 'keep' | 'set' | 'del'   ARGV[3] MessageRef JSON
-- ARGV[4] ref TTL (ms)   ARGV[5] lease owner token ('' when the caller holds no lease)
--
-- Returns the handled seq before this call.
local before = tonumber(redis.call('GET', KEYS[1])) or 0
if tonumber(ARGV[1]) > before then
  redis.call('SET', KEYS[1], ARGV[1])
end
if ARGV[2] == 'set' then
  redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
elseif ARGV[2] == 'del' then
  redis.call('DEL', KEYS[2])
else
  redis.call('PEXPIRE', KEYS[2], ARGV[4])  -- a long outage keeps its parent
end
if ARGV[5] ~= '' and redis.call('GET', KEYS[3]) == ARGV[5] then
  redis.call('DEL', KEYS[3])
end
if redis.call('GET', KEYS[4]) == ARGV[1] then
  redis.call('DEL', KEYS[4])
end
return before
