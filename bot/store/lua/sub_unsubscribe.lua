-- sub_unsubscribe.lua: remove surfaces (or everything) from one channel's subscription hash;
-- delete the hash when no surface and no all_claude flag is left. Idempotent.
-- Single slot: the one key carries the channel's {c:<channel>} hash tag.
--
-- KEYS[1]   the channel's subscription hash
-- ARGV[1]   now, ISO-8601 (written to `at` only when something really changed)
-- ARGV[2]   "1" to clear the all_claude flag
-- ARGV[3]   "1" to remove every surface (and the flag): the channel unsubscribes from everything
-- ARGV[4..] surface ids to remove
--
-- Returns {removed surface ids, flag_cleared (0|1), HGETALL of the hash (empty when deleted)}.

local k = KEYS[1]
local removed = {}
local flag_cleared = 0
if redis.call('EXISTS', k) == 0 then
  return {removed, flag_cleared, {}}
end
if ARGV[3] == '1' then
  local fields = redis.call('HKEYS', k)
  for _, f in ipairs(fields) do
    if string.sub(f, 1, 2) == 's:' then
      redis.call('HDEL', k, f)
      removed[#removed + 1] = string.sub(f, 3)
    end
  end
else
  for i = 4, #ARGV do
    if redis.call('HDEL', k, 's:' .. ARGV[i]) == 1 then
      removed[#removed + 1] = ARGV[i]
    end
  end
end
if (ARGV[2] == '1' or ARGV[3] == '1') and redis.call('HDEL', k, 'all') == 1 then
  flag_cleared = 1
end
if #removed == 0 and flag_cleared == 0 then
  return {removed, flag_cleared, redis.call('HGETALL', k)}
end
local left = 0
for _, f in ipairs(redis.call('HKEYS', k)) do
  if f == 'all' or string.sub(f, 1, 2) == 's:' then
    left = 1
    break
  end
end
if left == 0 then
  redis.call('DEL', k)
  return {removed, flag_cleared, {}}
end
redis.call('HSET', k, 'at', ARGV[1])
return {removed, flag_cleared, redis.call('HGETALL', k)}
