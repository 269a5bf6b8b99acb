-- sub_patch.lua: set or delete fields of an EXISTING channel subscription hash (mute, unmute,
-- disable, enable); never creates the hash. Single slot: {c:<channel>}.
--
-- KEYS[1]   the channel's subscription hash
-- ARGV[1]   now, ISO-8601 for `at`, or "" not to touch `at`
-- ARGV[2..] triples (op, field, value): op "s" sets field to value, "d" deletes field
--
-- Returns HGETALL of the hash after the change, or an empty array when there is no hash.

local k = KEYS[1]
if redis.call('EXISTS', k) == 0 then
  return {}
end
for i = 2, #ARGV, 3 do
  if ARGV[i] == 's' then
    redis.call('HSET', k, ARGV[i + 1], ARGV[i + 2])
  else
    redis.call('HDEL', k, ARGV[i + 1])
  end
end
if ARGV[1] ~= '' then
  redis.call('HSET', k, 'at', ARGV[1])
end
return redis.call('HGETALL', k)
