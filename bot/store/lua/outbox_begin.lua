-- outbox_begin.lua: may this worker send entry `seq` of a channel now? One round trip for the
-- order gate, the channel's lease, the parent message reference and the `sending` marker.
-- Single slot: every key is in {c:<channel>}.
--
-- KEYS[1] the channel's handled seq   KEYS[2] the channel's lease   KEYS[3] the message ref
-- KEYS[4] the channel's `sending` marker   KEYS[5] the channel's subscription hash
-- ARGV[1] entry seq   ARGV[2] lease owner token   ARGV[3] lease TTL (ms)   ARGV[4] marker TTL (ms)
--
-- Returns {verdict, handled seq, MessageRef JSON or false, unsure 0|1, disabled reason or false};
-- verdict is
--   'done'  the entry (or a later one) is done already: acknowledge it, send nothing (this is
--           what makes a redelivery after a crash a no-op);
--   'wait'  an earlier entry of the channel is not done yet: look again later;
--   'busy'  another worker holds the channel's lease: look again shortly;
--   'go'    the caller now holds the lease and may send; `unsure` is 1 when an earlier attempt
--           at this entry began and never ended (killed, timed out, answer lost): its call may
--           have been applied, so the caller checks the channel before sending again; the
--           disabled reason is set when the channel's alerts are disabled (a permanent refusal
--           seen by any worker, on any replica): the caller dead-letters the entry unsent.
local handled = tonumber(redis.call('GET', KEYS[1])) or 0
local seq = tonumber(ARGV[1])
if seq <= handled then
  return {'done', handled, false, 0}
end
if seq > handled + 1 then
  return {'wait', handled, false, 0}
end
local owner = redis.call('GET', KEYS[2])
if owner ~= false and owner ~= ARGV[2] then
  return {'busy', handled, false, 0}
end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
local unsure = 0
if redis.call('GET', KEYS[4]) == ARGV[1] then
  unsure = 1
end
redis.call('SET', KEYS[4], ARGV[1], 'PX', ARGV[4])
return {'go', handled, redis.call('GET', KEYS[3]), unsure, redis.call('HGET', KEYS[5], 'dis')}
