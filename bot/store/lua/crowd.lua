-- crowd.lua: record one crowd report (one per user per surface per window), decay old ones and
-- return what is left, in one atomic step. Single slot: every key carries {s:<surface>}.
--
-- KEYS[1]   the surface's report sorted set (member "<workspace>|<user>", score = epoch seconds)
-- KEYS[2]   this user's dedupe key (value: epoch of the report it guards)
-- ARGV[1]   member "<workspace>|<user>"
-- ARGV[2]   now, epoch seconds (passed in: the caller's clock, not the server's)
-- ARGV[3]   window, seconds
-- ARGV[4]   ttl, whole seconds (>= window): garbage collection of both keys only
--
-- Returns {recorded (0|1), member1, score1, member2, score2, ...} for reports in the window.
-- The dedupe test compares the stored epoch with ARGV[2] (so an injected clock is honoured); the
-- EX only reclaims memory.

local now = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local cutoff = now - window
local cutoff_s = string.format('%.17g', cutoff)

redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', cutoff_s)

local recorded = 0
local prev = tonumber(redis.call('GET', KEYS[2]))
if prev == nil or prev <= cutoff then
  redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[4])
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
  redis.call('EXPIRE', KEYS[1], ARGV[4])
  recorded = 1
end

local out = {recorded}
local rows = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. cutoff_s, '+inf', 'WITHSCORES')
for i = 1, #rows do
  out[#out + 1] = rows[i]
end
return out
