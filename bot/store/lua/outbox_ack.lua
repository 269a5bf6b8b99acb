-- outbox_ack.lua: acknowledge and delete outbox entries (and their retry notes), and optionally
-- count one of them finished in its alert's tally, in one step. Single slot: every key is in {o}.
--
-- KEYS[1] the outbox stream   KEYS[2] the retry notes hash   KEYS[3] the alert's tally (when
-- counting; any {o} key otherwise)
-- ARGV[1] the consumer group   ARGV[2] '1' to count one finished entry, '0' not to
-- ARGV[3] retried 0|1   ARGV[4] dead 0|1   ARGV[5..] entry ids
--
-- Returns the tally hash (flat) to the one caller whose entry finished the alert's last, false
-- to every other caller ("last": its own `done` increment reached `total`, atomically here).
local ids = {}
for i = 5, #ARGV do
  ids[#ids + 1] = ARGV[i]
end
if #ids > 0 then
  redis.call('XACK', KEYS[1], ARGV[1], unpack(ids))
  redis.call('XDEL', KEYS[1], unpack(ids))
  redis.call('HDEL', KEYS[2], unpack(ids))
end
if ARGV[2] ~= '1' then
  return false
end
redis.call('HINCRBY', KEYS[3], 'retried', ARGV[3])
redis.call('HINCRBY', KEYS[3], 'dead', ARGV[4])
local done = redis.call('HINCRBY', KEYS[3], 'done', 1)
local total = tonumber(redis.call('HGET', KEYS[3], 'total')) or 0
if total == 0 or done ~= total then
  return false
end
return redis.call('HGETALL', KEYS[3])
