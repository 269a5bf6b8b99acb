-- outbox_ack.lua: acknowledge and delete outbox entries (and their retry notes), and count
-- finished entries in their alerts' tallies, in one step. Single slot: every key is in {o}.
--
-- KEYS[1] the outbox stream   KEYS[2] the retry notes hash   KEYS[2 + t] the tally of alert t
-- ARGV[1] the consumer group   ARGV[2] n, the number of tallies
-- ARGV[3 + 3(t-1) ..] tally t: entries finished, of them retried, of them dead
-- ARGV[3 + 3n ..] entry ids
--
-- Returns one answer per tally: its hash (flat) when this call's `done` increment reached its
-- `total` (the caller finished the alert's last entries: it logs the summary), else false.
local n = tonumber(ARGV[2])
local ids = {}
for i = 3 + 3 * n, #ARGV do
  ids[#ids + 1] = ARGV[i]
end
if #ids > 0 then
  redis.call('XACK', KEYS[1], ARGV[1], unpack(ids))
  redis.call('XDEL', KEYS[1], unpack(ids))
  redis.call('HDEL', KEYS[2], unpack(ids))
end
local out = {}
for t = 1, n do
  local key = KEYS[2 + t]
  local a = 3 + 3 * (t - 1)
  local done_before = tonumber(redis.call('HGET', key, 'done')) or 0
  redis.call('HINCRBY', key, 'retried', ARGV[a + 1])
  redis.call('HINCRBY', key, 'dead', ARGV[a + 2])
  local done = redis.call('HINCRBY', key, 'done', ARGV[a])
  local total = tonumber(redis.call('HGET', key, 'total')) or 0
  if total > 0 and done_before < total and done >= total then
    out[t] = redis.call('HGETALL', key)
  else
    out[t] = false
  end
end
return out
