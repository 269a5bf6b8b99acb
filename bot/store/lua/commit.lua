-- commit.lua: compare-and-set the new states of one provider's surfaces and record their
-- transitions, all in one atomic step, so N replicas record each transition exactly once.
-- Single slot: every key carries the provider's {p:<provider>} hash tag; only KEYS are touched.
--
-- KEYS[1]              the provider's transitions stream
-- KEYS[2]              the provider's page cache hash {etag, last_modified, body}
-- KEYS[1 + 2i]         state hash {v, s, w} of write i (i = 1..n)
-- KEYS[2 + 2i]         history list of write i
-- ARGV[1]  history length cap          ARGV[2]  stream MAXLEN (approximate)
-- ARGV[3]  commit token: unique per commit call, stored as `w`. If the reply of an applied
--          commit is lost and redis-py retries the call, the retry finds its own token at the new
--          version and reports "replayed" instead of "skipped", pushing nothing twice.
-- ARGV[4]  "1" to store the page cache, "0" not to
-- ARGV[5..10]  page: has_etag, etag, has_last_modified, last_modified, has_body, body
-- ARGV[11 + 4(i-1) ..]  write i: expected version, new version, state JSON, transition JSON ("" = none)
-- ARGV[11 + 4n]  the poll time (ISO-8601) of surfaces this poll observed and left unwritten
--          because only the poll time moved, stored as the page cache's `seen` ("" = none)
--
-- Returns {r1, id1, r2, id2, ...}: rN is 1 applied, 0 skipped (version moved on: another replica
-- won), 2 replayed (this very commit had already applied); idN is the stream entry id or "".

local hist_len = tonumber(ARGV[1])
local stream_max = ARGV[2]
local token = ARGV[3]

if ARGV[4] == '1' then
  local fields = {'etag', 'last_modified', 'body'}
  for f = 1, 3 do
    local has = ARGV[3 + 2 * f]
    local val = ARGV[4 + 2 * f]
    if has == '1' then
      redis.call('HSET', KEYS[2], fields[f], val)
    else
      redis.call('HDEL', KEYS[2], fields[f])
    end
  end
end

local out = {}
local nwrites = (#KEYS - 2) / 2
local seen = ARGV[11 + 4 * nwrites]
if seen ~= nil and seen ~= '' then
  redis.call('HSET', KEYS[2], 'seen', seen)
end
for i = 1, nwrites do
  local state_key = KEYS[1 + 2 * i]
  local history_key = KEYS[2 + 2 * i]
  local a = 11 + 4 * (i - 1)
  local expected = tonumber(ARGV[a])
  local new_version = ARGV[a + 1]
  local state_json = ARGV[a + 2]
  local transition_json = ARGV[a + 3]

  local cur = redis.call('HMGET', state_key, 'v', 'w')
  local stored = tonumber(cur[1]) or 0
  if stored == expected then
    redis.call('HSET', state_key, 'v', new_version, 's', state_json, 'w', token)
    local id = ''
    if transition_json ~= '' then
      redis.call('LPUSH', history_key, transition_json)
      redis.call('LTRIM', history_key, 0, hist_len - 1)
      id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', stream_max, '*', 't', transition_json)
    end
    out[2 * i - 1] = 1
    out[2 * i] = id
  elseif stored == tonumber(new_version) and cur[2] == token then
    out[2 * i - 1] = 2
    out[2 * i] = ''
  else
    out[2 * i - 1] = 0
    out[2 * i] = ''
  end
end
return out
