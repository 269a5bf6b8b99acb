-- sub_subscribe.lua: add surfaces and flags to one channel's subscription hash, idempotently.
-- Single slot: the one key carries the channel's {c:<channel>} hash tag.
--
-- KEYS[1]   the channel's subscription hash (fields: see bot/store/subscriptions.py)
-- ARGV[1]   channel key ("slack:T1:C1")
-- ARGV[2]   now, ISO-8601 (written to `at` only when something really changed)
-- ARGV[3]   user id (written to `by` only when the hash is created)
-- ARGV[4]   min severity to set, or "" to keep (ARGV[5] when the hash is new)
-- ARGV[5]   default min severity for a new hash
-- ARGV[6]   maintenance: "1"/"0" to set, "" to keep ("0" when the hash is new)
-- ARGV[7]   "1" to set all_claude, "0" to leave it as it is
-- ARGV[8..] surface ids to add
--
-- Returns {changed (0|1), HGETALL of the hash}.

local k = KEYS[1]
local changed = 0
if redis.call('EXISTS', k) == 0 then
  redis.call('HSET', k, 'ch', ARGV[1], 'by', ARGV[3], 'min', ARGV[5], 'maint', '0')
  changed = 1
end
if ARGV[4] ~= '' and redis.call('HGET', k, 'min') ~= ARGV[4] then
  redis.call('HSET', k, 'min', ARGV[4])
  changed = 1
end
if ARGV[6] ~= '' and redis.call('HGET', k, 'maint') ~= ARGV[6] then
  redis.call('HSET', k, 'maint', ARGV[6])
  changed = 1
end
if ARGV[7] == '1' and redis.call('HGET', k, 'all') ~= '1' then
  redis.call('HSET', k, 'all', '1')
  changed = 1
end
for i = 8, #ARGV do
  if redis.call('HSET', k, 's:' .. ARGV[i], '1') == 1 then
    changed = 1
  end
end
if changed == 1 then
  redis.call('HSET', k, 'at', ARGV[2])
end
return {changed, redis.call('HGETALL', k)}
