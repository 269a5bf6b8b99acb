-- delivery_lease.lua: take, renew or give back a lease (a key holding its owner's token, with a TTL),
-- or break one held by a consumer known dead.
-- KEYS[1] the lease key   ARGV[1] owner token   ARGV[2] TTL (ms)
-- ARGV[3] 'take' | 'release' | 'break' (ARGV[1] is then the dead consumer's token prefix)
-- Returns 1 when the caller holds (take), gave back (release) or broke (break) the lease, else 0.
local owner = redis.call('GET', KEYS[1])
if ARGV[3] == 'break' then
  if owner ~= false and string.sub(owner, 1, #ARGV[1]) == ARGV[1] then
    redis.call('DEL', KEYS[1])
    return 1
  end
  return 0
end
if ARGV[3] == 'release' then
  if owner == ARGV[1] then
    redis.call('DEL', KEYS[1])
    return 1
  end
  return 0
end
if owner == false or owner == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
