-- claim.lua: claim one poll slot of one provider and, when won, read its surfaces' states.
-- Single slot: every key carries the provider's {p:<provider>} hash tag; only KEYS are touched.
--
-- KEYS[1]   slot claim key (SET NX PX)
-- KEYS[2]   page cache hash {etag, last_modified, body}
-- KEYS[3..] state hashes {v, s}, one per surface, in the caller's order
-- ARGV[1]   claim ttl in milliseconds
-- ARGV[2]   claim owner token (stored as the value, for debugging who won)
-- ARGV[3]   "1" to return the page cache (a page poll), "0" not to
-- ARGV[4]   now, epoch milliseconds (the caller's clock)
--
-- A page poll is refused while the page cache's `held_until` (epoch ms, written when the page
-- answered 429 with Retry-After, by whichever replica polled) is in the future: it returns
-- {'held', held_until} and claims nothing, so no replica polls before the page allows.
-- Returns nil when another replica holds the slot; else
-- {page, v1, s1, v2, s2, ...} where page is {etag, last_modified, body, seen} (false = absent)
-- or {seen} when not asked (`seen`: see commit.lua), and vN/sN are the state's version and JSON
-- (false = absent).

if ARGV[3] == '1' then
  local held = redis.call('HGET', KEYS[2], 'held_until')
  if held and tonumber(held) > tonumber(ARGV[4]) then
    return {'held', held}
  end
end

if not redis.call('SET', KEYS[1], ARGV[2], 'NX', 'PX', ARGV[1]) then
  return false
end

local out = {}
if ARGV[3] == '1' then
  out[1] = redis.call('HMGET', KEYS[2], 'etag', 'last_modified', 'body', 'seen')
else
  out[1] = redis.call('HMGET', KEYS[2], 'seen')
end

local n = 1
for i = 3, #KEYS do
  local vs = redis.call('HMGET', KEYS[i], 'v', 's')
  out[n + 1] = vs[1]
  out[n + 2] = vs[2]
  n = n + 2
end
return out
